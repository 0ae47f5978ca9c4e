"""The record of an execution on disk, and loading it again to resume.

Every execution is recorded under `home.runs/<execution_id>/`: the exact
definition run (`definition.json`) and `execution.json`, rewritten atomically
after every change, so a killed runner leaves a step `Executing`, never a torn
file. Resuming reruns, from that record, what did not succeed.
"""
from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.files import write_atomically
from pipelines.local import liveness
from pipelines.local.home import LocalHome
from pipelines.local.plan import RunError, parse_definition

if TYPE_CHECKING:
    from pipelines.local.plan import Step


class Account(Protocol):
    """Anything that names an account and a region: a LocalHome, a job's context."""

    region: str
    account: str


def definition_text(definition: str | dict | None, pipeline_name: str | None) -> str:
    """The exact text to run and record: a string as given, a dict as JSON."""
    if definition is None or not pipeline_name:
        raise RunError("a new run needs a definition and a pipeline_name")
    return definition if isinstance(definition, str) else json.dumps(definition, indent=1)


def new_record(home: LocalHome, pipeline_name: str, execution_id: str | None, parameters: dict,
               steps: dict[str, Step], origin: dict | None = None) -> dict:
    """The record of a new execution, every step NotRun; RunError for an unusable execution id. `origin`
    is what built the definition (kept as given: the runner reads JSON only, and never this)."""
    execution_id = execution_id or secrets.token_hex(6)
    if not re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,127}", execution_id):
        raise RunError(f"execution id {execution_id!r}: use letters, digits and hyphens")
    if (home.runs / execution_id).exists():
        raise RunError(f"execution {execution_id} already exists under {home.runs}; resume it or pick another id")
    return {
        "execution_id": execution_id,
        "pipeline_name": pipeline_name,
        "execution_arn": f"{arn(home, 'pipeline', pipeline_name)}/execution/{execution_id}",
        "status": "Executing",
        "failure_reason": None,
        "failed_step": None,
        "started": now(),
        "ended": None,
        "seconds": None,
        "resumes": 0,
        "parameters": parameters,
        **({"origin": origin} if origin else {}),
        "steps": [{"name": step.name, "type": step.type, **_blank_step_fields()} for step in steps.values()],
    }


def write_definition(home: LocalHome, execution_id: str, text: str) -> None:
    """Create the execution's directory with the definition it runs (what a resume reruns)."""
    (home.runs / execution_id).mkdir(parents=True)
    write_atomically(home.runs / execution_id / "definition.json", text)


def save_record(run_dir: Path, record: dict) -> None:
    write_json_atomically(run_dir / "execution.json", record)


def resumable(home: LocalHome, execution_id: str, definition: str | dict | None, pipeline_name: str | None,
              parameters: Any) -> tuple[str, dict]:
    """The recorded definition and record of `execution_id`, ready to run again:
    succeeded steps kept, the rest (failed, never run, or cut off mid-run) reset."""
    try:
        record = home.execution(execution_id)
    except FileNotFoundError as exc:
        raise RunError(str(exc)) from None
    text = (home.runs / execution_id / "definition.json").read_text()
    if record["status"] == "Succeeded":
        raise RunError(f"execution {execution_id} succeeded; there is nothing to resume")
    if record["status"] == "Executing" and not liveness.gone(home.runs / execution_id, record):
        raise RunError(f"execution {execution_id} is still running (its runner, pid {record.get('runner_pid')}, is "
                       f"alive): stop it first (deploy.py stop {execution_id} --local), then resume it")
    if parameters:
        raise RunError("a resumed execution keeps its parameters; start a new run to change them")
    if pipeline_name and pipeline_name != record["pipeline_name"]:
        raise RunError(f"execution {execution_id} belongs to pipeline {record['pipeline_name']}, not {pipeline_name}")
    if definition is not None:
        given = parse_definition(definition_text(definition, record["pipeline_name"]))
        if given != parse_definition(text):
            raise RunError(f"execution {execution_id} resumes its recorded definition; the one given differs")
    record.update(status="Executing", failure_reason=None, failed_step=None, ended=None, resumes=record["resumes"] + 1)
    for key in ("stop_reason", "stopped_steps", "runner", "runner_gone"):  # of an earlier stop, an earlier runner
        record.pop(key, None)
    record["steps"] = [s if s["status"] == "Succeeded" else {**s, **_blank_step_fields()} for s in record["steps"]]
    return text, record


def settle(run_dir: Path, record: dict) -> dict:
    """The record as it is: an `Executing` one whose runner is gone (`liveness.gone`) is recorded `Failed`
    now, with the steps it had in flight, so `runs`, `logs` and `--resume` see what happened."""
    reason = liveness.gone(run_dir, record)
    if reason is None:
        return record
    ended = now()
    steps = [{**s, "status": "Failed", "ended": ended, "failure_reason": reason}
             if s["status"] in ("Starting", "Executing") else s for s in record["steps"]]
    failed = next((s["name"] for s in steps if s.get("failure_reason") == reason), None)
    settled = {**record, "steps": steps, "status": "Failed", "ended": ended, "failed_step": failed, "runner_gone": reason,
               "failure_reason": f"{reason}; finish it with --resume {record['execution_id']}"}
    save_record(run_dir, settled)
    return settled


def _blank_step_fields() -> dict:
    """A step's fields before it runs (fresh each call: the record is mutated in place)."""
    return {
        "status": "NotRun", "cache_hit": False, "started": None, "ended": None, "seconds": None,
        "attempts": [], "job_name": None, "arguments": None, "response": None,
        "property_files": {}, "failure_reason": None, "log": None,
    }


def arn(where: Account, resource: str, name: str) -> str:
    """The ARN SageMaker would give `resource/name` in the account and region of a home or a job."""
    return f"arn:aws:sagemaker:{where.region}:{where.account}:{resource}/{name.lower()}"


def now() -> str:
    """The time as the record states it: UTC ISO-8601 to the millisecond."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def write_json_atomically(path: Path, document: Any) -> None:
    write_atomically(path, json.dumps(document, indent=1, default=str))
