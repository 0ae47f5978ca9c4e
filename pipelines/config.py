"""Settings from `pipelines/config.toml`: per environment and per pipeline, overridable by flags.

`[default]`, then the environment's table (`[dev]`), then the pipeline's (`[pipeline.NAME]`, NAME
being the name its definition gives `Pipeline(...)`), then flags. Environments say where things
run (bucket, region, instance types); a pipeline's table says what it needs (label, threshold,
prefix, model package group) and wins over the environment. One frozen object travels from the
command line to the compiler, so two compiles with the same settings produce the same bytes.
"""
from __future__ import annotations

import configparser
import dataclasses
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.problems import PROBLEMS

CONFIG_FILE = Path(__file__).with_name("config.toml")
PIPELINES = "pipeline"  # [pipeline.NAME]: the settings of one pipeline
PROBLEM_TYPES = tuple(PROBLEMS)


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says where and how to fix it."""


@dataclass(frozen=True)
class Config:
    env: str = "dev"
    pipeline_name: str | None = None  # whose [pipeline.NAME] table was applied; None: no pipeline's
    region: str | None = None
    role_arn: str | None = None
    bucket: str | None = None
    prefix: str | None = None  # of the pipeline's S3 objects; None: the pipeline's name
    model_package_group: str | None = None  # None: the group the definition names
    problem_type: str = "binary"
    label: str = ""  # the column to predict
    positive_class: str | None = None  # binary: the class that is 1 (default: True/yes/1..., else the minority)
    feature_set: str = "none"  # domain features on top of the generic ones (training_scripts/feature_sets/)
    schema: dict = field(default_factory=dict)  # declared column kinds {column: kind}, or a whole schema.json
    tuning: bool = True
    batch_transform: bool = False  # after registration, score ScoringData with the new model (CreateModel + Transform)
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    inference_instance_type: str = "ml.m5.large"
    max_tuning_jobs: int = 8
    max_parallel_tuning_jobs: int = 2
    time_budget: str = "2m"  # how long training may take: the TimeBudget parameter's default (90s, 5m, 1h30m)
    families: str = "auto"  # the model's families (train.py --families): auto, or e.g. "xgboost" for one, faster
    model_approval_status: str = "PendingManualApproval"
    quality_threshold: float | str | None = None  # a number, or baseline+N% (default baseline+10%)
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

    def __post_init__(self):
        if self.problem_type not in PROBLEM_TYPES:
            raise ConfigError(
                f"problem_type {self.problem_type!r} is not supported: use one of {', '.join(PROBLEM_TYPES)}"
            )
        duration_seconds(self.time_budget)  # a mistake is refused here, naming the setting
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ConfigError("a VPC needs both subnets and security_group_ids: set both or neither")

    @property
    def time_budget_seconds(self) -> int:
        return duration_seconds(self.time_budget)

    @property
    def artifact_bucket(self) -> str:
        if not self.bucket:
            raise ConfigError(
                f"no S3 bucket for environment {self.env!r}: pass --bucket NAME "
                f"or set `bucket` under [{self.env}] in {CONFIG_FILE}"
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

    @property
    def declared_schema(self) -> str:
        """The declared schema as the Schema parameter carries it: compact JSON, or empty for none."""
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":")) if self.schema else ""

    def all_tags(self) -> dict[str, str]:
        """Tags for the pipeline, with SageMaker project tags when a project is named."""
        tags = dict(self.tags)
        if self.sagemaker_project_name:
            tags["sagemaker:project-name"] = self.sagemaker_project_name
        if self.sagemaker_project_id:
            tags["sagemaker:project-id"] = self.sagemaker_project_id
        return tags

    def replace(self, **changes) -> "Config":
        """A copy with `changes`; None values mean "not given" and keep the current setting."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


def load_config(env: str = "dev", path: Path = CONFIG_FILE, *, pipeline: str | None = None, **overrides) -> Config:
    """The settings of `pipeline` in `env`: [default], [env], [pipeline.<pipeline>], then non-None `overrides`."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    envs = sorted(k for k in doc if k not in ("default", PIPELINES))
    if env not in envs:
        raise ConfigError(f"environment {env!r} is not in {path}: choose one of {', '.join(envs)}")
    pipelines = doc.get(PIPELINES, {})
    if not isinstance(pipelines, dict) or not all(isinstance(t, dict) for t in pipelines.values()):
        raise ConfigError(f"{PIPELINES!r} in {path} must hold one table per pipeline: [{PIPELINES}.NAME]")
    merged = _merge(_merge(doc.get("default", {}), doc[env]), pipelines.get(pipeline, {}) if pipeline else {})
    return Config(env=env, pipeline_name=pipeline, **_checked(merged, path)).replace(**overrides)


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for key, value in top.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def _checked(values: dict, path: Path) -> dict:
    """Refuse unknown keys and values of the wrong type, naming the key and the file."""
    fields = {f.name: f for f in dataclasses.fields(Config) if f.name not in ("env", "pipeline_name")}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown setting {key!r} in {path}: known settings are {', '.join(sorted(fields))}")
        expected = _python_types(fields[key].type)
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
            names = " or ".join(t.__name__ for t in expected)
            raise ConfigError(f"setting {key!r} in {path} must be {names}, got {value!r}")
        if isinstance(value, dict) and not all(isinstance(v, str) for v in value.values()):
            what = "column kinds" if key == "schema" else "AWS tag values"
            raise ConfigError(f"setting {key!r} in {path} must be a table of strings ({what}), got {value!r}")
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"setting {key!r} in {path} must be a list of strings, got {value!r}")
            values[key] = tuple(value)  # frozen config, hashable and comparable
    return values


def _python_types(annotation: str) -> tuple[type, ...]:
    names = {"str": str, "int": int, "float": (float, int), "bool": bool, "dict[str, str]": dict, "dict": dict,
             "tuple[str, ...]": list}
    types: list[type] = []
    for part in annotation.split("|"):
        part = part.strip()
        if part != "None":
            found = names[part]
            types.extend(found if isinstance(found, tuple) else (found,))
    return tuple(types)


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


def duration_seconds(text: str) -> int:
    """Whole seconds of a duration as people write it: 90, 90s, 5m, 1h30m, 2h."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if not match or not any(match.groups()):
        raise ConfigError(f"time budget {text!r} is not a duration: write it like 90s, 5m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = round(hours * 3600 + minutes * 60 + seconds)
    if total < 1:
        raise ConfigError(f"time budget {text!r} is shorter than a second")
    return total


_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?")
