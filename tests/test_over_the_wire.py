"""deploy.py upsert and start as separate processes, over HTTP, against a moto server on 127.0.0.1."""
from __future__ import annotations

import re
import subprocess
import sys

import boto3
import pytest
from conftest import EXAMPLE_DEF, FAKE_ROLE, PROJECT_ROOT, REGION
from fixtures.servers import serving

BUCKET = "wire-bucket"


@pytest.fixture
def moto_server(tmp_path):
    """A moto server of our own on a free local port; stopped however the test ends."""
    with serving(lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                 "/moto-api/", tmp_path / "moto.log", timeout=30) as endpoint:
        yield endpoint


@pytest.fixture
def wire_env(offline_env, moto_server) -> dict[str, str]:
    """Fake credentials and a region; the endpoint is the moto server, reached without any proxy."""
    env = {k: v for k, v in offline_env.items() if k not in ("HTTP_PROXY", "HTTPS_PROXY")}
    return {**env, "AWS_ENDPOINT_URL": moto_server, "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION, "NO_PROXY": "127.0.0.1"}


def deploy(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "deploy.py", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(run: subprocess.Popen) -> str:
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, f"{run.args}: {err}"
    return out


def test_upsert_and_start_over_the_wire(fake_aws, monkeypatch, moto_server, wire_env):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
    s3 = client.client("s3", endpoint_url=moto_server)
    sm = client.client("sagemaker", endpoint_url=moto_server)
    s3.create_bucket(Bucket=BUCKET)
    flags = ["--role-arn", FAKE_ROLE, "--bucket", BUCKET]

    compiling = deploy(["compile", "--definition", EXAMPLE_DEF, *flags], wire_env)  # meanwhile: the same flags, compiled on its own
    arn = finish(deploy(["upsert", "--definition", EXAMPLE_DEF, *flags], wire_env)).strip()
    execution = finish(deploy(["start", "--definition", EXAMPLE_DEF, *flags, "-p", "QualityThreshold=0.5"], wire_env)).strip()
    compiled = finish(compiling)

    assert arn == f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/purchase-intent"
    deployed = sm.describe_pipeline(PipelineName="purchase-intent")
    assert deployed["PipelineDefinition"] == compiled
    assert deployed["RoleArn"] == FAKE_ROLE
    executions = sm.list_pipeline_executions(PipelineName="purchase-intent")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [execution]
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution)["PipelineParameters"]
    assert params == [{"Name": "QualityThreshold", "Value": "0.5"}]
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    code = set(re.findall(rf"s3://{BUCKET}/(purchase-intent/code/[0-9a-f]{{64}}/[\w.]+)", compiled))
    example = "purchase-intent/data/online_shoppers_synthetic.csv"  # InputData's default, written once by the run
    assert len(code) == 3 and keys == code | {example}


def test_cloud_commands_print_no_library_info_lines_unless_verbose(fake_aws, monkeypatch, moto_server, wire_env):
    """botocore says at INFO where it found credentials: not on the user's terminal unless asked."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    boto3.client("s3", region_name=REGION, endpoint_url=moto_server).create_bucket(Bucket=BUCKET)
    env = wire_env
    flags = ["--role-arn", FAKE_ROLE, "--bucket", BUCKET]
    quiet = deploy(["diff", "--definition", EXAMPLE_DEF, *flags], env)
    out, err = quiet.communicate(timeout=120)
    assert quiet.returncode == 1 and out == f"purchase-intent: not deployed in {REGION} yet " \
                                            "(`python deploy.py upsert` creates it)\n"
    upsert = deploy(["upsert", "--definition", EXAMPLE_DEF, *flags], env)
    out, err = upsert.communicate(timeout=120)
    assert upsert.returncode == 0 and "INFO" not in err, err
    verbose = deploy(["diff", "--definition", EXAMPLE_DEF, *flags, "--verbose"], env)
    _, err = verbose.communicate(timeout=120)
    assert "INFO:botocore.credentials:Found credentials in environment variables." in err
