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

from pipelines import definitions, dsl
from pipelines.bundles import file_asset
from pipelines.config import CONFIG_FILE, ConfigError, load_config

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
                          batch_transform=s.batch_transform)
        return cfg if cfg.region else cfg.replace(region=self._default_region)

    @cached_property
    def _default_region(self) -> str:
        import boto3  # boto3 reads AWS_REGION / AWS_DEFAULT_REGION / the profile's region; no network

        return boto3.Session().region_name or DEFAULT_REGION

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

    def compiled(self, cfg=None, *, cache_dir: Path | None = None):
        """The definition compiled with its settings, or built anew with `cfg` and compiled."""
        from pipelines.compiler import compile_pipeline

        pipeline = self.pipeline if cfg is None else definitions.build(self.module.definition, cfg)
        return compile_pipeline(pipeline, cfg or self.config, cache_dir=cache_dir)

    def group(self, given: str | None, *, local: bool) -> str:
        """`--group`, else the model package group the pipeline's RegisterModel step registers into."""
        if given:
            return given
        compiled = self.compiled(cache_dir=self.home.compiled if local else None)
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
    from pipelines.compiler import all_steps

    steps = all_steps(json.loads(definition)["Steps"])
    return list(dict.fromkeys(s["Arguments"]["ModelPackageGroupName"] for s in steps if s["Type"] == "RegisterModel"))


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


def diff(ws: Workspace) -> tuple[str, list[str]]:
    """(pipeline name, step-by-step differences deployed -> compiled; empty when up to date)."""
    from pipelines import cloud

    cfg = ws.config
    sm, _ = ws.clients
    current = cloud.deployed(sm, cfg.pipeline_name) or {}
    if not cfg.role_arn and current.get("RoleArn"):  # compare like with like, not with the placeholder role
        cfg = cfg.replace(role_arn=current["RoleArn"])
    compiled = ws.compiled(cfg)
    return compiled.name, cloud.diff(current.get("PipelineDefinition"), compiled.definition)


def upsert(ws: Workspace, compiled=None) -> str:
    """Upload the code and create or update the pipeline; its ARN."""
    from pipelines import cloud

    sm, s3 = ws.clients
    return cloud.upsert(sm, s3, compiled or ws.compiled(), ws.config.role_arn)


def start(ws: Workspace, compiled, overrides: dict, *, input_data: str | None = None) -> str:
    """Start an execution with checked overrides (and --input-data uploaded); its ARN."""
    from pipelines import cloud

    sm, s3 = ws.clients
    if input_data:
        overrides["InputData"] = stage_input(input_data, ws.config,
                                             lambda uri, data: cloud.upload_assets(s3, {uri: data}))
    return cloud.start(sm, compiled, scoring_follows_input(compiled.parameters, overrides))


def wait(ws: Workspace, execution_arn: str, *, timeout: float, poll: float, on_step) -> dict:
    from pipelines import cloud

    return cloud.wait(ws.clients[0], execution_arn, timeout=timeout, poll=poll, on_step=on_step)


# --- the pipeline on the local runner -----------------------------------------------------------


def run_local(ws: Workspace, *, parameters: list[str] = (), input_data: str | None = None,
              resume: str | None = None, max_parallel_steps: int = 4, on_event=None,
              definition_json: str | None = None, stage: list[str] = (), job_env: str | None = None) -> dict:
    """Compile, put the code bundles and the input data into the local store (what upsert does for
    S3), run, write the report; the execution record. With `definition_json`, run that file (any
    SageMaker definition) as it is instead; `stage` (``s3://bucket/key=LOCAL_PATH``) fills the store
    first; `job_env` chooses the jobs' Python (`pipelines.local.environments`)."""
    from pipelines.local import run_pipeline
    from pipelines.report import publish_local_run

    home, store = ws.home, ws.store
    options = dict(home=home, store=store, max_parallel_steps=max_parallel_steps, on_event=on_event, job_env=job_env)
    _stage(ws, stage)
    description = None  # the report's subtitle: the definition's description, when it is the pipeline that ran
    if resume:  # the recorded definition and pipeline name, not the current ones
        record = run_pipeline(None, resume=resume, **options)
        description = _description_of(ws, record["pipeline_name"])
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
        compiled = ws.compiled(cache_dir=home.compiled)
        overrides = parse_overrides(compiled.parameters, parameters)
        for uri, data in compiled.assets.items():
            if not store.exists(uri):
                store.put_bytes(uri, data)
        if input_data:
            overrides["InputData"] = stage_input(input_data, ws.config, store.put_bytes)
        elif "InputData" in compiled.parameters and "InputData" not in overrides:
            _put_example_data(ws, compiled.parameters["InputData"].default)
        scoring_follows_input(compiled.parameters, overrides)
        record = run_pipeline(compiled.definition, pipeline_name=compiled.name, parameters=overrides, **options)
        description = compiled.description
    return publish_local_run(record, home=home, store=store, description=description)  # report, model card


def _description_of(ws: Workspace, pipeline_name: str) -> str | None:
    """The description `--definition` gives `pipeline_name`; None for another pipeline, or one it cannot build
    (a resumed run needs the recorded JSON only, so a definition changed since is no reason to fail)."""
    try:
        pipeline = ws.pipeline
    except (dsl.DefinitionError, ConfigError):
        return None
    return pipeline.description if pipeline.name == pipeline_name else None


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
    return {
        "execution_id": record["execution_id"],
        "status": record["status"],
        "failure_reason": record.get("failure_reason"),
        "seconds": record.get("seconds"),
        "steps": [{"name": s["name"], "type": s["type"], "status": s["status"], "cache_hit": bool(s.get("cache_hit")),
                   "seconds": s.get("seconds")} for s in record["steps"]],
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
    """The HTML report of a local run (succeeded or not), written again from its records."""
    from pipelines.report import read_definition, render_report

    home = ws.home
    try:
        record = home.execution(execution_id)
    except FileNotFoundError as e:
        raise UserError(f"{e}; list runs under {home.runs}") from None
    run_dir = home.runs / execution_id
    out = Path(output) if output else run_dir / "report.html"
    return render_report(record, read_definition(run_dir), ws.store, out_path=out)


# --- registered models: pipelines.endpoints (SageMaker), pipelines.local.endpoint (local) ------------


def models(ws: Workspace, *, local: bool, group: str | None = None, every: bool = False, last: int = 10) -> list[dict]:
    """The pipeline's model package group (or `group`, or with `every` all groups) with its versions
    (the newest `last` in SageMaker)."""
    names = None if every else [ws.group(group, local=local)]
    if local:
        from pipelines.local.registry import Registry

        registry = Registry.of(ws.home)
        known = [g["ModelPackageGroupName"] for g in registry.list_groups()]
        return [{"ModelPackageGroupName": name, "Versions": registry.list_versions(name)}
                for name in known if names is None or name in names]
    from pipelines import endpoints

    sm, s3 = ws.clients
    return endpoints.list_models(sm, s3, last=last, names=names)


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


def download(dest: str) -> Path:
    from pipelines.data import download_uci

    return download_uci(Path(dest))
