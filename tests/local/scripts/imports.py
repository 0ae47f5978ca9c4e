"""Imports each module named on the command line, as a script of the image would; an ImportError fails the job."""
import importlib
import sys

for name in sys.argv[1:]:
    module = importlib.import_module(name)
    print(f"imported {name} {getattr(module, '__version__', '')}")
