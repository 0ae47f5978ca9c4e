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
import importlib
import json
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from pipelines import dsl
from pipelines.bundles import file_asset
from pipelines.config import ConfigError, load_config
from pipelines.problems import PROBLEMS

DEFAULT_DEFINITION = "pipelines.purchase_intent"
DEFAULT_REGION = "us-east-1"  # image URIs are regional; compile needs one even offline
SYNTHETIC_ROWS = 12_330  # the size of the real data set
SYNTHETIC_SEED = 0


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

    @classmethod
    def of(cls, namespace) -> Settings:
        """The settings among a namespace's attributes (argparse's), the rest at their defaults."""
        return cls(**{f.name: getattr(namespace, f.name) for f in dataclasses.fields(cls)
                      if getattr(namespace, f.name, None) is not None})


class Workspace:
    """What one command works with, each made once, on first use: config, compiled definition,
    local home and store, SageMaker clients."""

    def __init__(self, settings: Settings = Settings(), *, say: Callable[[str], None] = lambda line: None):
        self.settings, self.say = settings, say

    @cached_property
    def config(self):
        s = self.settings
        cfg = load_config(s.env, region=s.region, role_arn=s.role_arn, bucket=s.bucket, problem_type=s.problem_type,
                          label=s.label, positive_class=s.positive_class, feature_set=s.feature_set,
                          schema=s.schema and read_schema(s.schema), tuning=s.tuning,
                          batch_transform=s.batch_transform)
        if cfg.region:
            return cfg
        import boto3  # boto3 reads AWS_REGION / AWS_DEFAULT_REGION / the profile's region; no network

        return cfg.replace(region=boto3.Session().region_name or DEFAULT_REGION)

    def compiled(self, cfg=None, *, cache_dir: Path | None = None):
        """The definition built with `cfg` (default: the config) and compiled."""
        from pipelines.compiler import compile_pipeline

        cfg = cfg or self.config
        module = importlib.import_module(self.settings.definition)
        return compile_pipeline(module.definition(cfg), cfg, cache_dir=cache_dir)

    @cached_property
    def model_group(self) -> str:
        """The model package group the registry commands act in: the config's, else the one the
        definition's Register step names (one group per model: pipeline, label and problem type)."""
        if self.config.model_package_group:
            return self.config.model_package_group
        groups = sorted({step["Arguments"]["ModelPackageGroupName"] for step in _all_steps(self.compiled())
                         if step["Type"] == "RegisterModel"})
        if len(groups) != 1:
            raise UserError(f"the pipeline registers into {len(groups)} model package groups "
                            f"({', '.join(groups) or 'none'}): set model_package_group in config.toml")
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

        session = boto3.Session(region_name=self.config.region)
        return session.client("sagemaker"), session.client("s3")


def _all_steps(compiled) -> list[dict]:
    from pipelines.compiler import all_steps

    return list(all_steps(json.loads(compiled.definition)["Steps"]))


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
              resume: str | None = None, max_parallel_steps: int = 4, on_event=None) -> dict:
    """Compile, put the code bundles and the input data into the local store (what upsert does for
    S3), run, write the report; the execution record."""
    from pipelines.local import run_pipeline
    from pipelines.report import publish_local_run

    home, store, cfg = ws.home, ws.store, ws.config
    options = dict(home=home, store=store, max_parallel_steps=max_parallel_steps, on_event=on_event)
    if resume:  # the recorded definition and pipeline name, not the current ones
        record = run_pipeline(None, resume=resume, **options)
    else:
        compiled = ws.compiled(cache_dir=home.compiled)
        overrides = parse_overrides(compiled.parameters, parameters)
        for uri, data in compiled.assets.items():
            if not store.exists(uri):
                store.put_bytes(uri, data)
        if input_data:
            overrides["InputData"] = stage_input(input_data, cfg, store.put_bytes)
        elif "InputData" in compiled.parameters and "InputData" not in overrides:
            _ensure_synthetic(ws, compiled.parameters["InputData"].default)
        scoring_follows_input(compiled.parameters, overrides)
        record = run_pipeline(compiled.definition, pipeline_name=compiled.name, parameters=overrides, **options)
    return publish_local_run(record, home=home, store=store, description=cfg.description)  # report, model card


def _ensure_synthetic(ws: Workspace, uri: str) -> None:
    """The embedded default data: generated once, deterministically, into the local store."""
    if ws.store.exists(uri):
        return
    from pipelines.data import generate, write_csv

    ws.say(f"generating {SYNTHETIC_ROWS} synthetic sessions -> {uri}")
    with tempfile.TemporaryDirectory() as tmp:
        ws.store.put_file(uri, write_csv(generate(SYNTHETIC_ROWS, seed=SYNTHETIC_SEED), Path(tmp) / "data.csv"))


def summarise(record: dict, problem_type: str) -> dict:
    """The `--json` document: what a script or a CI job wants to know about a run."""
    metrics = next((files[name] for step in record["steps"] for files in [step.get("property_files") or {}]
                    for name in files), None)
    registered = next((step["response"] for step in record["steps"]
                       if step["type"] == "RegisterModel" and step["status"] == "Succeeded"), None)
    gate_path = PROBLEMS[problem_type].gate_path
    return {
        "execution_id": record["execution_id"],
        "status": record["status"],
        "failure_reason": record.get("failure_reason"),
        "seconds": record.get("seconds"),
        "steps": [{"name": s["name"], "type": s["type"], "status": s["status"], "cache_hit": bool(s.get("cache_hit")),
                   "seconds": s.get("seconds")} for s in record["steps"]],
        "gate": {"metric": gate_path, "value": _get_path(metrics, gate_path),
                 **{k: ((metrics or {}).get("gate") or {}).get(k) for k in ("threshold", "baseline", "rule", "passed")}},
        "registered_model": registered and {k: registered.get(k) for k in
                                            ("ModelPackageArn", "ModelPackageVersion", "ModelApprovalStatus")},
        "metrics": metrics,
        "report": record.get("report"),
        "model_card": record.get("model_card"),
    }


def _get_path(doc, path: str):
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


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


def models(ws: Workspace, *, local: bool, last: int = 10) -> list[dict]:
    """Every model package group with its versions (newest `last` in SageMaker)."""
    if local:
        from pipelines.local.registry import Registry

        registry = Registry.of(ws.home)
        return [{"ModelPackageGroupName": g["ModelPackageGroupName"],
                 "Versions": registry.list_versions(g["ModelPackageGroupName"])} for g in registry.list_groups()]
    from pipelines import endpoints

    sm, s3 = ws.clients
    return endpoints.list_models(sm, s3, last=last)


def set_approval(ws: Workspace, version: str, status: str, *, local: bool, description: str | None = None) -> dict:
    """Approve or reject the version `version` names; the version afterwards."""
    group = ws.model_group
    if local:
        from pipelines.local import endpoint

        return endpoint.set_approval(ws.home, group, version, status)
    from pipelines import endpoints

    return endpoints.set_approval(ws.clients[0], group, version, status, description)


def deploy_endpoint(ws: Workspace, *, local: bool, model_package: str, endpoint_name: str | None,
                    instance_type: str | None, instance_count: int = 1, wait: bool = False) -> tuple[dict, str]:
    """Point an endpoint at an Approved version: (what was done, what to do or know next)."""
    cfg = ws.config
    name = endpoint_name or f"{cfg.pipeline_name}-{cfg.env}"
    instance_type = instance_type or cfg.inference_instance_type
    if local:
        from pipelines.local import endpoint

        package = endpoint.approved_package(ws.home, ws.model_group, model_package)
        result = endpoint.deploy(ws.home, package, endpoint_name=name, instance_type=instance_type)
        return result, f"serve it with: python deploy.py serve --local --endpoint-name {name}"
    from pipelines import endpoints

    sm, _ = ws.clients
    package = endpoints.approved_package(sm, ws.model_group, model_package)
    result = endpoints.deploy_endpoint(sm, package, endpoint_name=name, role_arn=cfg.role_arn,
                                       instance_type=instance_type, instance_count=instance_count,
                                       tags=cfg.all_tags())
    hint = endpoints.wait_in_service(sm, name)["EndpointStatus"] if wait else \
        "SageMaker is bringing it into service (add --wait to follow)"
    return result, hint


def serve(ws: Workspace, *, model_package: str | None, endpoint_name: str | None, host: str, port: int,
          max_payload_mb: float) -> None:
    """Serve a locally registered version over HTTP until stopped."""
    from pipelines.local import endpoint

    home, ref = ws.home, model_package
    if endpoint_name:
        record = endpoint.endpoint_record(home, endpoint_name)
        if record is None:
            raise UserError(f"no local endpoint {endpoint_name}: create it with "
                            f"`python deploy.py deploy-endpoint --local --endpoint-name {endpoint_name}`")
        ref = ref or record["ModelPackageArn"]
    package = endpoint.resolve(endpoint.Registry.of(home), ws.model_group, ref or "latest-approved")
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
    runtime = boto3.Session(region_name=ws.config.region).client("sagemaker-runtime")
    return endpoints.invoke(runtime, endpoint_name, body, content_type=content_type, accept=accept)


def batch_transform(ws: Workspace, *, local: bool, input_path: str, output: str | None, model_package: str,
                    instance_type: str | None, wait: bool = False) -> dict:
    """Score a file or prefix with an Approved version; the job (request or Describe response), and with
    --local `LocalOutput`, the folder holding the results."""
    cfg = ws.config
    instance_type = instance_type or cfg.inference_instance_type
    if local:
        from pipelines.local import endpoint

        package = endpoint.approved_package(ws.home, ws.model_group, model_package)
        job = endpoint.batch_transform(ws.home, ws.store, package, input_path=input_path, output_uri=output,
                                       data_root=cfg.s3_root, instance_type=instance_type)
        return {**job, "LocalOutput": str(ws.store.path(job["TransformOutput"]["S3OutputPath"]))}
    from pipelines import cloud, endpoints

    sm, s3 = ws.clients
    package = endpoints.approved_package(sm, ws.model_group, model_package)
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


def download(dest: str) -> Path:
    from pipelines.data import download_uci

    return download_uci(Path(dest))
