"""Settings: the framework's (`Config`) per environment and per pipeline, and each pipeline's own.

Two files, the later winning: the product's defaults (`pipelines/config.toml`, installed with it) and
the project's (`ml-pipelines.toml` in the working directory, or `--config FILE`). In each,
`[default]`, then the environment's table (`[dev]`), then the pipeline's (`[pipeline.NAME]`, NAME
being the name its definition gives `Pipeline(...)`); then flags. Environments say where things run
(bucket, region, instance types); a pipeline's table says what it needs (threshold, prefix, model
package group) and also sets the settings its definition declares (`pipelines.settings`: a label, a
problem type...), which `Config.settings` carries. One frozen object travels from the command line
to the compiler, so two compiles with the same settings produce the same bytes.
"""
from __future__ import annotations

import configparser
import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipelines import settings as declared_settings
from pipelines.settings import ConfigError

__all__ = ["DEFAULTS_FILE", "PROJECT_FILE", "Config", "ConfigError", "load_config", "project_file"]

DEFAULTS_FILE = Path(__file__).with_name("config.toml")  # the product's defaults
PROJECT_FILE = "ml-pipelines.toml"  # the project's settings, in the working directory
PIPELINES = "pipeline"  # [pipeline.NAME]: the settings of one pipeline


@dataclass(frozen=True)
class Config:
    env: str = "dev"
    pipeline_name: str | None = None  # whose [pipeline.NAME] table was applied; None: no pipeline's
    region: str | None = None
    role_arn: str | None = None
    bucket: str | None = None
    prefix: str | None = None  # of the pipeline's S3 objects; None: the pipeline's name
    model_package_group: str | None = None  # None: the group the definition names
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    inference_instance_type: str = "ml.m5.large"
    max_tuning_jobs: int = 8
    max_parallel_tuning_jobs: int = 2
    model_approval_status: str = "PendingManualApproval"
    quality_threshold: float | str | None = None  # a number, or baseline+N% where the definition reads it so
    input_data: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    sagemaker_project_name: str | None = None
    sagemaker_project_id: str | None = None
    # Security: applied to every job (processing, training, tuning, transform) and model when set.
    kms_key_id: str | None = None  # encrypts job volumes and outputs
    subnets: tuple[str, ...] = ()  # with security_group_ids: jobs and models run inside this VPC
    security_group_ids: tuple[str, ...] = ()
    network_isolation: bool = False  # containers get no network at all
    encrypt_inter_container_traffic: bool = False
    settings: Any = None  # the definition's own settings: an instance of its `Settings` dataclass, if it declares one

    def __post_init__(self):
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ConfigError("a VPC needs both subnets and security_group_ids: set both or neither")

    @property
    def artifact_bucket(self) -> str:
        if not self.bucket:
            raise ConfigError(
                f"no S3 bucket for environment {self.env!r}: pass --bucket NAME "
                f"or set `bucket` under [{self.env}] in {PROJECT_FILE}"
            )
        return self.bucket

    @property
    def key_prefix(self) -> str:
        """The S3 key prefix of this pipeline's objects: `prefix`, else the pipeline's name."""
        return self.prefix or self.pipeline_name or ""

    @property
    def s3_root(self) -> str:
        """Where this pipeline's code, data and outputs live: s3://<bucket>/<key prefix>."""
        return "/".join(filter(None, [f"s3://{self.artifact_bucket}", self.key_prefix]))

    def all_tags(self) -> dict[str, str]:
        """Tags for the pipeline, with SageMaker project tags when a project is named."""
        tags = dict(self.tags)
        if self.sagemaker_project_name:
            tags["sagemaker:project-name"] = self.sagemaker_project_name
        if self.sagemaker_project_id:
            tags["sagemaker:project-id"] = self.sagemaker_project_id
        return tags

    def replace(self, **changes) -> Config:
        """A copy with `changes`; None values mean "not given" and keep the current setting."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


# What a file may set: the fields above but those the command line fixes.
FILE_FIELDS = {name: kind for name, kind in typing.get_type_hints(Config).items()
               if name not in ("env", "pipeline_name", "settings")}


def project_file(given: str | Path | None = None) -> Path | None:
    """The project's settings file: `given` (--config), else ./ml-pipelines.toml when it exists."""
    if given:
        return Path(given)
    here = Path.cwd() / PROJECT_FILE
    return here if here.is_file() else None


def load_config(env: str = "dev", path: str | Path | None = None, *, pipeline: str | None = None,
                declared: type | None = None, given_as: dict[str, str] | None = None, **overrides) -> Config:
    """The settings of `pipeline` in `env`: the product's defaults, then the project file `path` (None:
    none), each [default], [env], [pipeline.<pipeline>]; then non-None `overrides`. `declared` is the
    definition's `Settings` class: its fields may be set in the pipeline's table and in `overrides`.
    `given_as` names how an override was given, for messages (default: its flag, `--name`)."""
    given_as = given_as or {}
    files = [DEFAULTS_FILE] + ([Path(path)] if path else [])
    docs = [(f, _read(f)) for f in files]
    envs = sorted({k for _, doc in docs for k in doc if k not in ("default", PIPELINES)})
    if env not in envs:
        raise ConfigError(f"environment {env!r} is not in {' nor '.join(map(str, files))}: choose one of "
                          f"{', '.join(envs)}")
    own = declared_settings.options(declared)
    clash = sorted(set(own) & set(FILE_FIELDS))
    if clash:
        raise ConfigError(f"the pipeline's Settings declare {', '.join(clash)}, a framework setting: name it otherwise")
    merged: dict = {}
    table: dict = {}  # the pipeline's own settings, from its tables
    where: dict[str, str] = {}
    for source, doc in docs:
        for name in ("default", env):
            merged = _merge(merged, _checked(doc.get(name, {}), f"[{name}] of {source}", {}))
        pipelines = doc.get(PIPELINES, {})
        if not isinstance(pipelines, dict) or not all(isinstance(t, dict) for t in pipelines.values()):
            raise ConfigError(f"{PIPELINES!r} in {source} must hold one table per pipeline: [{PIPELINES}.NAME]")
        if pipeline and pipeline in pipelines:
            values = dict(pipelines[pipeline])
            ours = {k: values.pop(k) for k in list(values) if k in own}
            merged = _merge(merged, _checked(values, f"[{PIPELINES}.{pipeline}] of {source}", own))
            table.update(ours)
            where.update({k: f"setting {k!r} in [{PIPELINES}.{pipeline}] of {source}" for k in ours})
    given = {k: v for k, v in overrides.items() if k in own and v is not None}
    unknown = [k for k in overrides if k not in own and k not in FILE_FIELDS]
    if unknown:
        raise ConfigError(declared_settings.unknown(unknown[0], {**own, **FILE_FIELDS},
                                                    given_as.get(unknown[0], f"--{unknown[0].replace('_', '-')}")))
    where.update({k: given_as.get(k, f"--{k.replace('_', '-')}") for k in given})
    from_files = frozenset(table) - frozenset(given)
    chosen = declared_settings.make(declared, {**table, **given}, where, typed=from_files) if declared else None
    framework = {k: v for k, v in overrides.items() if k in FILE_FIELDS}
    return Config(env=env, pipeline_name=pipeline, settings=chosen, **merged).replace(**framework)


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"--config {path}: no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _checked(values: dict, where: str, own: dict) -> dict:
    """Refuse unknown keys and values of the wrong type, naming the key and the table."""
    out = {}
    for key, value in values.items():
        if key not in FILE_FIELDS:
            raise ConfigError(declared_settings.unknown(key, {**FILE_FIELDS, **own}, where))
        out[key] = declared_settings.check(value, FILE_FIELDS[key], f"setting {key!r} in {where}")
    return out


def aws_region() -> str | None:
    """The region boto3 would choose, read without importing it (that import is most of a short
    command's start): AWS_DEFAULT_REGION, else the `region` of the profile (AWS_PROFILE, else
    AWS_DEFAULT_PROFILE, else default) in the AWS config file (AWS_CONFIG_FILE, else ~/.aws/config)."""
    if os.environ.get("AWS_DEFAULT_REGION"):
        return os.environ["AWS_DEFAULT_REGION"]
    profile = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_DEFAULT_PROFILE") or "default"
    parser = configparser.RawConfigParser()
    try:
        parser.read(Path(os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config").expanduser())
    except (configparser.Error, OSError):
        return None
    sections = ["default", "profile default"] if profile == "default" else [f"profile {profile}"]
    return next((parser.get(s, "region") for s in sections if parser.has_option(s, "region")), None)
