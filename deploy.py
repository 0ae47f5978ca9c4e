#!/usr/bin/env python3
"""Compile, deploy, start and run the SageMaker pipelines of this project.

    python deploy.py --help            every command
    python deploy.py run --local       the whole pipeline offline, on generated data
"""
import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main())
