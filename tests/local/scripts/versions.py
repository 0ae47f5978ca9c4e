"""Prints the framework versions the job sees (and tabulate's, which only a requirements.txt brings)."""
import importlib.metadata
import json

names = ["scikit-learn", "pandas", "numpy", "tabulate"]
versions = {}
for name in names:
    try:
        versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pass
print("versions " + json.dumps(versions))
