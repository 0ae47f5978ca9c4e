"""The commands behind deploy.py: the one layer between the command line and the targets.

    deploy.py -> pipelines.cli (parse flags, print) -> pipelines.commands (this module)
              -> targets: pipelines.cloud, pipelines.endpoints (SageMaker), pipelines.local (offline)

Here settings become actions: load the config, build and compile the definition, check parameter
overrides, stage input data, then call a target. Nothing here parses flags or prints (progress
goes through the `say` callback of a `Workspace`), and no target imports this module, so the
local runner stays an interpreter of JSON. A new command is one function here taking a
`Workspace`, plus its flags and printing in `pipelines.cli`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from pipelines import definitions, dsl, spec
from pipelines.bundles import file_asset
from pipelines.config import CONFIG_FILE, ConfigError, aws_region, load_config

DEFAULT_DEFINITION = "pipelines.purchase_intent"
DEFAULT_REGION = "us-east-1"  # image URIs are regional; compile needs one even offline


class UserError(ValueError):
    """Bad input to a command, reported without a traceback."""


def user_errors() -> tuple[type[Exception], ...]:
    """What deploy.py reports as a one-line refusal (exit 2): every layer's own "your input is wrong".
    Imported only when an error is being handled, so a command pays for no target it does not use."""
    from pipelines.local import RunError
    from pipelines.local.endpoint import LocalEndpointError

    return ConfigError, dsl.DefinitionError, UserError, RunError, LocalEndpointError


def cloud_errors() -> tuple[type[Exception], ...]:
    """What deploy.py reports as a one-line failure of SageMaker (exit 1)."""
    from pipelines.cloud import CloudError

    return (CloudError,)


@dataclass(frozen=True)
class Settings:
    """The flags every command shares; None means "as config.toml says"."""

    env: str = "dev"
    region: str | None = None
    role_arn: str | None = None
    bucket: str | None = None
    problem_type: str | None = None
    label: str | None = None
    positive_class: str | None = None
    schema: str | None = None  # a file: {column: kind}, or a whole schema.json
    feature_set: str | None = None
    tuning: bool | None = None
    time_budget: str | None = None  # a duration: 90s, 5m, 1h30m
    families: str | None = None  # train.py's model families: auto, or a comma-separated list
    batch_transform: bool | None = None
    definition: str = DEFAULT_DEFINITION
    home: str | None = None
    config: str | None = None  # the settings file; default pipelines/config.toml

    @classmethod
    def of(cls, namespace) -> Settings:
        """The settings among a namespace's attributes (argparse's), the rest at their defaults."""
        return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)
                      if getattr(namespace, f.name, None) is not None})


class Workspace:
    """What one command works with, each made once, on first use: the definition built with its own
    settings, its compiled JSON, the local home and store, SageMaker clients."""

    def __init__(self, settings: Settings = Settings(), *, say: Callable[[str], None] = lambda line: None):
        self.settings, self.say = settings, say

    def settings_for(self, pipeline: str | None):
        """config.toml's settings of `pipeline` (None: of no pipeline in particular), then the flags."""
        s = self.settings
        cfg = load_config(s.env, Path(s.config or CONFIG_FILE), pipeline=pipeline, region=s.region,
                          role_arn=s.role_arn, bucket=s.bucket, problem_type=s.problem_type, label=s.label,
                          positive_class=s.positive_class, feature_set=s.feature_set,
                          schema=s.schema and read_schema(s.schema), tuning=s.tuning,
                          time_budget=s.time_budget, families=s.families, batch_transform=s.batch_transform)
        return cfg if cfg.region else cfg.replace(region=self._default_region)

    @cached_property
    def _default_region(self) -> str:
        return aws_region() or DEFAULT_REGION

    @cached_property
    def module(self):
        """The definition's module (`--definition`: a file path or a dotted module name)."""
        return definitions.load(self.settings.definition)

    @cached_property
    def _built(self):
        return definitions.build_with_settings(self.module.definition, self.settings_for)

    @property
    def pipeline(self) -> dsl.Pipeline:
        return self._built[0]

    @property
    def config(self):
        """The settings of the definition's pipeline."""
        return self._built[1]

    def compiled(self, cfg=None):
        """The definition compiled with its settings, or built anew with `cfg` and compiled."""
        from pipelines.compiler import compile_pipeline

        pipeline = self.pipeline if cfg is None else definitions.build(self.module.definition, cfg)
        return compile_pipeline(pipeline, cfg or self.config)

    def group(self, given: str | None, *, local: bool) -> str:
        """`--group`, else the model package group the pipeline's RegisterModel step registers into."""
        if given:
            return given
        compiled = self.compiled()
        groups = registered_groups(compiled.definition)
        if len(groups) != 1:
            found = f"registers into groups {', '.join(groups)}" if groups else "has no RegisterModel step"
            raise UserError(f"pipeline {compiled.name} {found}: name the model package group with --group NAME")
        return groups[0]

    @cached_property
    def home(self):
        from pipelines.local import LocalHome

        return LocalHome(Path(self.settings.home)) if self.settings.home else LocalHome.default()

    @cached_property
    def store(self):
        from pipelines.local import open_store

        return open_store(None, root=self.home.s3)

    @cached_property
    def clients(self):
        """(sagemaker, s3) clients of the configured region."""
        import boto3

        session = boto3.Session(region_name=self.settings_for(None).region)
        return session.client("sagemaker"), session.client("s3")


def read_schema(path: str) -> dict:
    """A declared schema file: {column: kind}, or a whole schema.json."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as e:
        raise UserError(f"--schema {path}: {e.strerror}") from None
    except ValueError as e:
        raise UserError(f"--schema {path} is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise UserError(f'--schema {path} must hold a JSON object: {{"column": "kind"}} or a schema.json')
    return doc


def registered_groups(definition: str) -> list[str]:
    """The model package groups a definition's RegisterModel steps register into, in order."""
    steps = [placed.step for placed in spec.read(definition).flat]
    return list(dict.fromkeys(s.arguments["ModelPackageGroupName"] for s in steps if s.type == "RegisterModel"))


# --- inputs of a run ----------------------------------------------------------------------------


def parse_overrides(parameters: dict[str, dsl.Parameter], pairs: list[str]) -> dict:
    """`Name=Value` pairs checked against the pipeline's parameters before any call is made."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise UserError(f"-p {pair!r}: write parameters as Name=Value")
        if name not in parameters:
            raise UserError(f"-p {pair!r}: the pipeline has no parameter {name!r}; "
                            f"its parameters are {', '.join(parameters)}")
        out[name] = parameters[name].coerce(value)
    return out


def scoring_follows_input(parameters: dict, overrides: dict) -> dict:
    """ScoringData (with --batch-transform) defaults to the input data, also when that is overridden."""
    if "ScoringData" in parameters and "InputData" in overrides and "ScoringData" not in overrides:
        overrides["ScoringData"] = overrides["InputData"]
    return overrides


def stage_input(path_or_uri: str, cfg, put) -> str:
    """An s3:// URI as it is; a local file is put under the data prefix, addressed by its content
    (so a changed file never hides behind a cached step, and an unchanged one is uploaded once). A
    folder's files go under one prefix addressed by all of them: one object each, for instances to share."""
    if path_or_uri.startswith("s3://"):
        return path_or_uri
    path = Path(path_or_uri)
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise UserError(f"--input-data {path_or_uri}: the folder has no files (give CSV/Parquet files)")
        names = {f: f.relative_to(path).as_posix() for f in files}
        prefix = f"{cfg.s3_root}/data/" + hashlib.sha256(
            "".join(f"{names[f]}\0{file_asset(f, '')[0]}\0" for f in files).encode()).hexdigest()
        for f in files:  # one at a time: a big data set need not fit in memory
            put(f"{prefix}/{names[f]}", f.read_bytes())
        return prefix
    if not path.is_file():
        raise UserError(f"--input-data {path_or_uri}: no such file or folder (give CSV/Parquet files or an s3:// URI)")
    uri, data = file_asset(path, f"{cfg.s3_root}/data")
    put(uri, data)
    return uri


# --- the pipeline in SageMaker ------------------------------------------------------------------


def diff(ws: Workspace) -> tuple[str, list[str] | None]:
    """(pipeline name, step-by-step differences deployed -> compiled: empty when up to date, None when
    nothing is deployed under that name, where a diff would only list every line of the definition)."""
    from pipelines import cloud

    cfg = ws.config
    sm, _ = ws.clients
    current = cloud.deployed(sm, cfg.pipeline_name)
    if current is None:
        return cfg.pipeline_name, None
    if not cfg.role_arn and current.get("RoleArn"):  # compare like with like, not with the placeholder role
        cfg = cfg.replace(role_arn=current["RoleArn"])
    compiled = ws.compiled(cfg)
    return compiled.name, cloud.diff(current.get("PipelineDefinition"), compiled.definition)


def upsert(ws: Workspace, compiled=None) -> str:
    """Upload the code and create or update the pipeline; its ARN."""
    from pipelines import cloud

    sm, s3 = ws.clients
    return cloud.upsert(sm, s3, compiled or ws.compiled(), ws.config.role_arn)


def start(ws: Workspace, compiled, overrides: dict, *, input_data: str | None = None, source: str | None = None,
          steps: list[str] = ()) -> str:
    """Start an execution with checked overrides (and --input-data uploaded); its ARN. With `source`
    (an execution ARN) and `steps`, a selective execution: those steps only, on the source's other
    outputs and, unless overridden, its parameter values (as `run --local --from` does)."""
    from pipelines import cloud

    sm, s3 = ws.clients
    if bool(source) != bool(steps):
        raise UserError("--from EXECUTION_ARN and --steps STEP[,STEP] go together")
    if input_data:
        overrides["InputData"] = stage_input(input_data, ws.config,
                                             lambda uri, data: cloud.upload_assets(s3, {uri: data}))
    selective = None
    if source:
        unknown = [name for name in steps if name not in _step_names(compiled.definition)]
        if unknown:
            raise UserError(f"--steps {unknown[0]}: pipeline {compiled.name} has no such step")
        overrides = {**cloud.execution_parameters(sm, source), **overrides}
        selective = {"SourcePipelineExecutionArn": source, "SelectedSteps": [{"StepName": s} for s in steps]}
    return cloud.start(sm, compiled, scoring_follows_input(compiled.parameters, overrides), selective=selective)


def _step_names(definition: str) -> list[str]:
    return [placed.name for placed in spec.read(definition).flat]


def wait(ws: Workspace, execution_arn: str, *, timeout: float, poll: float, on_step) -> dict:
    from pipelines import cloud

    return cloud.wait(ws.clients[0], execution_arn, timeout=timeout, poll=poll, on_step=on_step)


# --- the pipeline on the local runner -----------------------------------------------------------


def run_local(ws: Workspace, *, parameters: list[str] = (), input_data: str | None = None,
              resume: str | None = None, source: str | None = None, steps: list[str] = (),
              max_parallel_steps: int = 4, on_event=None,
              definition_json: str | None = None, stage: list[str] = (), job_env: str | None = None) -> dict:
    """Compile, put the code bundles and the input data into the local store (what upsert does for
    S3), run, write the report; the execution record. With `definition_json`, run that file (any
    SageMaker definition) as it is instead; `stage` (``s3://bucket/key=LOCAL_PATH``) fills the store
    first; `job_env` chooses the jobs' Python (`pipelines.local.environments`). With `source` (an
    execution id), run only `steps`, reusing that execution's other outputs (`local.selection`);
    with `resume`, finish that execution as it was recorded."""
    from pipelines.local import run_pipeline
    from pipelines.report import publish_local_run

    home, store = ws.home, ws.store
    options = dict(home=home, store=store, max_parallel_steps=max_parallel_steps, on_event=on_event, job_env=job_env)
    if source or steps:
        if not (source and steps):
            raise UserError("--from EXECUTION and --steps STEP[,STEP] go together: which steps to run again, "
                            "reusing which execution's other outputs")
        options.update(source=source, selected=list(steps))
    if resume:
        _refuse_with_resume(ws, resume, parameters=parameters, input_data=input_data,
                            definition_json=definition_json, source=source)
    _stage(ws, stage)
    description = None  # the report's subtitle (kept in the record): the compiled definition's description
    if resume:  # the recorded definition and pipeline name, not the current ones
        ws.say(_resuming(home, resume))
        record = run_pipeline(None, resume=resume, **options)
    elif definition_json:  # -p values are typed against the file's own Parameters by the runner
        path = Path(definition_json)
        if not path.is_file():
            raise UserError(f"--definition-json {path}: no such file")
        malformed = [pair for pair in parameters if "=" not in pair]
        if malformed:
            raise UserError(f"-p {malformed[0]!r}: write parameters as Name=Value")
        overrides = dict(pair.partition("=")[::2] for pair in parameters)
        record = run_pipeline(path.read_text(), pipeline_name=path.stem, parameters=overrides, **options)
    else:
        compiled = ws.compiled()
        overrides = parse_overrides(compiled.parameters, parameters)
        for uri, data in compiled.assets.items():
            if not store.exists(uri):
                store.put_bytes(uri, data)
        if input_data:
            overrides["InputData"] = stage_input(input_data, ws.config, store.put_bytes)
        elif "InputData" in compiled.parameters and "InputData" not in overrides and not source:
            _put_example_data(ws, compiled.parameters["InputData"].default)
        scoring_follows_input(compiled.parameters, overrides)
        record = run_pipeline(compiled.definition, pipeline_name=compiled.name, parameters=overrides, **options)
        description = compiled.description
    return publish_local_run(record, home=home, store=store, description=description)  # report, model card


# Settings that shape the definition a run compiles: a resumed run keeps its recorded one, so they would be ignored.
_DEFINITION_SETTINGS = ("bucket", "role_arn", "region", "problem_type", "label", "positive_class", "schema",
                        "feature_set", "tuning", "time_budget", "families", "batch_transform")


def _refuse_with_resume(ws: Workspace, execution_id: str, **given) -> None:
    """--resume reruns the recorded definition with the recorded parameters: a flag that would change
    either is refused rather than silently ignored, with the command that does honour it."""
    flags = {"parameters": "-p", "input_data": "--input-data", "definition_json": "--definition-json",
             "source": "--from"}
    ignored = [flags[name] for name, value in given.items() if value]
    ignored += [f"--{name.replace('_', '-')}" for name in _DEFINITION_SETTINGS if getattr(ws.settings, name) is not None]
    if ws.settings.definition != DEFAULT_DEFINITION:
        ignored.append("--definition")
    if ignored:
        raise UserError(f"--resume {execution_id} reruns its recorded definition and parameters, so "
                        f"{', '.join(ignored)} would be ignored: to run today's definition on its outputs, "
                        f"use --from {execution_id} --steps STEP[,STEP] instead")


def _resuming(home, execution_id: str) -> str:
    """What --resume is about to do, said before it does it."""
    try:
        record = home.execution(execution_id)
    except FileNotFoundError:
        return f"resuming execution {execution_id}"  # the runner refuses it with the reason
    if record["status"] == "Succeeded":
        raise UserError(f"execution {execution_id} succeeded: there is nothing to resume (run steps of it again "
                        f"with --from {execution_id} --steps STEP[,STEP])")
    again = [s["name"] for s in record["steps"] if s["status"] != "Succeeded"]
    return (f"resuming execution {execution_id} ({record['status']}) with its recorded definition and parameters: "
            f"{', '.join(again)} may run again, what succeeded is kept; for today's code use --from {execution_id} "
            f"--steps ...")


def _stage(ws: Workspace, pairs: list[str]) -> None:
    from pipelines.local.staging import StagingError, stage

    try:
        for uri in stage(ws.store, list(pairs)):
            ws.say(f"staged {uri}")
    except StagingError as e:
        raise UserError(str(e)) from None


def _put_example_data(ws: Workspace, uri: str) -> None:
    """InputData's default, when the local store lacks it and the definition's module can write it
    (`example_data(dest: Path) -> Path`): the data a local run needs no --input-data for."""
    write = getattr(ws.module, "example_data", None)
    if write is None or ws.store.exists(uri):
        return
    ws.say(f"writing the example data of {ws.pipeline.name} -> {uri}")
    with tempfile.TemporaryDirectory() as tmp:
        ws.store.put_file(uri, write(Path(tmp) / uri.rsplit("/", 1)[-1]))


def summarise(record: dict, home=None) -> dict:
    """The `--json` document: what a script or a CI job wants to know about a run. The gate is the
    first comparison of a Condition step with a report value, as the report shows it (read from the
    definition that ran, kept in `home`), with the rule and baseline behind its threshold when the
    report states them (its `gate` section)."""
    from pipelines.report import quality_gates, read_definition

    definition = read_definition(home.runs / record["execution_id"]) if home else None
    steps = {s["name"]: s for s in record["steps"]}
    metrics = next((files[name] for step in record["steps"] for files in [step.get("property_files") or {}]
                    for name in files), None)
    registered = next((step["response"] for step in record["steps"]
                       if step["type"] == "RegisterModel" and step["status"] == "Succeeded"), None)
    gate = next(iter(quality_gates(definition, steps, record.get("parameters") or {}, metrics)), None)
    stated = (metrics or {}).get("gate") or {}
    failed = steps.get(record.get("failed_step")) or {}
    return {
        "execution_id": record["execution_id"],
        "status": record["status"],
        "failure_reason": record.get("failure_reason"),
        "failed_step": record.get("failed_step"),
        "failure_log": failed.get("log"),
        "stop_reason": record.get("stop_reason"),
        "stopped_steps": record.get("stopped_steps") or [],
        "seconds": record.get("seconds"),
        "steps": [{"name": s["name"], "type": s["type"], "status": s["status"], "cache_hit": bool(s.get("cache_hit")),
                   "reused_from": s.get("reused_from"), "seconds": s.get("seconds")} for s in record["steps"]],
        "selective": record.get("selective"),
        "gate": gate and {"metric": gate["path"], "value": gate["value"], "operator": gate["operator"],
                          "threshold": gate["threshold"], "outcome": gate["outcome"],
                          "passed": None if gate["outcome"] is None else gate["outcome"] == "True",
                          "rule": stated.get("rule"), "baseline": stated.get("baseline")},
        "registered_model": registered and {k: registered.get(k) for k in
                                            ("ModelPackageArn", "ModelPackageVersion", "ModelApprovalStatus")},
        "metrics": metrics,
        "report": record.get("report"),
        "model_card": record.get("model_card"),
    }


def report(ws: Workspace, execution_id: str, output: str | None = None) -> Path:
    """The HTML report of a local run (succeeded or not, `latest` the newest), written again from its
    records, with the registered model's approval status as the registry has it now."""
    from pipelines.report import read_definition, render_report

    record = _local_record(ws, execution_id)
    run_dir = ws.home.runs / record["execution_id"]
    out = Path(output) if output else run_dir / "report.html"
    return render_report(record, read_definition(run_dir), ws.store, out_path=out, home=ws.home)


def _local_record(ws: Workspace, execution_id: str) -> dict:
    """The record of a local execution, `latest` being the newest."""
    home = ws.home
    if execution_id == "latest":
        records = home.executions()
        if not records:
            raise UserError(f"no local executions under {home.runs} yet: run `python deploy.py run --local`")
        return records[-1]
    try:
        return home.execution(execution_id)
    except FileNotFoundError as e:
        raise UserError(f"{e}; `python deploy.py runs --local` lists them") from None


# --- runs, logs and comparisons -----------------------------------------------------------------


def runs(ws: Workspace, *, local: bool, last: int = 20) -> list[dict]:
    """The pipeline's executions, newest first, one row each (`history.run_row`); locally, every
    execution of the home."""
    from pipelines import history

    if local:
        from pipelines.report import read_definition

        records = ws.home.executions()[::-1][:last]
        return [history.run_row(history.local_view(r, read_definition(ws.home.runs / r["execution_id"])))
                for r in records]
    from pipelines import executions

    sm, s3 = ws.clients
    return [history.run_row(executions.view(sm, s3, arn))
            for arn in executions.execution_arns(sm, ws.config.pipeline_name, last)]


def compare(ws: Workspace, first: str, second: str, *, local: bool) -> dict:
    """Two executions side by side (`history.compare`): parameters, metrics and deltas, model versions,
    changed code. Local ids (or `latest`), else execution ids or ARNs of the pipeline."""
    from pipelines import history

    if local:
        from pipelines.report import read_definition

        views = [history.local_view(r, read_definition(ws.home.runs / r["execution_id"]))
                 for r in (_local_record(ws, ref) for ref in (first, second))]

        def read(uri):
            return ws.store.get_bytes(uri) if ws.store.exists(uri) else None
    else:
        from botocore.exceptions import ClientError

        from pipelines import cloud, executions

        sm, s3 = ws.clients
        views = [executions.view(sm, s3, executions.resolve(sm, ws.config.pipeline_name, ref))
                 for ref in (first, second)]

        def read(uri):
            try:
                bucket, key = cloud.split_s3_uri(uri)
                return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            except (cloud.CloudError, ClientError):  # a bundle that cannot be read is shown by name only
                return None
    return history.compare(*views, read)


def logs(ws: Workspace, execution: str, step: str | None = None, *, local: bool, follow: bool = False):
    """The log lines of an execution's jobs (one step's, or one job's, with `step`), a header before each
    log; with `follow`, new lines as they are written until the execution ends."""
    if local:
        from pipelines.local.logs import chosen_logs, lines

        record = _local_record(ws, execution)
        try:
            chosen_logs(record, step)
        except KeyError as e:
            raise UserError(e.args[0]) from None
        yield from lines(ws.home, record, step, follow=follow)
        return
    import boto3

    from pipelines import executions

    sm, _ = ws.clients
    arn = executions.resolve(sm, ws.config.pipeline_name, execution)
    client = boto3.Session(region_name=ws.settings_for(None).region).client("logs")
    yield from executions.logs(sm, client, arn, step, follow=follow)


def stop(ws: Workspace, execution: str, *, local: bool) -> str:
    """Stop a local execution (its runner ends its jobs and records it Stopped) or a SageMaker one."""
    if local:
        from pipelines.local.stopping import request_stop

        record = request_stop(ws.home, execution)
        if record["status"] == "Stopped":
            return f"{execution}: Stopped (its runner had already ended)"
        return f"{execution}: asked its runner (pid {record.get('runner_pid')}) to stop it"
    from pipelines import cloud

    if not execution.startswith("arn:"):
        raise UserError(f"{execution}: give the execution's ARN (as start printed it), or add --local")
    return f"{cloud.stop(ws.clients[0], execution)}: Stopping"


# --- registered models: pipelines.endpoints (SageMaker), pipelines.local.endpoint (local) ------------


def models(ws: Workspace, *, local: bool, group: str | None = None, every: bool = False, last: int = 10) -> list[dict]:
    """The pipeline's model package group (or `group`, or with `every` all groups) with its versions
    (the newest `last` in SageMaker)."""
    names = None if every else [ws.group(group, local=local)]
    if local:
        from pipelines.local.registry import Registry

        registry = Registry.of(ws.home)
        known = [g["ModelPackageGroupName"] for g in registry.list_groups()]
        groups = [{"ModelPackageGroupName": name, "Versions": registry.list_versions(name)}
                  for name in known if names is None or name in names]
    else:
        from pipelines import endpoints

        sm, s3 = ws.clients
        groups = endpoints.list_models(sm, s3, last=last, names=names)
    for group in groups:
        _mark_identical(group["Versions"])
    return groups


def _mark_identical(versions: list[dict]) -> None:
    """`IdenticalTo`: the earlier version serving the very same model (artifact and image). A re-run
    whose steps were all cache hits registers again, as SageMaker's RegisterModel does, so a group
    can hold versions that differ in number only; this says which."""
    seen: dict[tuple, int] = {}
    for version in versions:
        containers = (version.get("InferenceSpecification") or {}).get("Containers") or []
        model = tuple((c.get("ModelDataUrl"), c.get("Image")) for c in containers)
        if model and all(url for url, _ in model):
            if model in seen:
                version["IdenticalTo"] = seen[model]
            else:
                seen[model] = version.get("ModelPackageVersion")


def set_approval(ws: Workspace, version: str, status: str, *, local: bool, group: str | None = None,
                 description: str | None = None) -> dict:
    """Approve or reject the version `version` names; the version afterwards."""
    group = ws.group(group, local=local)
    if local:
        from pipelines.local import endpoint

        return endpoint.set_approval(ws.home, group, version, status)
    from pipelines import endpoints

    return endpoints.set_approval(ws.clients[0], group, version, status, description)


def deploy_endpoint(ws: Workspace, *, local: bool, model_package: str, group: str | None = None,
                    endpoint_name: str | None = None, instance_type: str | None = None, instance_count: int = 1,
                    wait: bool = False) -> tuple[dict, str]:
    """Point an endpoint at an Approved version: (what was done, what to do or know next)."""
    cfg = ws.config
    name = endpoint_name or f"{cfg.pipeline_name}-{cfg.env}"
    instance_type = instance_type or cfg.inference_instance_type
    group = ws.group(group, local=local)
    if local:
        from pipelines.local import endpoint

        package = endpoint.approved_package(ws.home, group, model_package)
        result = endpoint.deploy(ws.home, package, endpoint_name=name, instance_type=instance_type)
        return result, f"serve it with: python deploy.py serve --local --endpoint-name {name}"
    from pipelines import endpoints

    sm, _ = ws.clients
    package = endpoints.approved_package(sm, group, model_package)
    result = endpoints.deploy_endpoint(sm, package, endpoint_name=name, role_arn=cfg.role_arn,
                                       instance_type=instance_type, instance_count=instance_count,
                                       tags=cfg.all_tags())
    hint = endpoints.wait_in_service(sm, name)["EndpointStatus"] if wait else \
        "SageMaker is bringing it into service (add --wait to follow)"
    return result, hint


def serve(ws: Workspace, *, model_package: str | None, endpoint_name: str | None, host: str, port: int,
          max_payload_mb: float, group: str | None = None) -> None:
    """Serve a locally registered version over HTTP until stopped."""
    from pipelines.local import endpoint

    home, ref = ws.home, model_package
    if endpoint_name:
        record = endpoint.endpoint_record(home, endpoint_name)
        if record is None:
            raise UserError(f"no local endpoint {endpoint_name}: create it with "
                            f"`python deploy.py deploy-endpoint --local --endpoint-name {endpoint_name}`")
        ref = ref or record["ModelPackageArn"]
    ref = ref or "latest-approved"
    # An ARN names its own group; only a version number or latest needs the pipeline's.
    group = group or ("" if ref.startswith("arn:") else ws.group(None, local=True))
    package = endpoint.resolve(endpoint.Registry.of(home), group, ref)
    endpoint.serve_package(home, package, host=host, port=port, max_payload_mb=max_payload_mb, announce=ws.say)


def predict(ws: Workspace, body: bytes, *, local: bool, url: str, endpoint_name: str | None,
            content_type: str, accept: str) -> bytes:
    """Score rows with the local server at `url` or the SageMaker endpoint `endpoint_name`."""
    if not body.strip():
        raise UserError("predict reads the rows to score from standard input: deploy.py predict ... < rows.csv")
    if local:
        from pipelines.local import endpoint

        return endpoint.post(url, body, content_type=content_type, accept=accept)
    import boto3

    from pipelines import endpoints

    if not endpoint_name:
        raise UserError("predict needs --endpoint NAME (or --local for the local server)")
    runtime = boto3.Session(region_name=ws.settings_for(None).region).client("sagemaker-runtime")
    return endpoints.invoke(runtime, endpoint_name, body, content_type=content_type, accept=accept)


def batch_transform(ws: Workspace, *, local: bool, input_path: str, output: str | None, model_package: str,
                    group: str | None = None, instance_type: str | None = None, wait: bool = False) -> dict:
    """Score a file or prefix with an Approved version; the job (request or Describe response), and with
    --local `LocalOutput`, the folder holding the results."""
    cfg = ws.config
    instance_type = instance_type or cfg.inference_instance_type
    group = ws.group(group, local=local)
    if local:
        from pipelines.local import endpoint

        package = endpoint.approved_package(ws.home, group, model_package)
        job = endpoint.batch_transform(ws.home, ws.store, package, input_path=input_path, output_uri=output,
                                       data_root=cfg.s3_root, instance_type=instance_type)
        return {**job, "LocalOutput": str(ws.store.path(job["TransformOutput"]["S3OutputPath"]))}
    from pipelines import cloud, endpoints

    sm, s3 = ws.clients
    package = endpoints.approved_package(sm, group, model_package)
    if not input_path.startswith("s3://") and not Path(input_path).is_file():
        raise UserError(f"--input {input_path}: give an s3:// URI (a file or a prefix) or a local file to upload")
    input_uri = stage_input(input_path, cfg, lambda uri, data: cloud.upload_assets(s3, {uri: data}))
    request = endpoints.batch_transform(sm, package, input_uri=input_uri, output_uri=output,
                                        output_root=f"{cfg.s3_root}/transform", role_arn=cfg.role_arn,
                                        instance_type=instance_type, tags=cfg.all_tags())
    ws.say(f"transform job {request['TransformJobName']} started")
    if wait:
        endpoints.wait_transform(sm, request["TransformJobName"])
    return request


def init(name: str, *, template: str, folder: str | None, config: str | None) -> list[Path]:
    """Scaffold the pipeline `name` (into ./NAME unless `folder`) and its table in the config file."""
    from pipelines.scaffold import scaffold

    return scaffold(name, Path(folder or name), Path(config or CONFIG_FILE), template)


def download(dest: str, source: str | None = None) -> Path:
    """The UCI Online Shoppers CSV into `dest`: fetched from UCI, or from `source` (a path or URL of
    the archive or of the CSV itself, for a machine without the network)."""
    from pipelines.data import UCI_URL, DownloadError, download_uci

    try:
        return download_uci(Path(dest), url=source or UCI_URL)
    except DownloadError as e:
        raise UserError(str(e)) from None
