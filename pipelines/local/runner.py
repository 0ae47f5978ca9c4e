"""The local runner's scheduler: runs a SageMaker pipeline definition JSON offline.

It reads only the JSON SageMaker would receive (never SDK objects), so a local
run tests the artifact that ships. Steps form a DAG (`pipelines.local.plan`);
independent steps run on threads up to `max_parallel_steps`. Job steps
(Processing, Training, Tuning, Transform) are delegated to
`pipelines.local.jobs` (or to the `handlers` a test injects), retried as their
RetryPolicies allow and cached as their CacheConfig allows
(`pipelines.local.cache`); Condition, Fail, RegisterModel and Model run in
process (`pipelines.local.steps`).

Every execution is recorded under `home.runs/<execution_id>/`
(`pipelines.local.records`): the definition, `execution.json`, one log per
step, and one work directory per job. `resume=` reruns what did not succeed.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from itertools import count
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from pipelines import spec
from pipelines.local import liveness, prune, s3_endpoint, scope, selection, stopping, storage
from pipelines.local.cache import StepCache
from pipelines.local.environments import check_job_env, default_job_env
from pipelines.local.expressions import ExpressionError, Key, Scope, resolve, walk
from pipelines.local.home import LocalHome
from pipelines.local.jobs import JobContext, JobFailed
from pipelines.local.plan import RunError, Step, parse_definition, plan, resolve_parameters
from pipelines.local.registry import Registry
from pipelines.local.records import (
    arn, definition_text, new_record, now, resumable, save_record, write_definition,
)
from pipelines.local.steps import IN_PROCESS, JOB_HANDLERS, NAME_LIMITS, StepFailure, resource_name
from pipelines.local.stopping import JobStopped, Stop

_POLL_SECONDS = 0.2  # how often the scheduler looks for a stop request from another process


def run_pipeline(
    definition: str | dict | None = None,
    *,
    pipeline_name: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    home: LocalHome,
    store: storage.Store | str | None = None,
    execution_id: str | None = None,
    resume: str | None = None,
    source: str | None = None,
    selected: Sequence[str] = (),
    max_parallel_steps: int = 4,
    on_event: Callable[[dict], None] | None = None,
    handlers: Mapping[str, Callable[..., dict]] | None = None,
    isolation: str = "auto",
    job_env: str | None = None,
    origin: dict | None = None,
    keep_trials: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> dict:
    """Run (or with `resume=ID`, finish) one execution; return its record. With `source=ID`, run
    only the `selected` steps, reusing what they read from that execution (`selection`).

    `store` is a Store, or a spec for `storage.open_store` (None: files under
    `home.s3`). `handlers` maps job step types to `(job_name, request, ctx)
    -> response` functions, by default JOB_HANDLERS (`pipelines.local.jobs`). `on_event`
    receives progress events (dicts), one at a time, from worker threads.
    `job_env` is "image" (jobs run in a cached environment with their image's
    package versions, `pipelines.local.environments`) or "host" (this Python);
    None: `$PIPELINES_JOB_ENV`, else "image". `origin` (what built the definition: its settings...) is
    kept in the record, for the commands that re-run it. The working folders of a tuning step's losing
    trials are removed when it succeeds, unless `keep_trials`.
    Problems found before anything runs raise `RunError`; a step that fails
    makes the returned record `Failed` instead. SIGINT, SIGTERM and SIGHUP (on the main thread), or
    `stopping.request_stop` from another process, stop the jobs and make it `Stopped`.
    """
    if max_parallel_steps < 1:
        raise RunError(f"max_parallel_steps must be at least 1, got {max_parallel_steps}")
    try:
        job_env = check_job_env(job_env) if job_env else default_job_env()
    except ValueError as exc:
        raise RunError(str(exc)) from None
    emulated = handlers is None  # the scope checks describe the runner's own job handlers, not a test's
    handlers = dict(JOB_HANDLERS if handlers is None else handlers)
    if resume:
        text, record = resumable(home, resume, definition, pipeline_name, parameters)
    else:
        text = definition_text(definition, pipeline_name)
    document = parse_definition(text)
    steps = plan(document, in_process=IN_PROCESS, job_types=handlers)
    if not resume:
        reused, overrides = {}, dict(parameters or {})
        if source:
            try:
                earlier = home.execution(source)
            except FileNotFoundError as exc:
                raise RunError(str(exc)) from None
            reused = selection.reused_steps(steps, list(selected), earlier)
            declared = {p.name for p in document.parameters}  # the source's values, then -p
            overrides = {**{k: v for k, v in earlier["parameters"].items() if k in declared}, **overrides}
        values = resolve_parameters(document.parameters, overrides)
        record = new_record(home, pipeline_name, execution_id, values, steps, origin)
        if source:
            record["selective"] = {"source_execution": source, "selected_steps": list(selected)}
            record["steps"] = [reused.get(s["name"], s) for s in record["steps"]]
    if isinstance(store, str) or store is None:
        store = storage.open_store(store, root=home.s3)
    registry = Registry.of(home) if any(step.type == "Model" for step in steps.values()) else None  # opening creates it
    problems = scope.refusals(steps, execution_scope(home, record, store), store, registry) if emulated else []
    if problems:
        raise RunError(f"the local runner cannot run this definition: {'; '.join(problems)}")
    if resume:
        stopping.clear(home, resume)
    else:
        write_definition(home, record["execution_id"], text)
    execution = Execution(
        home=home, record=record, steps=steps, store=store, handlers=handlers,
        on_event=on_event, max_parallel=max_parallel_steps, isolation=isolation, job_env=job_env, sleep=sleep,
        keep_trials=keep_trials,
    )
    return execution.run()


# The execution variables that name the job of the step that reads them.
JOB_NAME_VARIABLES = {"Processing": "ProcessingJobName", "Training": "TrainingJobName"}


def execution_scope(home: LocalHome, record: dict, store: storage.Store, steps: dict | None = None,
                    job: tuple[str, str] | None = None) -> Scope:
    """What expressions see: the parameters, the execution variables (with `job`, a (variable,
    job name) pair, the step's own job name), and the records of the steps that succeeded."""
    return Scope(
        parameters=record["parameters"],
        execution={
            "PipelineExecutionId": record["execution_id"],
            "PipelineExecutionArn": record["execution_arn"],
            "PipelineName": record["pipeline_name"],
            "PipelineArn": arn(home, "pipeline", record["pipeline_name"]),
            "StartDateTime": record["started"],
            **dict([job] if job else []),
        },
        steps=steps or {},
        read_json=lambda uri: json.loads(store.get_bytes(uri)),
    )


def retry_delay(policies: tuple[spec.RetryPolicy, ...], error_type: str, attempt: int,
                elapsed: float) -> float | None:
    """Seconds to wait before retrying after failed attempt `attempt`, or None to give up.

    The first policy listing `error_type` decides: IntervalSeconds *
    BackoffRate^(attempt-1), while retries stay within MaxAttempts (the number
    of retries, as SageMaker counts) or the ExpireAfterMin window.
    """
    for policy in policies:
        if error_type not in policy.exception_types:
            continue
        delay = _given(policy.interval_seconds, 1) * _given(policy.backoff_rate, 2.0) ** (attempt - 1)
        if attempt > _given(policy.max_attempts, float("inf")):
            return None
        if elapsed + delay > _given(policy.expire_after_min, float("inf")) * 60:
            return None
        return delay
    return None


def _given(value, default):
    return default if value is None else value


class Execution:
    """One run of the scheduler over a plan; owns the record while it runs."""

    def __init__(self, *, home: LocalHome, record: dict, steps: dict[str, Step], store: storage.Store,
                 handlers: Mapping[str, Callable[..., dict]], on_event: Callable[[dict], None] | None,
                 max_parallel: int, isolation: str, job_env: str, sleep: Callable[[float], None],
                 keep_trials: bool = False):
        self.home = home
        self.run_dir = home.runs / record["execution_id"]
        self.record = record
        self.steps = steps
        self.store = store
        self.handlers = handlers
        self.on_event = on_event
        self.max_parallel = max_parallel
        self.isolation = isolation
        self.job_env = job_env
        self.keep_trials = keep_trials
        self._s3_access: dict[str, str] | None = None  # what jobs need to reach the store over S3 (`_job_s3`)
        self._closing = contextlib.ExitStack()  # what run() started and ends with it
        self.sleep = sleep
        self.cache = StepCache(home.cache, store)
        self.lock = threading.RLock()
        self.by_name = {s["name"]: s for s in record["steps"]}
        self.stop = Stop()
        self.stopping_announced = False
        chosen = set((record.get("selective") or {}).get("selected_steps") or steps)
        self.state = {name: "succeeded" if self.by_name[name]["status"] == "Succeeded" else
                      "pending" if name in chosen else "excluded" for name in steps}
        (self.run_dir / "logs").mkdir(exist_ok=True)

    def run(self) -> dict:
        started = time.monotonic()
        # Who runs it, and a heartbeat: `runs`, `logs` and `--resume` tell a live runner from a dead one.
        self.record.update(runner_pid=os.getpid(), runner=liveness.runner())
        self._save()
        liveness.beat(self.run_dir)
        beaten = time.monotonic()
        self._emit("execution_started", resumes=self.record["resumes"], parameters=self.record["parameters"])
        with self._closing, stopping.on_signals(self.stop, self._still_stopping), \
                ThreadPoolExecutor(self.max_parallel, thread_name_prefix="step") as pool:
            running = {}
            while True:
                self._skip_unreachable()
                for step in self._ready(self.max_parallel - len(running)):
                    self.state[step.name] = "running"
                    running[pool.submit(self._run_step, step)] = step
                if not running:
                    break
                done, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    self.state[running.pop(future).name] = future.result()
                self._check_stop_request(running.values())
                if time.monotonic() - beaten > liveness.BEAT_SECONDS:
                    liveness.beat(self.run_dir)
                    beaten = time.monotonic()
        return self._finish(time.monotonic() - started)

    def _check_stop_request(self, running) -> None:
        """Turn a first stop (a signal, or another process's request) into one `execution_stopping` event."""
        if not self.stop:
            reason = stopping.requested(self.home, self.record["execution_id"])
            if reason is None:
                return
            self.stop.request(reason)
        if not self.stopping_announced:
            self.stopping_announced = True
            self._emit("execution_stopping", reason=self.stop.reason, steps=[s.name for s in running])

    def _still_stopping(self, signal_name: str) -> None:
        running = [name for name, state in self.state.items() if state == "running"]
        self._emit("execution_stopping", reason=f"{signal_name} again: still waiting for {', '.join(running) or 'nothing'}")

    def _ready(self, room: int) -> list[Step]:
        """Steps whose dependencies succeeded, in plan order; none once a step has failed or stopped."""
        if self.stop or {"failed", "stopped"} & set(self.state.values()):
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
        if stuck and not self.stop and "failed" not in self.state.values():
            raise RuntimeError(f"scheduler bug: steps {stuck} neither ran nor were skipped")
        with self.lock:
            if self.stop:
                stopped = [name for name, state in self.state.items() if state == "stopped"]
                self.record.update(status="Stopped", stop_reason=self.stop.reason, stopped_steps=stopped)
            else:
                self.record["status"] = "Failed" if self.record["failed_step"] else "Succeeded"
            self.record.update(ended=now(), seconds=round(seconds, 3))
            self._save()
            self._emit(
                "execution_finished", status=self.record["status"],
                reason=self.record.get("stop_reason") or self.record["failure_reason"], seconds=self.record["seconds"],
            )
        return self.record

    # -- one step (on a worker thread) --

    def _run_step(self, step: Step) -> str:
        """Run one step to its end; return its new state, "succeeded" or "failed"."""
        clock = time.monotonic()
        self._update(step, status="Starting", started=now())
        self._emit("step_started", step)
        try:
            arguments = self._resolve(step, attempt=1)
            self._update(step, arguments=arguments)
            execute = self._execute_in_process if step.type in IN_PROCESS else self._execute_job
            result = execute(step, arguments)
        except JobStopped:
            self._append_log(step, f"[local runner] stopped: {self.stop.reason}")
            seconds = _since(clock)
            self._update(step, status="Stopped", ended=now(), seconds=seconds)
            self._emit("step_stopped", step, seconds=seconds)
            return "stopped"
        except StepFailure as failure:
            return self._fail(step, failure, clock)
        except ExpressionError as exc:
            return self._fail(step, StepFailure(str(exc)), clock)
        except Exception as exc:  # a bug or an unreadable input must fail the step, not the runner
            self._append_log(step, traceback.format_exc())
            return self._fail(step, StepFailure(f"{type(exc).__name__}: {exc}"), clock)
        seconds = _since(clock)
        self._update(step, status="Succeeded", ended=now(), seconds=seconds, **result)
        self._emit("step_succeeded", step, seconds=seconds, cache_hit=result["cache_hit"])
        return "succeeded"

    def _fail(self, step: Step, failure: StepFailure, clock: float) -> str:
        seconds = _since(clock)
        with self.lock:
            self._update(
                step, status="Failed", ended=now(), seconds=seconds, failure_reason=failure.reason,
                response=failure.response,
            )
            if not self.record["failed_step"]:
                self.record.update(failed_step=step.name, failure_reason=failure.reason)
            self._emit("step_failed", step, reason=failure.reason, seconds=seconds, log=self.by_name[step.name].get("log"))
        return "failed"

    def _execute_in_process(self, step: Step, arguments: dict) -> dict:
        self._update(step, status="Executing")
        response = IN_PROCESS[step.type](self, step, arguments)
        self._append_log(step, json.dumps({"arguments": arguments, "response": response}, indent=1, default=str))
        return {"cache_hit": False, "response": response, "property_files": {}}

    def _execute_job(self, step: Step, arguments: dict) -> dict:
        """The job's outcome: from the cache when the step allows and has an entry, else by running it."""
        key = StepCache.key(step.type, arguments, self.job_env) if step.cache else None
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
            name = self._job_name(step, attempt)
            if attempt > 1 and step.type in JOB_NAME_VARIABLES:  # the new job's name, where the arguments use it
                arguments = self._resolve(step, attempt)
            work_dir = self.run_dir / "jobs" / name
            work_dir.mkdir(parents=True)
            context = JobContext(
                store=self.store, work_dir=work_dir, log_path=self._log_path(step), region=self.home.region,
                account=self.home.account, models=self._models(), isolation=self.isolation,
                job_env=self.job_env, s3_access=self._job_s3(), stop=self.stop,
                progress=lambda fields: self._emit("trial_finished", step, **fields),
                heartbeat=self._heartbeat(step),
            )
            self._append_log(step, f"[local runner] attempt {attempt}: {step.type} job {name}")
            self._update(step, job_name=name)
            started = now()
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
                if self.stop:
                    raise JobStopped(self.stop.reason) from exc
            except JobStopped:
                self._record_attempt(step, attempt, name, started, "Stopped")
                raise
            except Exception as exc:  # not the job's failure (a failed upload, a bug): record the attempt, not retried
                self._record_attempt(step, attempt, name, started, "Failed", f"{type(exc).__name__}: {exc}")
                raise
            else:
                self._record_attempt(step, attempt, name, started, "Succeeded")
                if step.type == "Tuning" and not self.keep_trials:
                    for folder in prune.losing_trial_folders(work_dir, response):
                        shutil.rmtree(folder, ignore_errors=True)
                return response

    def _job_s3(self) -> dict[str, str]:
        """The store's S3 endpoint for jobs, started when the first job runs: an execution whose steps
        are all cache hits never needs it (stopping it costs up to half a second)."""
        with self.lock:
            if self._s3_access is None:
                self._s3_access = self._closing.enter_context(s3_endpoint.job_access(self.store, self.home.region))
            return self._s3_access

    def _record_attempt(self, step: Step, attempt: int, job_name: str, started: str, status: str,
                        reason: str | None = None, error_type: str | None = None) -> None:
        entry = {"attempt": attempt, "job_name": job_name, "started": started, "ended": now(), "status": status,
                 "failure_reason": reason, "error_type": error_type}
        self._update(step, attempts=[*self.by_name[step.name]["attempts"], entry])

    def _property_files(self, step: Step, response: dict) -> dict:
        """Each PropertyFile's JSON, read from the step's named output now that it succeeded."""
        files = {}
        for file in step.property_files:
            name = file.name
            path = ["ProcessingOutputConfig", "Outputs", Key(file.output_name), "S3Output", "S3Uri"]
            try:
                uri = f"{walk(spec.property_file_json(file), response, path, f'Steps.{step.name}').rstrip('/')}/{file.file_path}"
                files[name] = json.loads(self.store.get_bytes(uri))
            except (ExpressionError, OSError, ValueError) as exc:
                raise StepFailure(f"property file {name} of step {step.name}: {exc}") from exc
        return files

    # -- shared state (also what in-process steps see) --

    def scope(self) -> Scope:
        """What expressions see now: the parameters, the execution, and the steps that succeeded."""
        return execution_scope(self.home, self.record, self.store, self._succeeded())

    def _resolve(self, step: Step, attempt: int) -> dict:
        """The step's arguments now; a Processing or Training step also sees its attempt's job name."""
        variable = JOB_NAME_VARIABLES.get(step.type)
        job = (variable, self._job_name(step, attempt)) if variable else None
        return resolve(step.arguments, execution_scope(self.home, self.record, self.store, self._succeeded(), job))

    def _job_name(self, step: Step, attempt: int) -> str:
        return resource_name(step.name, self.salt(step, attempt), NAME_LIMITS.get(step.type, 63))

    def salt(self, step: Step, attempt: Any) -> str:
        """What makes a resource name unique to this execution, resume, step and attempt."""
        return f"{self.record['execution_id']}/{self.record['resumes']}/{step.name}/{attempt}"

    def _succeeded(self) -> dict[str, dict]:
        with self.lock:
            return {s["name"]: s for s in self.record["steps"] if s["status"] == "Succeeded"}

    def _models(self) -> dict[str, dict]:
        """ModelName -> CreateModel request, for every model this execution created."""
        return {s["response"]["ModelName"]: s["response"] for s in self._succeeded().values() if s["type"] == "Model"}

    def _update(self, step: Step, **fields) -> None:
        with self.lock:
            self.by_name[step.name].update(fields)
            self._save()

    def _save(self) -> None:
        save_record(self.run_dir, self.record)

    def _log_path(self, step: Step) -> Path:
        return self.run_dir / "logs" / f"{step.name}.log"

    def _append_log(self, step: Step, text: str) -> None:
        """Add runner lines to the step's log (jobs append their output to the same file)."""
        path = self._log_path(step)
        with path.open("a") as log:
            log.write(text.rstrip("\n") + "\n")
        if self.by_name[step.name].get("log") != str(path):  # the record is rewritten only when it changes
            self._update(step, log=str(path))

    def _heartbeat(self, step: Step):
        """A `progress` event with a running job's latest line, at most one per job every PROGRESS_SECONDS:
        a long training or tuning job then shows where it is at least that often (train.py prints a line
        every 5 s)."""
        last: dict[str, float] = {}

        def beat(fields: dict) -> None:
            job = fields.get("job_name", "")
            clock = time.monotonic()
            if clock - last.get(job, -PROGRESS_SECONDS) >= PROGRESS_SECONDS:
                last[job] = clock
                self._emit("progress", step, **fields)
        return beat

    def _emit(self, event: str, step: Step | None = None, **fields) -> None:
        if self.on_event is None:
            return
        payload = {"event": event, "time": now(), "execution_id": self.record["execution_id"]}
        if step is not None:
            payload.update(step=step.name, type=step.type)
        with self.lock:
            try:
                self.on_event({**payload, **fields})
            except Exception:  # an observer that fails (a closed terminal...) must not fail a step: it is dropped
                self.on_event = None


PROGRESS_SECONDS = 4.0  # at most one progress line per job this often


def _since(clock: float) -> float:
    return round(time.monotonic() - clock, 3)
