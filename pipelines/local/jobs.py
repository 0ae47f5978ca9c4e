"""Job handlers: Processing, Training, Tuning and Transform without Docker.

Each handler takes a job's Create*Job request (the step's Arguments, already
resolved) and returns what the matching Describe* call would, so that
``Steps.X.<path>`` resolves locally exactly as in the cloud. A handler stages
inputs from the store into each host's ``/opt/ml`` directory, writes the
config files SageMaker writes, runs the hosts (`container.run_hosts`) and,
only when every host succeeded, uploads the outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import gzip
import hashlib
import json
import math
import os
import re
import signal
import tarfile
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from . import scope, serving, tuning, xgboost_algorithm
from .container import (
    NAMESPACE_HINT, HostExit, HostRun, IsolationError, append_log, host_path, links_out, resolve_isolation, run_hosts,
    stays_inside,
)
from .environments import default_job_env, job_python
from .images import TRAINING_CWD, XGBOOST, Image, image_for
from .records import arn, now
from .stopping import JobStopped, Stop
from .storage import Store

_PYTHON = re.compile(r"(.*/)?python(3(\.\d+)?)?")
_MAX_REASON = 1024  # SageMaker's limit on FailureReason and ExitMessage
# The sagemaker_* hyperparameters the training toolkit consumes itself; any
# other sagemaker_* one is an "additional framework parameter".
_TOOLKIT_HPS = frozenset({
    "sagemaker_program", "sagemaker_submit_directory", "sagemaker_container_log_level",
    "sagemaker_job_name", "sagemaker_region", "sagemaker_enable_cloudwatch_metrics",
})
_TUNING_ONLY_FIELDS = frozenset({
    "StaticHyperParameters", "HyperParameterTuningResourceConfig", "DefinitionName",
    "TuningObjective", "HyperParameterRanges",
})


@dataclass
class JobContext:
    store: Store
    work_dir: Path  # a fresh, empty directory owned by this job
    log_path: Path  # the job's combined stdout/stderr is appended here
    region: str = "us-east-1"
    account: str = "000000000000"
    models: dict[str, dict] = field(default_factory=dict)  # ModelName -> CreateModel request
    isolation: str = "auto"  # "namespace" | "paths" | "auto"
    log_label: str = ""  # prefix of this job's log lines (a tuning job sets its training job's name)
    # "image": a cached environment with the image's packages; "host": the runner's own Python
    job_env: str = field(default_factory=default_job_env)
    # AWS_ENDPOINT_URL_S3 and the keys that reach the store over S3 (`s3_endpoint.job_access`); none: no S3
    s3_access: dict[str, str] = field(default_factory=dict)
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)  # the cores a job's "instance" has (SM_NUM_CPUS)
    stop: Stop = field(default_factory=Stop)  # set when the execution is stopping: the job's processes end
    # what a tuning job reports as each trial ends (`trial_finished` fields); the runner turns it into an event
    progress: Callable[[dict], None] = lambda fields: None
    # each line a training job prints (its first host's: {"line"}, plus a tuning job's trials done, left and time
    # left), so the runner can show where a long job is
    heartbeat: Callable[[dict], None] = lambda fields: None
    # each metric value a training job prints, as its MetricDefinitions read it (a tuner's early stopping)
    on_metric: Callable[[str, float], None] = lambda name, value: None


class JobFailed(Exception):
    """A job ended Failed. ``error_type``: "AlgorithmError" (the script failed:
    permanent), "SageMaker.JOB_INTERNAL_ERROR" (killed by a signal: retryable),
    "ClientError" (the request cannot run)."""

    def __init__(self, reason: str, response: dict, error_type: str):
        super().__init__(reason)
        self.reason = reason
        self.response = response
        self.error_type = error_type


class JobHalted(JobFailed):
    """A training job SageMaker reports Stopped rather than Failed: it ran past its StoppingCondition, or its
    tuning job stopped it (the tuning job's runtime limit, or early stopping). `secondary` is its
    SecondaryStatus (MaxRuntimeExceeded or Stopped)."""

    def __init__(self, reason: str, response: dict, secondary: str):
        super().__init__(reason, response, "Stopped")
        self.secondary = secondary


def _client_error(message: str) -> JobFailed:
    return JobFailed(f"ClientError: {message}", {}, "ClientError")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 3] + "..."


@dataclass(frozen=True)
class _Kind:
    noun: str  # "TrainingJob" -> TrainingJobName, TrainingJobArn, TrainingJobStatus
    resource: str  # in the ARN
    started: str | None
    ended: str
    defaults: dict = field(default_factory=dict)  # what Describe* returns when the request left it out
    modified: bool = True  # whether Describe* has LastModifiedTime (DescribeTransformJob has not)


_PROCESSING = _Kind("ProcessingJob", "processing-job", "ProcessingStartTime", "ProcessingEndTime")
_TRAINING = _Kind("TrainingJob", "training-job", "TrainingStartTime", "TrainingEndTime", {
    "EnableNetworkIsolation": False, "EnableInterContainerTrafficEncryption": False,
    "EnableManagedSpotTraining": False, "StoppingCondition": {"MaxRuntimeInSeconds": 86400}})
_TRANSFORM = _Kind("TransformJob", "transform-job", "TransformStartTime", "TransformEndTime",
                   {"MaxPayloadInMB": 6, "BatchStrategy": "MultiRecord"}, modified=False)
_TUNING = _Kind("HyperParameterTuningJob", "hyper-parameter-tuning-job", None, "HyperParameterTuningEndTime")


def _describe(kind: _Kind):
    """Wrap a handler body so that it returns (or fails with) a Describe*-shaped response:
    the request echoed back, plus name, ARN, status, times and FailureReason."""

    def decorate(body):
        @functools.wraps(body)
        def run(job_name: str, request: dict, ctx: JobContext) -> dict:
            created = now()
            base = {**copy.deepcopy(kind.defaults), **copy.deepcopy(request), f"{kind.noun}Name": job_name,
                    f"{kind.noun}Arn": arn(ctx, kind.resource, job_name), "CreationTime": created}
            if kind.started:
                base[kind.started] = created
            try:
                extra = body(job_name, request, ctx)
            except JobHalted as exc:
                exc.reason = _clip(exc.reason)
                exc.response = _finish(kind, base, {**exc.response, "SecondaryStatus": exc.secondary}, "Stopped",
                                       exc.reason)
                raise
            except JobFailed as exc:
                exc.reason = _clip(exc.reason)
                exc.response = _finish(kind, base, {**exc.response, "FailureReason": exc.reason}, "Failed")
                raise
            return _finish(kind, base, extra, "Completed")

        return run

    return decorate


def _finish(kind: _Kind, base: dict, extra: dict, status: str, message: str | None = None) -> dict:
    ended = now()
    response = {**base, **extra, f"{kind.noun}Status": status, kind.ended: ended,
                **({"LastModifiedTime": ended} if kind.modified else {})}
    if kind is _TRAINING:
        response.update(_training_times(base["CreationTime"], ended, response.get("SecondaryStatus", status),
                                        message or response.get("FailureReason")))
    return response


def _training_times(started: str, ended: str, status: str, reason: str | None) -> dict:
    """DescribeTrainingJob's timing members; locally there is no provisioning, so training is all of it."""
    seconds = max(1, round((datetime.fromisoformat(ended) - datetime.fromisoformat(started)).total_seconds()))
    transitions = [
        {"Status": "Starting", "StartTime": started, "EndTime": started, "StatusMessage": "Starting the training job"},
        {"Status": "Training", "StartTime": started, "EndTime": ended,
         "StatusMessage": "Training image download completed. Training in progress."},
        {"Status": status, "StartTime": ended, "EndTime": ended,
         "StatusMessage": reason or "Training job completed"},
    ]
    return {"SecondaryStatusTransitions": transitions, "TrainingTimeInSeconds": seconds,
            "BillableTimeInSeconds": seconds}


# --- shared steps of every job -------------------------------------------------


def _refuse(problems) -> None:
    """A ClientError for the first thing `pipelines.local.scope` finds outside the supported scope."""
    for problem in problems:
        raise _client_error(problem)


def _in_environment(ctx: JobContext, image: Image, runs: list[HostRun], *, isolated: bool,
                    requirements: Path | None = None) -> None:
    """Point each host's ``python``/``python3`` at the job's environment, open its log with what that is,
    let the hosts reach each other by name, and give them the store's S3 endpoint unless the job is
    network-isolated (as SageMaker gives it none)."""
    def log(line: str) -> None:
        append_log(ctx.log_path, f"[{ctx.log_label}] {line}" if ctx.log_label else line)

    chosen = job_python(image, ctx.job_env, requirements=requirements, on_build=log)
    for line in chosen.log_lines:
        log(line)
    hosts_file = _hosts_file(ctx, [run.name for run in runs])
    for run in runs:
        run.hosts_file = hosts_file
        if _PYTHON.fullmatch(run.argv[0]):
            run.argv[0] = chosen.python
        run.env.update(chosen.environment())
        run.keep.extend(chosen.directories())
        if not isolated:
            run.env.update(ctx.s3_access)


def _host_names(count) -> list[str]:
    return [f"algo-{i + 1}" for i in range(max(1, int(count)))]


def _hosts_file(ctx: JobContext, hosts: list[str]) -> Path | None:
    """/etc/hosts for a job of several hosts: algo-1..algo-N at loopback addresses of this job's own
    (127.a.b.1..N), so they reach each other by name as on SageMaker's network, and jobs running at
    once (tuning trials) never listen on the same address and port."""
    if len(hosts) == 1:
        return None
    block = int(hashlib.sha256(str(ctx.work_dir).encode()).hexdigest()[:8], 16) % (254 * 256)
    network = f"127.{1 + block // 256}.{block % 256}"
    path = ctx.work_dir / "hosts"
    path.write_text(Path("/etc/hosts").read_text() + "".join(f"{network}.{i + 1} {h}\n" for i, h in enumerate(hosts)))
    return path


def _resource_config(hosts: list[str], current: str, instance_type: str | None) -> dict:
    group = {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": hosts}
    return {"current_host": current, "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster", "hosts": hosts,
            "instance_groups": [group], "network_interface_name": "eth0"}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _stage(ctx: JobContext, uri: str, dest: Path, *, host: int = 0, hosts: int = 1, sharded: bool = False) -> list[Path]:
    """Download the S3Prefix ``uri`` into ``dest``: every object, or with
    ShardedByS3Key every ``hosts``-th object of the sorted list starting at ``host``."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        objects = ctx.store.list(uri)
        if not objects:
            raise FileNotFoundError(f"No S3 objects found under S3 URL {uri} (stage local data there with "
                                    f"--stage {uri}=LOCAL_PATH)")
        return ctx.store.download(uri, dest, keys=objects[host::hosts] if sharded else objects)
    except (FileNotFoundError, ValueError) as exc:
        raise _client_error(str(exc)) from exc


def _unpack(ctx: JobContext, uri: str, dest: Path) -> None:
    """Stage ``uri`` (a model.tar.gz, sourcedir.tar.gz...) and extract its archives into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.work_dir) as tmp:
        for path in _stage(ctx, uri, Path(tmp)):
            if tarfile.is_tarfile(path):
                _extract(path, dest)
            else:
                target = dest / path.relative_to(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                path.replace(target)


def _extract(archive: Path, dest: Path) -> None:
    """Unpack a tar archive; the "data" filter refuses members that would land outside ``dest``
    (``..``, absolute paths, links out), and the job does not start."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")
    except tarfile.TarError as exc:
        raise _client_error(f"cannot unpack {archive.name}: {exc}") from exc


def _pack(src_dir: Path, archive: Path) -> None:
    """tar.gz the contents of ``src_dir``, reproducibly (sorted, no times or owners)."""
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        for path in sorted(src_dir.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=path.relative_to(src_dir).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if info.isfile():
                with open(path, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)


def _pythonpath(*dirs: str) -> str:
    return os.pathsep.join([*dirs, *filter(None, [os.environ.get("PYTHONPATH")])])


def _max_runtime(request: dict) -> float | None:
    seconds = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
    return float(seconds) if seconds else None


def _run(ctx: JobContext, runs: list[HostRun], *, timeout=None, on_line=None) -> list[HostExit]:
    """Run the hosts; JobStopped when the execution stopped them (their outputs are not uploaded)."""
    if ctx.stop:
        raise JobStopped(ctx.stop.reason)
    try:
        exits = run_hosts(runs, isolation=ctx.isolation, log_path=ctx.log_path, log_label=ctx.log_label,
                          timeout=timeout, on_line=on_line, stop=ctx.stop.__bool__)
    except IsolationError as exc:
        raise _client_error(str(exc)) from exc
    if any(e.stopped == "stop requested" for e in exits):
        if isinstance(ctx.stop, _TrialStop) and not ctx.stop.execution:
            raise JobHalted(f"Stopped: {ctx.stop.reason}", {}, "Stopped")
        raise JobStopped(ctx.stop.reason)
    return exits


def _read_message(root: Path, container_path: str | None) -> str:
    path = host_path(root, container_path) if container_path else None
    return path.read_text(errors="replace").strip() if path and path.is_file() and stays_inside(root, path) else ""


def _upload(ctx: JobContext, run: HostRun, directory: Path, uri: str, response: dict) -> None:
    """Upload what a host left in `directory`; a link out of its /opt/ml fails the job instead."""
    escaping = links_out(run.root, directory)
    if escaping:
        raise JobFailed(f"AlgorithmError: {run.name} left a symbolic link out of /opt/ml in an output, which is "
                        f"not uploaded: {', '.join(escaping[:3])}", response, "AlgorithmError")
    ctx.store.upload_dir(directory, uri)


def _check_exits(ctx: JobContext, exits: list[HostExit], runs: list[HostRun], message_path: str | None,
                 response: dict) -> None:
    """Raise the JobFailed SageMaker would report for these host exits, if any failed.

    The first host that failed on its own decides: killed by a signal (OOM,
    SIGKILL) is an internal, retryable error; a non-zero exit is an
    AlgorithmError whose reason is the message file the script wrote, or else
    the end of its log.
    """
    failed = [(e, r) for e, r in zip(exits, runs) if e.returncode != 0 and e.stopped is None]
    if not failed:
        if any(e.stopped == "timeout" for e in exits):  # SageMaker stops the job: Stopped, MaxRuntimeExceeded
            raise JobHalted("MaxRuntimeExceeded: the job ran longer than StoppingCondition.MaxRuntimeInSeconds",
                            response, "MaxRuntimeExceeded")
        return
    host, run = failed[0]
    if host.returncode < 0:
        signame = signal.Signals(-host.returncode).name
        raise JobFailed(f"InternalServerError: host {host.name} was killed by {signame} "
                        "(out of memory, or stopped from outside); the job can be retried",
                        response, "SageMaker.JOB_INTERNAL_ERROR")
    message = _read_message(run.root, message_path)
    detail = message or f"exit code {host.returncode}; last log lines:\n" + "\n".join(host.tail)
    if "/opt/ml" in detail and resolve_isolation(ctx.isolation) == "paths":
        detail = f"{detail}\n(the job had no private /opt/ml, so hard-coded /opt/ml paths fail: {NAMESPACE_HINT})"
    raise JobFailed(f"AlgorithmError: {detail}", response, "AlgorithmError")


# --- Processing ----------------------------------------------------------------


@_describe(_PROCESSING)
def run_processing(job_name: str, request: dict, ctx: JobContext) -> dict:
    _refuse(scope.processing(request))
    app = request["AppSpecification"]
    image = image_for(app["ImageUri"])
    argv = [*app["ContainerEntrypoint"], *(app.get("ContainerArguments") or [])]
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    cluster = request["ProcessingResources"]["ClusterConfig"]
    hosts = _host_names(cluster.get("InstanceCount", 1))
    env = {**(request.get("Environment") or {}), "PYTHONUNBUFFERED": "1"}
    runs = [_processing_host(job_name, request, ctx, image, hosts, i, list(argv), dict(env)) for i in range(len(hosts))]
    isolated = bool((request.get("NetworkConfig") or {}).get("EnableNetworkIsolation"))
    _in_environment(ctx, image, runs, isolated=isolated)
    exits = _run(ctx, runs, timeout=_max_runtime(request))
    message = next(filter(None, (_read_message(r.root, "/opt/ml/output/message") for r in runs)), "")
    extra = {"ExitMessage": _clip(message)} if message else {}
    _check_exits(ctx, exits, runs, "/opt/ml/output/message", extra)
    for output in outputs:
        for run in runs:
            _upload(ctx, run, host_path(run.root, output["S3Output"]["LocalPath"]), output["S3Output"]["S3Uri"], extra)
    return extra


def _processing_host(job_name, request, ctx, image, hosts, index, argv, env) -> HostRun:
    root = ctx.work_dir / hosts[index]
    for item in request.get("ProcessingInputs") or []:
        s3 = item["S3Input"]
        _stage(ctx, s3["S3Uri"], host_path(root, s3["LocalPath"]), host=index, hosts=len(hosts),
               sharded=s3.get("S3DataDistributionType") == "ShardedByS3Key")
    for output in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
        host_path(root, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    instance_type = request["ProcessingResources"]["ClusterConfig"].get("InstanceType")
    _write_json(root / "config/resourceconfig.json", _resource_config(hosts, hosts[index], instance_type))
    _write_json(root / "config/processingjobconfig.json",
                {**request, "ProcessingJobName": job_name, "ProcessingJobArn": arn(ctx, "processing-job", job_name)})
    (root / "output").mkdir(parents=True, exist_ok=True)
    return HostRun(hosts[index], root, argv, env, cwd=image.workdir)  # the container starts in its WORKDIR


# --- Training ------------------------------------------------------------------


def _decode_hp(value):
    """A stored hyperparameter as the training toolkit sees it: JSON-decoded when it decodes."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _cmd_args(hps: dict) -> list[str]:
    """The toolkit's ``--name value`` arguments (``-n`` for one-letter names, dicts as k=v,...)."""
    args = []
    for name in sorted(hps):
        value = hps[name]
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in sorted(value.items()))
        args += [f"--{name}" if len(name) > 1 else f"-{name}", "" if value is None else str(value)]
    return args


def _user_hps(hps: dict) -> dict:
    """What the toolkit passes to the entry point: everything but its own sagemaker_* settings."""
    return {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}


def _env_value(value) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


# The built-in algorithm's own metric definitions, which SageMaker applies without the request naming them.
BUILTIN_METRICS = [{"Name": f"validation:{name}", "Regex": f".*\\[[0-9]+\\].*#011validation-{name}:(\\S+)"}
                   for name in xgboost_algorithm.METRICS]


class _MetricParser:
    """Applies MetricDefinitions to every log line; the last match of each metric wins.

    The regexes are written against CloudWatch's copy of the log, where a tab is ``#011``,
    so each line is matched both as printed and with its tabs written that way.
    """

    def __init__(self, definitions: list[dict], observe: Callable[[str, float], None] = lambda name, value: None):
        self._observe = observe
        try:
            self._regexes = [(d["Name"], re.compile(d["Regex"])) for d in definitions]
        except re.error as exc:
            raise _client_error(f"invalid MetricDefinitions regex: {exc}") from exc
        self._last: dict[str, dict] = {}
        self._lock = threading.Lock()

    def feed(self, host: str, line: str) -> None:
        escaped = line.replace("\t", "#011")
        for name, regex in self._regexes:
            match = regex.search(line) or regex.search(escaped)
            if not match:
                continue
            try:
                value = float(match.group(1))
            except (IndexError, ValueError):
                continue
            if math.isfinite(value):
                with self._lock:
                    self._last[name] = {"MetricName": name, "Value": value, "Timestamp": now()}
                self._observe(name, value)

    def final(self) -> list[dict]:
        return [self._last[name] for name, _ in self._regexes if name in self._last]


@_describe(_TRAINING)
def run_training(job_name: str, request: dict, ctx: JobContext) -> dict:
    _refuse(scope.training(request))
    algorithm = request["AlgorithmSpecification"]
    image = image_for(algorithm["TrainingImage"])
    output_path = request["OutputDataConfig"]["S3OutputPath"]
    hosts = _host_names((request.get("ResourceConfig") or {}).get("InstanceCount", 1))
    builtin = "sagemaker_program" not in (request.get("HyperParameters") or {})
    metrics = _MetricParser([*(algorithm.get("MetricDefinitions") or []), *(BUILTIN_METRICS if builtin else [])],
                            ctx.on_metric)
    runs = [_training_host(job_name, request, ctx, hosts, i, image if builtin else None) for i in range(len(hosts))]
    requirements = runs[0].root / "code" / "requirements.txt"
    _in_environment(ctx, image, runs, isolated=bool(request.get("EnableNetworkIsolation")),
                    requirements=requirements if requirements.is_file() else None)
    def on_line(host: str, line: str) -> None:
        metrics.feed(host, line)
        if host == runs[0].name:
            ctx.heartbeat({"line": line})

    try:
        exits = _run(ctx, runs, timeout=_max_runtime(request), on_line=on_line)
    except JobHalted as exc:
        exc.response = {**exc.response, "FinalMetricDataList": metrics.final()}
        raise
    _check_exits(ctx, exits, runs, "/opt/ml/output/failure",
                 {"FinalMetricDataList": metrics.final(), "SecondaryStatus": "Failed"})
    output = f"{output_path.rstrip('/')}/{job_name}/output"
    for name, source in (("model.tar.gz", "model"), ("output.tar.gz", "output/data")):
        _pack(runs[0].root / source, ctx.work_dir / name)
        ctx.store.put_file(f"{output}/{name}", ctx.work_dir / name)
    return {"FinalMetricDataList": metrics.final(), "SecondaryStatus": "Completed",
            "ModelArtifacts": {"S3ModelArtifacts": f"{output}/model.tar.gz"}}


def _training_host(job_name: str, request: dict, ctx: JobContext, hosts: list[str], index: int,
                   builtin: Image | None) -> HostRun:
    """One training host: channels staged, config files written, then either the script-mode
    entry point (the code unpacked, SM_* set) or, for `builtin`, the XGBoost algorithm."""
    root = ctx.work_dir / hosts[index]
    mode = request["AlgorithmSpecification"].get("TrainingInputMode")
    input_config = {}
    for channel in request.get("InputDataConfig") or []:
        name, source = channel["ChannelName"], channel["DataSource"]["S3DataSource"]
        distribution = source.get("S3DataDistributionType", "FullyReplicated")
        _stage(ctx, source["S3Uri"], root / "input/data" / name, host=index, hosts=len(hosts),
               sharded=distribution == "ShardedByS3Key")
        input_config[name] = {**({"ContentType": channel["ContentType"]} if channel.get("ContentType") else {}),
                              "TrainingInputMode": channel.get("InputMode") or mode or "File",
                              "S3DistributionType": distribution, "RecordWrapperType": "None"}
    resources = _resource_config(hosts, hosts[index], (request.get("ResourceConfig") or {}).get("InstanceType"))
    _write_json(root / "input/config/hyperparameters.json", request.get("HyperParameters") or {})
    _write_json(root / "input/config/resourceconfig.json", resources)
    _write_json(root / "input/config/inputdataconfig.json", input_config)
    for directory in ("code", "model", "output/data", "output/intermediate"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    if builtin:
        argv = ["python3", "-P", xgboost_algorithm.__file__, "--image-version", builtin.version, "--opt-ml", "/opt/ml"]
        env = {"TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": arn(ctx, "training-job", job_name),
               "AWS_REGION": ctx.region, "PYTHONUNBUFFERED": "1"}
        return HostRun(hosts[index], root, argv, {**(request.get("Environment") or {}), **env}, cwd=builtin.workdir)
    hps = {k: _decode_hp(v) for k, v in (request.get("HyperParameters") or {}).items()}
    submit_dir = hps.get("sagemaker_submit_directory")
    if isinstance(submit_dir, str) and submit_dir.startswith("s3://"):
        _unpack(ctx, submit_dir, root / "code")
    elif isinstance(submit_dir, str) and submit_dir.startswith("/opt/ml/") and (root / submit_dir[8:]).is_file():
        # Network isolation: the definition ships the code as the "code" channel, staged above with the data.
        _extract(root / submit_dir[8:], root / "code")
    if not (root / "code" / hps["sagemaker_program"]).is_file():
        raise _client_error(f"entry point {hps['sagemaker_program']!r} is not in the source directory "
                            f"(sagemaker_submit_directory={submit_dir!r})")
    env = _training_env(job_name, ctx, hps, resources, input_config)
    return HostRun(hosts[index], root, ["python3", hps["sagemaker_program"], *_cmd_args(_user_hps(hps))],
                   {**(request.get("Environment") or {}), **env}, cwd=TRAINING_CWD)


def _training_env(job_name: str, ctx: JobContext, hps: dict, resources: dict, input_config: dict) -> dict[str, str]:
    """The SM_* environment the sagemaker-training toolkit gives a script-mode entry point."""
    user = _user_hps(hps)
    program = hps["sagemaker_program"]
    channels = {name: f"/opt/ml/input/data/{name}" for name in input_config}
    env = {
        "hosts": resources["hosts"], "network_interface_name": "eth0", "hps": user,
        "user_entry_point": program, "resource_config": resources, "input_data_config": input_config,
        "framework_params": {k: v for k, v in hps.items() if k.startswith("sagemaker_") and k not in _TOOLKIT_HPS},
        "output_data_dir": "/opt/ml/output/data", "channels": sorted(channels),
        "current_host": resources["current_host"], "current_instance_type": resources["current_instance_type"],
        "module_name": program.removesuffix(".py"), "log_level": hps.get("sagemaker_container_log_level", 20),
        "framework_module": None, "input_dir": "/opt/ml/input", "input_config_dir": "/opt/ml/input/config",
        "output_dir": "/opt/ml/output", "num_cpus": ctx.cpus, "num_gpus": 0, "model_dir": "/opt/ml/model",
        "module_dir": hps.get("sagemaker_submit_directory", "/opt/ml/code"), "user_args": _cmd_args(user),
        "output_intermediate_dir": "/opt/ml/output/intermediate",
    }
    env["training_env"] = {
        **{k: env[k] for k in ("hosts", "current_host", "input_data_config", "resource_config", "log_level",
                               "model_dir", "module_dir", "module_name", "num_cpus", "num_gpus",
                               "output_data_dir", "output_dir", "input_dir", "input_config_dir",
                               "user_entry_point", "network_interface_name", "output_intermediate_dir")},
        "additional_framework_parameters": env["framework_params"], "channel_input_dirs": channels,
        "hyperparameters": user, "job_name": job_name, "is_master": resources["current_host"] == resources["hosts"][0],
        "master_hostname": resources["hosts"][0],
    }
    env.update({f"channel_{name}": path for name, path in channels.items()})
    env.update({f"hp_{name}": value for name, value in user.items()})
    return {
        **{f"SM_{key.upper()}": _env_value(value) for key, value in env.items()},
        "TRAINING_JOB_NAME": job_name, "TRAINING_JOB_ARN": arn(ctx, "training-job", job_name),
        "AWS_REGION": ctx.region, "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath("/opt/ml/code"),
    }


# --- Tuning --------------------------------------------------------------------


@_describe(_TUNING)
def run_tuning(job_name: str, request: dict, ctx: JobContext) -> dict:
    _refuse(scope.tuning(request))
    config = request["HyperParameterTuningJobConfig"]
    definition = request["TrainingJobDefinition"]
    objective = config["HyperParameterTuningJobObjective"]
    try:
        strategy, count = tuning.plan(config, tuning.seed_for(job_name, config.get("RandomSeed")))
    except (KeyError, ValueError) as exc:
        raise _client_error(f"HyperParameterTuningJobConfig: {exc}") from exc
    limits = config.get("ResourceLimits") or {}
    parallel = int(limits.get("MaxParallelTrainingJobs") or 1)
    runtime = limits.get("MaxRuntimeInSeconds")
    if runtime is not None and not (tuning.MIN_RUNTIME <= int(runtime) <= tuning.MAX_RUNTIME):
        raise _client_error(f"ResourceLimits.MaxRuntimeInSeconds must be {tuning.MIN_RUNTIME} to "
                            f"{tuning.MAX_RUNTIME} (SageMaker's limits), got {runtime}")
    # Concurrent trials share this machine, where each would have had its own instance: split the cores.
    trials_ctx = dataclasses.replace(ctx, cpus=max(1, ctx.cpus // parallel))
    board = _Leaderboard(count, objective, ctx, None if runtime is None else float(runtime),
                         early=config.get("TrainingJobEarlyStoppingType") == "Auto", parallel=parallel)
    run_trial = functools.partial(_run_trial, job_name, definition, objective, trials_ctx, board)
    with board:
        trials = tuning.search(strategy, count, parallel, lambda index, params: board.finished(run_trial(index, params)))
    return _tuning_result([t for t in trials if t is not None], objective, board.seconds())


class _TrialStop:
    """A trial's stop: its execution's (the whole run stops), or its tuning job's own (the runtime limit, or
    early stopping), which stops this trial only."""

    def __init__(self, execution: Stop):
        self.execution, self.own = execution, None

    def request(self, reason: str) -> None:
        self.own = self.own or reason

    def __bool__(self) -> bool:
        return bool(self.execution) or self.own is not None

    @property
    def reason(self) -> str | None:
        return self.execution.reason if self.execution else self.own


class _Leaderboard:
    """What a tuning job knows while it runs: trials done and running, the best so far, its runtime limit and
    early stopping. It reports each trial as it ends and each running trial's latest line, with the trials
    left and the time left: a tuning job is the longest silence of a run otherwise. Trials run on several
    threads, hence the lock."""

    def __init__(self, count: int, objective: dict, ctx: JobContext, runtime: float | None, *, early: bool,
                 parallel: int):
        self.count, self.objective, self.ctx, self.runtime = count, objective, ctx, runtime
        self.early, self.parallel = early, parallel
        self.best: tuning.Trial | None = None
        self.done = 0
        self.running: dict[int, _TrialStop] = {}
        self.curves: dict[int, list[float]] = {}  # each trial's objective values, in the order printed
        self.finished_trials: set[int] = set()
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self._timer = None

    def __enter__(self):
        if self.runtime is not None:
            self._timer = threading.Timer(self.runtime, self._time_up)
            self._timer.daemon = True
            self._timer.start()
        return self

    def __exit__(self, *exc):
        if self._timer is not None:
            self._timer.cancel()

    def seconds(self) -> int:
        return round(time.monotonic() - self.started)

    def time_left(self) -> float | None:
        return None if self.runtime is None else max(0.0, self.runtime - (time.monotonic() - self.started))

    def _time_up(self) -> None:
        with self.lock:
            for stop in self.running.values():
                stop.request("the tuning job reached ResourceLimits.MaxRuntimeInSeconds")

    def start(self, index: int, stop: _TrialStop) -> bool:
        """Whether trial `index` may start: not once the tuning job's runtime is over (SageMaker launches no
        more training jobs then)."""
        with self.lock:
            if self.runtime is not None and self.time_left() <= 0:
                return False
            self.running[index] = stop
            self.curves[index] = []
            return True

    def observed(self, index: int, name: str, value: float) -> None:
        """A trial printed its objective: with early stopping on, stop it where it is worse than the median of
        the running averages, at the same point, of the trials that ended before it could start (SageMaker's
        rule, on a reference set that does not depend on timing)."""
        if name != self.objective["MetricName"]:
            return
        sign = 1.0 if self.objective["Type"] == "Maximize" else -1.0
        with self.lock:
            curve = self.curves[index]
            curve.append(sign * value)
            if not self.early:
                return
            step = len(curve)
            averages = [sum(c[:step]) / step for i, c in self.curves.items()
                        if i <= index - self.parallel and i in self.finished_trials and len(c) >= step]
            if averages and curve[-1] < statistics.median(averages):
                self.running[index].request(
                    f"early stopping: {name} {value:.6g} after report {step} is worse than the median "
                    f"({sign * statistics.median(averages):.6g}) of earlier trials at that point")

    def line(self, index: int, name: str, text: str) -> None:
        """A running trial's latest line, with where the tuning job is."""
        with self.lock:
            left = self.count - self.done - len(self.running)
        self.ctx.heartbeat({"job_name": name, "trial": index + 1, "of": self.count, "line": text,
                            "done": self.done, "running": len(self.running), "left": left,
                            "seconds_left": self.time_left()})

    def finished(self, trial: tuning.Trial | None) -> tuning.Trial | None:
        if trial is None:  # never started: the runtime was over
            return None
        summary, _ = trial.payload
        with self.lock:
            self.running.pop(trial.index, None)
            self.finished_trials.add(trial.index)
            self.done += 1
            if trial.score is not None and summary["TrainingJobStatus"] == "Completed" and (
                    self.best is None or trial.score > self.best.score):
                self.best = trial
            best = self.best and self.best.payload[0]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
            self.ctx.progress({
                "trial": trial.index + 1, "of": self.count, "job_name": summary["TrainingJobName"],
                "hyperparameters": dict(trial.params), "objective": self.objective["MetricName"],
                "value": (summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
                "best": best, "best_trial": self.best and self.best.index + 1,
                "failure_reason": summary.get("FailureReason"), "status": summary["TrainingJobStatus"],
                "done": self.done, "left": self.count - self.done - len(self.running),
                "seconds_left": self.time_left(),
            })
        return trial


def trial_name(tuning_job_name: str, index: int) -> str:
    """``<tuning job>-<NNN>-<8 hex>``, stable for a given tuning job name and trial."""
    digest = hashlib.sha256(f"{tuning_job_name}/{index}".encode()).hexdigest()[:8]
    return f"{tuning_job_name}-{index + 1:03d}-{digest}"


def _run_trial(job_name: str, definition: dict, objective: dict, ctx: JobContext, board: _Leaderboard,
               index: int, params: dict[str, str]) -> tuning.Trial | None:
    name = trial_name(job_name, index)
    request = {k: v for k, v in definition.items() if k not in _TUNING_ONLY_FIELDS}
    # SageMaker adds the objective's name to every training job of a tuning job;
    # script-mode entry points therefore also get --_tuning_objective_metric.
    request["HyperParameters"] = {**(definition.get("StaticHyperParameters") or {}), **params,
                                  "_tuning_objective_metric": objective["MetricName"]}
    request.setdefault("ResourceConfig", definition.get("HyperParameterTuningResourceConfig") or {})
    request["TuningJobArn"] = arn(ctx, _TUNING.resource, job_name)
    if ctx.stop:  # trials queued behind a stopped one never start
        raise JobStopped(ctx.stop.reason)
    stop = _TrialStop(ctx.stop)
    if not board.start(index, stop):
        return None
    trial_ctx = dataclasses.replace(ctx, work_dir=ctx.work_dir / name, log_label=name, stop=stop,
                                    heartbeat=lambda fields: board.line(index, name, fields["line"]),
                                    on_metric=lambda metric, value: board.observed(index, metric, value))
    trial_ctx.work_dir.mkdir(parents=True, exist_ok=True)
    error_type = None
    try:
        response = run_training(name, request, trial_ctx)
    except JobFailed as exc:
        response, error_type = exc.response, exc.error_type
    value = next((m["Value"] for m in response.get("FinalMetricDataList") or []
                  if m["MetricName"] == objective["MetricName"]), None)
    summary = _trial_summary(job_name, response, params, objective, value)
    score = None if value is None else (value if objective["Type"] == "Maximize" else -value)
    return tuning.Trial(index, params, score, (summary, error_type))


def _trial_summary(job_name: str, response: dict, params: dict, objective: dict, value: float | None) -> dict:
    summary = {
        "TrainingJobName": response["TrainingJobName"], "TrainingJobArn": response["TrainingJobArn"],
        "TuningJobName": job_name, "CreationTime": response["CreationTime"],
        "TrainingStartTime": response.get("TrainingStartTime"), "TrainingEndTime": response.get("TrainingEndTime"),
        "TrainingJobStatus": response["TrainingJobStatus"], "TunedHyperParameters": dict(params),
        "ObjectiveStatus": "Failed" if value is None else "Succeeded",
    }
    if value is not None:
        summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective["Type"], "MetricName": objective["MetricName"], "Value": value}
    elif response["TrainingJobStatus"] == "Stopped":
        pass  # stopped before it printed its objective: not a failure
    elif response.get("FailureReason"):
        summary["FailureReason"] = response["FailureReason"]
    else:
        summary["FailureReason"] = (f"objective metric {objective['MetricName']!r} was not found in the "
                                    "training log: check AlgorithmSpecification.MetricDefinitions")
    return summary


def _tuning_result(trials: list[tuning.Trial], objective: dict, seconds: int) -> dict:
    """Summaries best first (stopped, then failed last), counters, BestTrainingJob among the completed trials
    (a stopped one has no finished model); fail only if none completed."""
    stopped = [t for t in trials if t.payload[0]["TrainingJobStatus"] == "Stopped"]
    succeeded = sorted((t for t in trials if t.score is not None and t not in stopped), key=lambda t: (-t.score, t.index))
    failed = [t for t in trials if t.score is None and t not in stopped]
    summaries = [t.payload[0] for t in succeeded + stopped + failed]
    error_types = [t.payload[1] for t in failed]
    result = {
        "TrainingJobSummaries": summaries,
        "TrainingJobStatusCounters": {
            "Completed": sum(s["TrainingJobStatus"] == "Completed" for s in summaries), "InProgress": 0,
            "RetryableError": error_types.count("SageMaker.JOB_INTERNAL_ERROR"),
            "NonRetryableError": sum(e not in (None, "SageMaker.JOB_INTERNAL_ERROR") for e in error_types),
            "Stopped": len(stopped)},
        "ObjectiveStatusCounters": {"Succeeded": sum(t.score is not None for t in trials), "Pending": 0,
                                    "Failed": sum(t.score is None for t in trials)},
        "ConsumedResources": {"RuntimeInSeconds": seconds},
    }
    if not succeeded:
        retryable = all(e == "SageMaker.JOB_INTERNAL_ERROR" for e in error_types)
        raise JobFailed(f"AlgorithmError: no training job succeeded with objective metric "
                        f"{objective['MetricName']!r}; first failure: {summaries[0].get('FailureReason')}",
                        result, "SageMaker.JOB_INTERNAL_ERROR" if retryable else "AlgorithmError")
    return {**result, "BestTrainingJob": summaries[0]}


# --- Transform -----------------------------------------------------------------


@_describe(_TRANSFORM)
def run_transform(job_name: str, request: dict, ctx: JobContext) -> dict:
    model = ctx.models.get(request["ModelName"])
    if model is None:
        raise _client_error(f"model {request['ModelName']!r} does not exist (known: {sorted(ctx.models)})")
    container = model.get("PrimaryContainer") or (model.get("Containers") or [None])[0]
    if container is None:
        raise _client_error(f"model {request['ModelName']!r} has no PrimaryContainer or Containers")
    _refuse(scope.model(model))
    _refuse(scope.transform(request))
    image = image_for(container.get("Image"))
    env = {**(container.get("Environment") or {}), **(request.get("Environment") or {})}
    if not env.get("SAGEMAKER_PROGRAM") and image.family != XGBOOST:
        raise _client_error(f"model {request['ModelName']!r}: Environment.SAGEMAKER_PROGRAM names no inference "
                            "program (only the built-in XGBoost algorithm serves without one)")
    hosts = _host_names((request.get("TransformResources") or {}).get("InstanceCount", 1))
    runs = [_transform_host(request, ctx, container, image, env, hosts, i) for i in range(len(hosts))]
    _in_environment(ctx, image, runs, isolated=bool(model.get("EnableNetworkIsolation")))
    _check_exits(ctx, _run(ctx, runs), runs, None, {})
    for run in runs:
        _upload(ctx, run, run.root / "transform/output", request["TransformOutput"]["S3OutputPath"], {})
    return {}


def _transform_host(request: dict, ctx: JobContext, container: dict, image: Image, env: dict, hosts: list[str],
                    index: int) -> HostRun:
    """One serving container: the model unpacked at /opt/ml/model, its share of the input
    objects under /opt/ml/transform/input, `serving.py` as the process."""
    root = ctx.work_dir / hosts[index]
    for directory in ("model", "transform/output"):
        (root / directory).mkdir(parents=True, exist_ok=True)
    if container.get("ModelDataUrl"):
        _unpack(ctx, container["ModelDataUrl"], root / "model")
    code_dir = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or "/opt/ml/model/code"
    if code_dir.startswith("s3://"):
        _unpack(ctx, code_dir, root / "code")
        code_dir = "/opt/ml/code"
    data_in, data_out = request["TransformInput"], request["TransformOutput"]
    _stage(ctx, data_in["DataSource"]["S3DataSource"]["S3Uri"], root / "transform/input",
           host=index, hosts=len(hosts), sharded=True)
    program = env.get("SAGEMAKER_PROGRAM")
    default_type = serving.DEFAULT_CONTENT_TYPE if program else serving.BUILTIN_ACCEPT
    argv = ["python3", "-P", serving.__file__, "--model-dir", "/opt/ml/model", "--code-dir", code_dir,
            *(["--program", program] if program else []), "--input-dir", "/opt/ml/transform/input",
            "--output-dir", "/opt/ml/transform/output",
            "--content-type", data_in.get("ContentType") or default_type,
            "--accept", data_out.get("Accept") or env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or default_type,
            "--split-type", data_in.get("SplitType", "None"),
            "--batch-strategy", request.get("BatchStrategy", "MultiRecord"),
            "--max-payload-mb", str(request.get("MaxPayloadInMB", 6)),
            "--assemble-with", data_out.get("AssembleWith", "None")]
    return HostRun(hosts[index], root, argv, {**env, "PYTHONUNBUFFERED": "1"}, cwd=image.workdir)
