"""The local runner's scheduler: runs a SageMaker pipeline definition JSON offline.

It reads only the JSON SageMaker would receive (never SDK objects), so a local
run tests the artifact that ships. Steps form a DAG (from `Get: Steps.*`
references, `DependsOn`, and Condition branches); independent steps run on
threads up to `max_parallel_steps`. Job steps (Processing, Training, Tuning,
Transform) are delegated to `pipelines.local.jobs` (or to the `handlers` a
test injects); Condition, Fail, RegisterModel and Model run in process.

Every execution is recorded under `home.runs/<execution_id>/`: the exact
definition run, `execution.json` (rewritten atomically after every change, so
a killed runner leaves a step `Executing`, never a torn file), one log per
step, and one work directory per job. `resume=` reruns what did not succeed.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from itertools import count
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from pipelines.local import jobs, storage
from pipelines.local.expressions import ExpressionError, Key, Scope, evaluate_condition, references, resolve, walk
from pipelines.local.home import LocalHome
from pipelines.local.jobs import JobContext, JobFailed
from pipelines.local.registry import Registry

JOB_HANDLERS = {
    "Processing": jobs.run_processing,
    "Training": jobs.run_training,
    "Tuning": jobs.run_tuning,
    "Transform": jobs.run_transform,
}
NAME_LIMITS = {"Tuning": 32}  # SageMaker's limit on tuning job names; 63 for the rest
# Where a request says (and a Describe response echoes) where outputs go: `{parent: field}`.
OUTPUT_FIELDS = {
    "S3Output": "S3Uri",
    "OutputDataConfig": "S3OutputPath",
    "TransformOutput": "S3OutputPath",
    "ModelArtifacts": "S3ModelArtifacts",
}
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class RunError(ValueError):
    """A run that cannot start (bad definition, parameters or resume request); nothing ran."""


class StepFailure(Exception):
    """A step that failed: the reason becomes its (and the execution's) FailureReason."""

    def __init__(self, reason: str, *, response: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.response = response


def run_pipeline(
    definition: str | dict | None = None,
    *,
    pipeline_name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    home: LocalHome,
    store: storage.Store | str | None = None,
    execution_id: str | None = None,
    resume: str | None = None,
    max_parallel_steps: int = 4,
    on_event: Callable[[dict], None] | None = None,
    handlers: Mapping[str, Callable[..., dict]] | None = None,
    isolation: str = "auto",
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Run (or with `resume=ID`, finish) one execution; return its record.

    `store` is a Store, or a spec for `storage.open_store` (None: files under
    `home.s3`). `handlers` maps job step types to `(job_name, request, ctx)
    -> response` functions, by default JOB_HANDLERS (`pipelines.local.jobs`). `on_event`
    receives progress events (dicts), one at a time, from worker threads.
    Problems found before anything runs raise `RunError`; a step that fails
    makes the returned record `Failed` instead.
    """
    if max_parallel_steps < 1:
        raise RunError(f"max_parallel_steps must be at least 1, got {max_parallel_steps}")
    handlers = dict(JOB_HANDLERS if handlers is None else handlers)
    if resume:
        text, record = _resumable(home, resume, definition, pipeline_name, parameters)
    else:
        text = _definition_text(definition, pipeline_name)
    document = _parse(text)
    steps = plan(document, job_types=handlers)
    if not resume:
        values = resolve_parameters(document.get("Parameters", []), parameters or {})
        record = _new_record(home, pipeline_name, execution_id, values, steps)
        (home.runs / record["execution_id"]).mkdir(parents=True)
        (home.runs / record["execution_id"] / "definition.json").write_text(text)
    if isinstance(store, str) or store is None:
        store = storage.open_store(store, root=home.s3)
    execution = Execution(
        home=home, record=record, steps=steps, store=store, handlers=handlers,
        on_event=on_event, max_parallel=max_parallel_steps, isolation=isolation, sleep=sleep,
    )
    return execution.run()


# --- the plan: steps, dependencies, parameters -----------------------------------------


@dataclass(frozen=True)
class Step:
    """One step of the definition, flattened out of any Condition branches."""

    name: str
    type: str
    arguments: dict  # for a Condition, without IfSteps/ElseSteps (those are steps of their own)
    needs: frozenset[str]  # steps that must succeed first
    branch: tuple[str, str] | None  # (condition step, "True"/"False") it runs under
    cache: bool
    expire_after: timedelta | None
    retry: tuple[dict, ...]
    property_files: tuple[dict, ...]


def plan(definition: dict, *, job_types: Mapping[str, Any]) -> dict[str, Step]:
    """The definition's steps in a dependency order, or a RunError naming the problem."""
    steps = list(_flatten(definition.get("Steps"), None, job_types))
    names = [step.name for step in steps]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RunError(f"duplicate step name(s): {', '.join(duplicates)}")
    for step in steps:
        unknown = sorted(step.needs - set(names))
        if unknown:
            raise RunError(f"step {step.name} refers to unknown step(s): {', '.join(unknown)}")
    return _dependency_order(steps)


def _flatten(raw_steps: Any, branch: tuple[str, str] | None, job_types: Mapping[str, Any]) -> Iterator[Step]:
    if not isinstance(raw_steps, list):
        raise RunError("a definition's Steps (and a Condition's IfSteps/ElseSteps) must be a list")
    for raw in raw_steps:
        step = _step(raw, branch, job_types)
        yield step
        if step.type == "Condition":
            yield from _flatten(raw["Arguments"].get("IfSteps", []), (step.name, "True"), job_types)
            yield from _flatten(raw["Arguments"].get("ElseSteps", []), (step.name, "False"), job_types)


def _step(raw: Any, branch: tuple[str, str] | None, job_types: Mapping[str, Any]) -> Step:
    if not isinstance(raw, dict) or not raw.get("Name") or not raw.get("Type"):
        raise RunError(f"a step needs a Name and a Type: {json.dumps(raw)[:200]}")
    name, step_type = raw["Name"], raw["Type"]
    if step_type not in IN_PROCESS and step_type not in job_types:
        known = ", ".join([*IN_PROCESS, *job_types])
        raise RunError(f"step {name} has type {step_type!r}, which the local runner cannot run (it runs: {known})")
    arguments = raw.get("Arguments", {})
    if not isinstance(arguments, dict):
        raise RunError(f"step {name}: Arguments must be an object")
    if step_type == "Condition":
        arguments = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
    try:
        needs = references(arguments) | set(raw.get("DependsOn", [])) | ({branch[0]} if branch else set())
    except ExpressionError as exc:
        raise RunError(f"step {name}: {exc}") from None
    cache = raw.get("CacheConfig", {})
    return Step(
        name=name,
        type=step_type,
        arguments=arguments,
        needs=frozenset(needs),
        branch=branch,
        cache=bool(cache.get("Enabled")) and step_type in job_types,
        expire_after=parse_duration(cache["ExpireAfter"], name) if cache.get("ExpireAfter") else None,
        retry=tuple(_check_retry_policy(policy, name) for policy in raw.get("RetryPolicies", [])),
        property_files=tuple(raw.get("PropertyFiles", [])),
    )


def parse_duration(text: str, step_name: str) -> timedelta:
    """An ISO-8601 duration (`P30D`, `PT1H`, `P1Y2M`; a year is 365 days, a month 30)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match or not any(match.groupdict().values()) or text.endswith("T"):
        raise RunError(
            f"step {step_name}: CacheConfig ExpireAfter {text!r} is not an ISO-8601 duration like P30D or PT1H"
        )
    parts = {unit: float(value) for unit, value in match.groupdict().items() if value}
    parts["days"] = parts.get("days", 0) + 365 * parts.pop("years", 0) + 30 * parts.pop("months", 0)
    return timedelta(**parts)


def _check_retry_policy(policy: Any, step_name: str) -> dict:
    if not isinstance(policy, dict) or not isinstance(policy.get("ExceptionType"), list):
        raise RunError(f"step {step_name}: a retry policy needs an ExceptionType list: {policy!r}")
    if ("MaxAttempts" in policy) == ("ExpireAfterMin" in policy):
        raise RunError(f"step {step_name}: a retry policy needs exactly one of MaxAttempts and ExpireAfterMin")
    return policy


def _dependency_order(steps: list[Step]) -> dict[str, Step]:
    """Steps ordered so each comes after what it needs (definition order among equals)."""
    ordered: dict[str, Step] = {}
    remaining = {step.name: step for step in steps}
    while remaining:
        ready = [step for step in remaining.values() if step.needs <= ordered.keys()]
        if not ready:
            raise RunError(f"the steps form a cycle: {' -> '.join(_cycle(remaining))}")
        for step in ready:
            ordered[step.name] = remaining.pop(step.name)
    return ordered


def _cycle(remaining: dict[str, Step]) -> list[str]:
    """One cycle among steps that all wait on each other, for the error message."""
    path = [next(iter(remaining))]
    while path[-1] not in path[:-1]:
        path.append(min(name for name in remaining[path[-1]].needs if name in remaining))
    return path[path.index(path[-1]) :]


def resolve_parameters(declared: list[dict], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value: the override (type-checked; strings are
    parsed, as StartPipelineExecution passes them) or the default."""
    by_name = {p["Name"]: p for p in declared}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        declared_names = ", ".join(by_name) or "none"
        raise RunError(f"unknown parameter(s) {', '.join(unknown)}; the pipeline declares: {declared_names}")
    values = {}
    for name, declaration in by_name.items():
        if name not in overrides and "DefaultValue" not in declaration:
            raise RunError(f"parameter {name} has no default value: pass one")
        values[name] = _typed(declaration, overrides.get(name, declaration.get("DefaultValue")))
    return values


def _typed(declaration: dict, value: Any) -> Any:
    name, kind = declaration["Name"], declaration.get("Type", "String")
    if kind not in PARAMETER_TYPES:
        raise RunError(f"parameter {name} has type {kind!r}; expected one of {', '.join(PARAMETER_TYPES)}")
    try:
        typed = _PARSERS[kind](value)
    except (TypeError, ValueError):
        raise RunError(f"parameter {name} is {kind}: {value!r} is not a valid {kind.lower()}") from None
    enum = declaration.get("EnumValues")
    if enum and typed not in enum:
        raise RunError(f"parameter {name} must be one of {', '.join(map(str, enum))}, got {value!r}")
    return typed


def _parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    return int(value)


def _parse_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    return float(value)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(value)


_PARSERS = {"String": _parse_str, "Integer": _parse_int, "Float": _parse_float, "Boolean": _parse_bool}


# --- the execution record --------------------------------------------------------------


def _definition_text(definition: str | dict | None, pipeline_name: str | None) -> str:
    """The exact text to run and record: a string as given, a dict as JSON."""
    if definition is None or not pipeline_name:
        raise RunError("a new run needs a definition and a pipeline_name")
    return definition if isinstance(definition, str) else json.dumps(definition, indent=1)


def _new_record(home: LocalHome, pipeline_name: str, execution_id: str | None, parameters: dict,
                steps: dict[str, Step]) -> dict:
    execution_id = execution_id or secrets.token_hex(6)
    if not re.fullmatch(r"[A-Za-z0-9](-*[A-Za-z0-9]){0,127}", execution_id):
        raise RunError(f"execution id {execution_id!r}: use letters, digits and hyphens")
    if (home.runs / execution_id).exists():
        raise RunError(f"execution {execution_id} already exists under {home.runs}; resume it or pick another id")
    return {
        "execution_id": execution_id,
        "pipeline_name": pipeline_name,
        "execution_arn": f"{_pipeline_arn(home, pipeline_name)}/execution/{execution_id}",
        "status": "Executing",
        "failure_reason": None,
        "failed_step": None,
        "started": _now(),
        "ended": None,
        "seconds": None,
        "resumes": 0,
        "parameters": parameters,
        "steps": [_blank_step(step) for step in steps.values()],
    }


def _resumable(home: LocalHome, execution_id, definition, pipeline_name, parameters) -> tuple[str, dict]:
    """The recorded definition and record of `execution_id`, ready to run again:
    succeeded steps kept, the rest (failed, never run, or cut off mid-run) reset."""
    try:
        record = home.execution(execution_id)
    except FileNotFoundError as exc:
        raise RunError(str(exc)) from None
    text = (home.runs / execution_id / "definition.json").read_text()
    if record["status"] == "Succeeded":
        raise RunError(f"execution {execution_id} succeeded; there is nothing to resume")
    if parameters:
        raise RunError("a resumed execution keeps its parameters; start a new run to change them")
    if pipeline_name and pipeline_name != record["pipeline_name"]:
        raise RunError(f"execution {execution_id} belongs to pipeline {record['pipeline_name']}, not {pipeline_name}")
    if definition is not None and _parse(_definition_text(definition, record["pipeline_name"])) != _parse(text):
        raise RunError(f"execution {execution_id} resumes its recorded definition; the one given differs")
    record.update(status="Executing", failure_reason=None, failed_step=None, ended=None, resumes=record["resumes"] + 1)
    record["steps"] = [s if s["status"] == "Succeeded" else {**s, **_blank_step_fields()} for s in record["steps"]]
    return text, record


def _blank_step(step: Step) -> dict:
    return {"name": step.name, "type": step.type, **_blank_step_fields()}


def _blank_step_fields() -> dict:
    return {
        "status": "NotRun", "cache_hit": False, "started": None, "ended": None, "seconds": None,
        "attempts": [], "job_name": None, "arguments": None, "response": None,
        "property_files": {}, "failure_reason": None, "log": None,
    }


def _parse(text: str) -> dict:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RunError(f"the definition is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RunError("the definition must be a JSON object")
    return document


def _pipeline_arn(home: LocalHome, pipeline_name: str) -> str:
    return f"arn:aws:sagemaker:{home.region}:{home.account}:pipeline/{pipeline_name.lower()}"


def _write_json_atomically(path: Path, document: Any) -> None:
    """Write beside the target then rename, so a reader (or a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)


# --- the step cache --------------------------------------------------------------------


class StepCache:
    """Responses of succeeded job steps, keyed by what determines their result.

    The key is the step type and the resolved Arguments minus where outputs
    are written (those carry the execution id); code is content-addressed in
    its S3 URI, so a code change is a different key. As in SageMaker, a hit
    reuses the earlier job's response, whose outputs live where that job wrote them.
    """

    def __init__(self, root: Path, store):
        self.root = root
        self.store = store

    @staticmethod
    def key(step_type: str, arguments: dict) -> str:
        stripped = json.loads(json.dumps(arguments))
        for parent, field in list(_output_fields(stripped)):
            del parent[field]
        canonical = json.dumps({"type": step_type, "arguments": stripped}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def lookup(self, key: str, expire_after: timedelta | None) -> dict | None:
        """The entry for `key` if it has not expired and its outputs still exist."""
        path = self.root / f"{key}.json"
        if not path.is_file():
            return None
        entry = json.loads(path.read_text())
        created = datetime.fromisoformat(entry["created"])
        if expire_after is not None and created + expire_after <= datetime.now(timezone.utc):
            return None
        if not all(self._exists(parent[field]) for parent, field in _output_fields(entry["response"])):
            return None
        return entry

    def save(self, key: str, entry: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomically(self.root / f"{key}.json", {**entry, "created": _now()})

    def _exists(self, uri: str) -> bool:
        return self.store.exists(uri) or bool(self.store.list(uri.rstrip("/") + "/"))


def _output_fields(tree: Any, parent_key: str | None = None) -> Iterator[tuple[dict, str]]:
    """(dict, field) for every output location in a request or response tree."""
    if isinstance(tree, dict):
        field = OUTPUT_FIELDS.get(parent_key)
        if field in tree:
            yield tree, field
        for key, value in tree.items():
            yield from _output_fields(value, key)
    elif isinstance(tree, list):
        for value in tree:
            yield from _output_fields(value, parent_key)


def retry_delay(policies: tuple[dict, ...], error_type: str, attempt: int, elapsed: float) -> float | None:
    """Seconds to wait before retrying after failed attempt `attempt`, or None to give up.

    The first policy listing `error_type` decides: IntervalSeconds *
    BackoffRate^(attempt-1), while retries stay within MaxAttempts (the number
    of retries, as SageMaker counts) or the ExpireAfterMin window.
    """
    for policy in policies:
        if error_type not in policy["ExceptionType"]:
            continue
        delay = policy.get("IntervalSeconds", 1) * policy.get("BackoffRate", 2.0) ** (attempt - 1)
        if attempt > policy.get("MaxAttempts", float("inf")):
            return None
        if elapsed + delay > policy.get("ExpireAfterMin", float("inf")) * 60:
            return None
        return delay
    return None


def resource_name(step_name: str, salt: str, limit: int = 63) -> str:
    """A SageMaker-valid name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,limit-1}`) from a step name
    and a hash of `salt`, unique per execution, resume and attempt."""
    digest = hashlib.sha256(salt.encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", step_name).strip("-")[: limit - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest


# --- the execution ---------------------------------------------------------------------


class Execution:
    """One run of the scheduler over a plan; owns the record while it runs."""

    def __init__(self, *, home, record, steps, store, handlers, on_event, max_parallel, isolation, sleep):
        self.home = home
        self.run_dir = home.runs / record["execution_id"]
        self.record = record
        self.steps: dict[str, Step] = steps
        self.store = store
        self.handlers = handlers
        self.on_event = on_event
        self.max_parallel = max_parallel
        self.isolation = isolation
        self.sleep = sleep
        self.cache = StepCache(home.cache, store)
        self.lock = threading.RLock()
        self.by_name = {s["name"]: s for s in record["steps"]}
        self.state = {name: "succeeded" if self.by_name[name]["status"] == "Succeeded" else "pending" for name in steps}
        (self.run_dir / "logs").mkdir(exist_ok=True)

    def run(self) -> dict:
        started = time.monotonic()
        self._save()
        self._emit("execution_started", resumes=self.record["resumes"], parameters=self.record["parameters"])
        with ThreadPoolExecutor(self.max_parallel, thread_name_prefix="step") as pool:
            running = {}
            while True:
                self._skip_unreachable()
                for step in self._ready(self.max_parallel - len(running)):
                    self.state[step.name] = "running"
                    running[pool.submit(self._run_step, step)] = step
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    self.state[running.pop(future).name] = future.result()
        return self._finish(time.monotonic() - started)

    def _ready(self, room: int) -> list[Step]:
        """Steps whose dependencies succeeded, in plan order; none once a step has failed."""
        if "failed" in self.state.values():
            return []
        ready = [
            step for step in self.steps.values()
            if self.state[step.name] == "pending"
            and all(self.state[need] == "succeeded" for need in step.needs)
            and (step.branch is None or self._outcome(step.branch[0]) == step.branch[1])
        ]
        return ready[:room]

    def _skip_unreachable(self) -> None:
        """Mark NotRun what can no longer run: the branch not taken, and what depends on it."""
        for step in self.steps.values():
            if self.state[step.name] != "pending":
                continue
            if any(self.state[need] == "skipped" for need in step.needs):
                self._skip(step, "a step it depends on did not run")
            elif step.branch and self.state[step.branch[0]] == "succeeded":
                condition, wanted = step.branch
                if self._outcome(condition) != wanted:
                    self._skip(step, f"condition {condition} was {self._outcome(condition)}")

    def _skip(self, step: Step, reason: str) -> None:
        self.state[step.name] = "skipped"
        self._emit("step_skipped", step, reason=reason)

    def _outcome(self, condition: str) -> str | None:
        return (self.by_name[condition]["response"] or {}).get("Outcome")

    def _finish(self, seconds: float) -> dict:
        stuck = [name for name, state in self.state.items() if state == "pending"]
        if stuck and "failed" not in self.state.values():
            raise RuntimeError(f"scheduler bug: steps {stuck} neither ran nor were skipped")
        with self.lock:
            self.record.update(
                status="Failed" if self.record["failed_step"] else "Succeeded", ended=_now(), seconds=round(seconds, 3)
            )
            self._save()
            self._emit(
                "execution_finished", status=self.record["status"], reason=self.record["failure_reason"],
                seconds=self.record["seconds"],
            )
        return self.record

    # -- one step (on a worker thread) --

    def _run_step(self, step: Step) -> str:
        """Run one step to its end; return its new state, "succeeded" or "failed"."""
        clock = time.monotonic()
        self._update(step, status="Starting", started=_now())
        self._emit("step_started", step)
        try:
            arguments = resolve(step.arguments, self._scope())
            self._update(step, arguments=arguments)
            execute = self._execute_in_process if step.type in IN_PROCESS else self._execute_job
            result = execute(step, arguments)
        except StepFailure as failure:
            return self._fail(step, failure, clock)
        except ExpressionError as exc:
            return self._fail(step, StepFailure(str(exc)), clock)
        except Exception as exc:  # a bug or an unreadable input must fail the step, not the runner
            self._append_log(step, traceback.format_exc())
            return self._fail(step, StepFailure(f"{type(exc).__name__}: {exc}"), clock)
        self._update(step, status="Succeeded", ended=_now(), seconds=_since(clock), **result)
        self._emit("step_succeeded", step, seconds=_since(clock), cache_hit=result["cache_hit"])
        return "succeeded"

    def _fail(self, step: Step, failure: StepFailure, clock: float) -> str:
        with self.lock:
            self._update(
                step, status="Failed", ended=_now(), seconds=_since(clock), failure_reason=failure.reason,
                response=failure.response,
            )
            if not self.record["failed_step"]:
                self.record.update(failed_step=step.name, failure_reason=failure.reason)
            self._emit("step_failed", step, reason=failure.reason, seconds=_since(clock))
        return "failed"

    def _execute_in_process(self, step: Step, arguments: dict) -> dict:
        self._update(step, status="Executing")
        response = IN_PROCESS[step.type](self, step, arguments)
        self._append_log(step, json.dumps({"arguments": arguments, "response": response}, indent=1, default=str))
        return {"cache_hit": False, "response": response, "property_files": {}}

    def _execute_job(self, step: Step, arguments: dict) -> dict:
        """The job's outcome: from the cache when the step allows and has an entry, else by running it."""
        key = StepCache.key(step.type, arguments) if step.cache else None
        entry = self.cache.lookup(key, step.expire_after) if key else None
        if entry:
            self._emit("step_cache_hit", step, cached_from=entry["execution_id"], job_name=entry["job_name"])
            return {"cache_hit": True, **{k: entry[k] for k in ("response", "property_files", "job_name")}}
        self._update(step, status="Executing")
        response = self._run_job(step, arguments)
        result = {"cache_hit": False, "response": response, "property_files": self._property_files(step, response)}
        if key:
            self.cache.save(key, {
                "execution_id": self.record["execution_id"], "step_name": step.name,
                "job_name": self.by_name[step.name]["job_name"], "response": response,
                "property_files": result["property_files"],
            })
        return result

    def _run_job(self, step: Step, arguments: dict) -> dict:
        """Run the job, retrying transient failures as the step's RetryPolicies allow."""
        first = time.monotonic()
        for attempt in count(1):
            name = resource_name(step.name, self._salt(step, attempt), NAME_LIMITS.get(step.type, 63))
            work_dir = self.run_dir / "jobs" / name
            work_dir.mkdir(parents=True)
            context = JobContext(
                store=self.store, work_dir=work_dir, log_path=self._log_path(step), region=self.home.region,
                account=self.home.account, models=self._models(), isolation=self.isolation,
            )
            self._append_log(step, f"[local runner] attempt {attempt}: {step.type} job {name}")
            self._update(step, job_name=name)
            started = _now()
            try:
                response = self.handlers[step.type](name, arguments, context)
            except JobFailed as exc:
                self._record_attempt(step, attempt, name, started, "Failed", exc.reason, exc.error_type)
                delay = retry_delay(step.retry, exc.error_type, attempt, time.monotonic() - first)
                if delay is None:
                    raise StepFailure(exc.reason, response=exc.response) from exc
                self._emit("step_retry", step, attempt=attempt + 1, delay=delay, reason=exc.reason,
                           error_type=exc.error_type)
                self.sleep(delay)
            else:
                self._record_attempt(step, attempt, name, started, "Succeeded")
                return response

    def _record_attempt(self, step: Step, attempt: int, job_name: str, started: str, status: str,
                        reason: str | None = None, error_type: str | None = None) -> None:
        entry = {"attempt": attempt, "job_name": job_name, "started": started, "ended": _now(), "status": status,
                 "failure_reason": reason, "error_type": error_type}
        self._update(step, attempts=[*self.by_name[step.name]["attempts"], entry])

    def _property_files(self, step: Step, response: dict) -> dict:
        """Each PropertyFile's JSON, read from the step's named output now that it succeeded."""
        files = {}
        for spec in step.property_files:
            name = spec["PropertyFileName"]
            path = ["ProcessingOutputConfig", "Outputs", Key(spec["OutputName"]), "S3Output", "S3Uri"]
            try:
                uri = f"{walk(spec, response, path, f'Steps.{step.name}').rstrip('/')}/{spec['FilePath']}"
                files[name] = json.loads(self.store.get_bytes(uri))
            except (ExpressionError, OSError, ValueError) as exc:
                raise StepFailure(f"property file {name} of step {step.name}: {exc}") from exc
        return files

    # -- in-process step types --

    def _run_condition(self, step: Step, arguments: dict) -> dict:
        conditions = step.arguments.get("Conditions")
        if not isinstance(conditions, list):
            raise StepFailure(f"condition step {step.name} has no Conditions list")
        scope = self._scope()
        return {"Outcome": str(all([evaluate_condition(condition, scope) for condition in conditions]))}

    def _run_fail(self, step: Step, arguments: dict) -> dict:
        message = arguments.get("ErrorMessage", "")
        raise StepFailure(str(message), response={"ErrorMessage": message})

    def _run_register_model(self, step: Step, arguments: dict) -> dict:
        registry = Registry(self.home.registry, region=self.home.region, account=self.home.account)
        return registry.register(arguments, execution_id=self.record["execution_id"], store=self.store)

    def _run_model(self, step: Step, arguments: dict) -> dict:
        """CreateModel: SageMaker names the model; Transform steps find it by that name."""
        name = arguments.get("ModelName") or resource_name(step.name, self._salt(step, "model"))
        arn = f"arn:aws:sagemaker:{self.home.region}:{self.home.account}:model/{name.lower()}"
        return {**arguments, "ModelName": name, "ModelArn": arn, "CreationTime": _now()}

    # -- shared state --

    def _scope(self) -> Scope:
        record = self.record
        with self.lock:
            done = {s["name"]: s for s in record["steps"] if s["status"] == "Succeeded"}
        return Scope(
            parameters=record["parameters"],
            execution={
                "PipelineExecutionId": record["execution_id"],
                "PipelineExecutionArn": record["execution_arn"],
                "PipelineName": record["pipeline_name"],
                "PipelineArn": _pipeline_arn(self.home, record["pipeline_name"]),
                "StartDateTime": record["started"],
            },
            steps=done,
            read_json=lambda uri: json.loads(self.store.get_bytes(uri)),
        )

    def _models(self) -> dict[str, dict]:
        """ModelName -> CreateModel request, for every model this execution created."""
        with self.lock:
            return {
                s["response"]["ModelName"]: s["response"]
                for s in self.record["steps"] if s["type"] == "Model" and s["status"] == "Succeeded"
            }

    def _salt(self, step: Step, attempt: Any) -> str:
        return f"{self.record['execution_id']}/{self.record['resumes']}/{step.name}/{attempt}"

    def _update(self, step: Step, **fields) -> None:
        with self.lock:
            self.by_name[step.name].update(fields)
            self._save()

    def _save(self) -> None:
        _write_json_atomically(self.run_dir / "execution.json", self.record)

    def _log_path(self, step: Step) -> Path:
        return self.run_dir / "logs" / f"{step.name}.log"

    def _append_log(self, step: Step, text: str) -> None:
        """Add runner lines to the step's log (jobs append their output to the same file)."""
        with self._log_path(step).open("a") as log:
            log.write(text.rstrip("\n") + "\n")
        self._update(step, log=str(self._log_path(step)))

    def _emit(self, event: str, step: Step | None = None, **fields) -> None:
        if self.on_event is None:
            return
        payload = {"event": event, "time": _now(), "execution_id": self.record["execution_id"]}
        if step is not None:
            payload.update(step=step.name, type=step.type)
        with self.lock:
            self.on_event({**payload, **fields})


# Step types the runner itself carries out; job types come from `handlers`.
IN_PROCESS = {
    "Condition": Execution._run_condition,
    "Fail": Execution._run_fail,
    "RegisterModel": Execution._run_register_model,
    "Model": Execution._run_model,
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _since(clock: float) -> float:
    return round(time.monotonic() - clock, 3)
