"""Where the local runner keeps its state: one directory standing in for an AWS account.

`s3/` is the local object store, `runs/<execution_id>/` the record of each
execution, `cache/` the step cache, `registry.sqlite` the model registry.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "PIPELINES_LOCAL_HOME"


@dataclass(frozen=True)
class LocalHome:
    root: Path
    region: str = "us-east-1"
    account: str = "000000000000"

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def default(cls) -> LocalHome:
        """`$PIPELINES_LOCAL_HOME`, else `.local-pipelines` in the working directory."""
        return cls(Path(os.environ.get(HOME_ENV) or Path.cwd() / ".local-pipelines"))

    @property
    def s3(self) -> Path:
        return self.root / "s3"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def registry(self) -> Path:
        return self.root / "registry.sqlite"

    def execution(self, execution_id: str) -> dict:
        """The record of one execution (`runs/<id>/execution.json`)."""
        path = self.runs / execution_id / "execution.json"
        if not path.is_file():
            raise FileNotFoundError(f"no local execution {execution_id!r} (looked for {path})")
        return json.loads(path.read_text())

    def executions(self) -> list[dict]:
        """Every recorded execution, oldest first."""
        records = [json.loads(p.read_text()) for p in self.runs.glob("*/execution.json")]
        return sorted(records, key=lambda r: r["started"])
