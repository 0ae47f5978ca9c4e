"""Reading a local execution's logs: `deploy.py logs EXECUTION [STEP|JOB] --local [--follow]`.

Each step has one log (`runs/<id>/logs/<step>.log`, its path in the record): the runner's lines and
its jobs' output, a tuning step's trials each prefixed with `[<training job name>]`. A reused step
of a selective execution points at its source execution's log, where its output is.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

from pipelines.local.home import LocalHome
from pipelines.local.records import settle


def chosen_logs(record: dict, name: str | None) -> list[tuple[str, Path, str | None]]:
    """(header, log file, line prefix to keep or None) for every step with a log, or for the step or job
    `name`; KeyError with a one-line message when there is no such step or job."""
    steps = record["steps"]
    logged = [s for s in steps if s.get("log")]
    if name is None:
        return [(_header(s), Path(s["log"]), None) for s in logged]
    for step in logged:
        jobs = {step.get("job_name"), *(a["job_name"] for a in step.get("attempts") or [])}
        if name == step["name"] or name in jobs:
            return [(_header(step), Path(step["log"]), None)]
        if step["type"] == "Tuning" and step.get("job_name") and name.startswith(f"{step['job_name']}-"):
            return [(f"==> {name} (a training job of {step['name']}) <==", Path(step["log"]), f"[{name}")]
    if any(step["name"] == name for step in steps):
        return []  # it has not started (yet)
    known = ", ".join(s["name"] for s in logged) or "none yet"
    raise KeyError(f"execution {record['execution_id']} has no log of a step or job {name!r} (steps with logs: {known})")


def _header(step: dict) -> str:
    reused = f", reused from {step['reused_from']}" if step.get("reused_from") else ""
    return f"==> {step['name']} ({step['status']}{reused}): {step['log']} <=="


def lines(home: LocalHome, record: dict, name: str | None = None, *, follow: bool = False,
          poll: float = 0.5) -> Iterator[str]:
    """The lines of the chosen logs; with `follow`, also those written later, until the execution
    is no longer Executing (steps that start meanwhile join in)."""
    positions: dict[Path, int] = {}
    while True:
        for header, path, prefix in chosen_logs(record, name):
            if path not in positions:
                positions[path] = 0
                yield header
            if not path.is_file():
                continue
            with path.open("rb") as log:
                log.seek(positions[path])
                data = log.read()
            complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits for its end
            positions[path] += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                if prefix is None or line.startswith(prefix):
                    yield line
        if not follow or record["status"] != "Executing":
            return
        time.sleep(poll)
        record = settle(home.runs / record["execution_id"], home.execution(record["execution_id"]))
