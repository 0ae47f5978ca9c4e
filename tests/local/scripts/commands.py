"""Runs each command named on the command line with --version, as a script runs `pip install ...`: the
command is found on PATH, and a console script whose `#!` names no interpreter falls through to the next."""
import shutil
import subprocess
import sys

for name in sys.argv[1:]:
    output = subprocess.run([name, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    print(f"ran {shutil.which(name)}: {output}")
