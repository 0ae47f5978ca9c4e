"""Shared fixtures: environments without real AWS, and compiled pipelines.

Other test modules may add fixtures here; keep each one small and documented.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = PROJECT_ROOT / "examples" / "purchase_intent"  # the worked example: --definition examples/purchase_intent
EXAMPLE_DEF = str(EXAMPLE)


def _ship_the_examples_feature_set() -> None:
    """Tests that train in this process find the worked example's feature set where compile ships it
    (`feature_sets/shoppers.py` of the training code, `pipelines.bundles.with_files`)."""
    import feature_sets

    if str(EXAMPLE) not in feature_sets.__path__:
        feature_sets.__path__.append(str(EXAMPLE))


_ship_the_examples_feature_set()
# Jobs run on this Python unless a test is about its image's environment (pipelines.local.environments);
# subprocesses inherit it.
os.environ.setdefault("PIPELINES_JOB_ENV", "host")
FAKE_ROLE = "arn:aws:iam::123456789012:role/Test"
REGION = "us-east-1"
BUCKET = "ml-pipelines-dev"  # the dev config's artifact bucket
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so any request fails at once


def _sdk_major() -> int | None:
    from sdk_oracle import sdk

    try:
        return sdk.installed()[0]
    except sdk.SdkError:
        return None


# AWS's sample pipelines (tests/fixtures/aws_samples) are written against SDK v2's modules, which v3 removed.
SDK_V2_SAMPLES = pytest.mark.skipif(_sdk_major() != 2, reason="AWS's sample pipelines are SageMaker SDK v2 code "
                                    "(sagemaker.estimator, sagemaker.session), removed in v3; CI runs them under v2")


def offline_environ(root: Path) -> dict[str, str]:
    """Environment for a subprocess with no AWS credentials, profile, endpoint, region, network or local home
    (`root` holds the empty AWS config it points at)."""
    empty = root / "empty-aws-config"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AWS_") and "PROXY" not in k.upper() and k != "PIPELINES_LOCAL_HOME"}
    env.update(AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty), AWS_EC2_METADATA_DISABLED="true",
               HTTP_PROXY=DEAD_PROXY, HTTPS_PROXY=DEAD_PROXY, SAGEMAKER_SUPPRESS_V2_WARNING="1")
    return env


@pytest.fixture
def offline_env(tmp_path) -> dict[str, str]:
    return offline_environ(tmp_path)


def run_cli(*args) -> tuple[int, dict]:
    """`deploy.py ARGS --json` in this process: its exit code and the JSON summary it printed."""
    from pipelines import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([*map(str, args), "--json"])
    return code, json.loads(out.getvalue())


def steps_of(record: dict) -> dict[str, dict]:
    """An execution record's steps by name."""
    return {step["name"]: step for step in record["steps"]}


@pytest.fixture
def fake_aws(monkeypatch, tmp_path):
    """This process sees fake credentials and a region only: no profile, no endpoint, no ~/.aws."""
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    empty = tmp_path / "empty-aws-config"
    empty.write_text("")
    for key, value in dict(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION=REGION,
                           AWS_DEFAULT_REGION=REGION, AWS_CONFIG_FILE=str(empty),
                           AWS_SHARED_CREDENTIALS_FILE=str(empty), AWS_EC2_METADATA_DISABLED="true").items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def moto_aws(fake_aws):
    """Every boto3 client made inside the test talks to moto, in this process."""
    from moto import mock_aws

    with mock_aws():
        yield


@pytest.fixture
def dev_aws(moto_aws):
    """moto with the dev config's bucket; (sagemaker, s3) clients to set things up and read back what happened."""
    import boto3

    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    return boto3.client("sagemaker", region_name=REGION), s3


def example():
    """The worked example's definition module, loaded as `--definition examples/purchase_intent` loads it."""
    from pipelines import definitions

    return definitions.load(str(EXAMPLE))


def example_config(env: str = "dev", path=None, **overrides):
    """The worked example's settings in `env`: the framework's and its own (label, problem_type, tuning...)."""
    from pipelines.config import load_config

    return load_config(env, path, pipeline="purchase-intent", declared=example().Settings,
                       **{"region": REGION, **overrides})


def compile_example(**overrides):
    from pipelines.compiler import compile_pipeline

    cfg = example_config(**overrides)
    return compile_pipeline(example().definition(cfg), cfg)


def upsert_compiled(sm, s3, compiled, role_arn):
    """`cloud.upsert` of a compiled definition, as `deploy.py upsert` calls it."""
    from pipelines import cloud

    return cloud.upsert(sm, s3, compiled.name, compiled.definition, compiled.assets, role_arn,
                        display_name=compiled.display_name, description=compiled.description, tags=compiled.tags)


@pytest.fixture(scope="session")
def compile_with():
    """compile_with(env="dev", **settings) -> the compiled worked example, cached per arguments."""
    cache = {}

    def compile_(**overrides):
        key = tuple(sorted(overrides.items()))
        if key not in cache:
            cache[key] = compile_example(**overrides)
        return cache[key]

    return compile_


def json_steps(definition: str) -> dict[str, dict]:
    """Every step of a definition's JSON by name, those under conditions included, as SageMaker gets it."""
    from pipelines import spec

    return {placed.name: spec.step_json(placed.step) for placed in spec.read(definition).flat}
