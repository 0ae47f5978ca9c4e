"""What the reliability tests share: compiled pipelines in a local home, and fingerprints of what
a home holds, to show that a failure elsewhere changed none of it."""
from __future__ import annotations

import hashlib
import importlib
import os
import time
from pathlib import Path

from conftest import PROJECT_ROOT, REGION

from pipelines.compiler import Compiled, compile_pipeline
from pipelines.config import load_config
from pipelines.local import LocalHome, Registry, open_store



def compile_module(module: str, **overrides) -> Compiled:
    """The pipeline of `module` (e.g. "fixtures.hold_pipeline") compiled with the dev config."""
    cfg = load_config("dev", region=REGION, **overrides)
    return compile_pipeline(importlib.import_module(module).definition(cfg), cfg)


def local_store(home: LocalHome, compiled: Compiled):
    """The home's store with the compiled code in it, as `run --local` puts it there."""
    store = open_store(None, root=home.s3)
    for uri, data in compiled.assets.items():
        if not store.exists(uri):
            store.put_bytes(uri, data)
    return store


def fingerprint(root: Path) -> dict[str, str]:
    """sha256 of every file under `root`, by relative path."""
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def registry_rows(home: LocalHome) -> list[dict]:
    """Every version of every group in the home's registry, as DescribeModelPackage returns them."""
    if not home.registry.exists():
        return []
    registry = Registry(home.registry)
    return [v for g in registry.list_groups() for v in registry.list_versions(g["ModelPackageGroupName"])]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment for a `deploy.py` subprocess: fixture pipelines importable (tests/ on the path),
    no home from the environment, and xgboost's threads sleeping while they wait (see test_local_pipeline)."""
    env = {k: v for k, v in os.environ.items() if k != "PIPELINES_LOCAL_HOME"}
    env.update(PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT / "tests"), env.get("PYTHONPATH")])),
               OMP_WAIT_POLICY="PASSIVE", SAGEMAKER_SUPPRESS_V2_WARNING="1", **extra)
    return env


def wait_for(path: Path, timeout: float = 60, alive=lambda: True) -> None:
    """Block until `path` exists; fail after `timeout` seconds or once `alive()` is false."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert alive(), f"gave up waiting for {path}: the process it depends on has ended"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout} s"
        time.sleep(0.05)
