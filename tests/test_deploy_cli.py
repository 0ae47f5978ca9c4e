"""deploy.py: compile in fresh processes, and each command through pipelines.cli.main (moto in process)."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import time

import botocore.client
import pytest
from conftest import BUCKET, EXAMPLE_DEF, FAKE_ROLE, PROJECT_ROOT, REGION

from pipelines import cli



# --- compile in fresh processes --------------------------------------------------------------


def deploy(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "deploy.py", *args], cwd=PROJECT_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_compile_is_byte_identical_across_processes_without_aws(offline_env, tmp_path, compile_with):
    """No credentials, region, profile or network; different hash seeds; stdout and --output agree."""
    out = tmp_path / "definition.json"
    runs = [deploy(["compile", "--definition", EXAMPLE_DEF], {**offline_env, "PYTHONHASHSEED": "1"}),
            deploy(["compile", "--definition", EXAMPLE_DEF, "--output", str(out)], {**offline_env, "PYTHONHASHSEED": "2"})]
    (first, err1), (nothing, err2) = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], (err1 + err2).decode()
    assert first and out.read_bytes() == first and nothing == b""
    assert err2.decode().startswith(f"wrote {out} ({len(first)} bytes)")
    assert b"Traceback" not in err1 + err2 and b"Warning" not in err1 + err2
    assert first.decode() == compile_with().definition  # us-east-1 is the offline default region


@pytest.mark.parametrize("flags, overrides", [
    (["--no-tuning"], {"tuning": False}),
    (["--problem-type", "regression"], {"problem_type": "regression"}),
    (["--problem-type", "multiclass", "--label", "Segment"], {"problem_type": "multiclass", "label": "Segment"}),
    (["--env", "prod", "--bucket", "mine"], {"env": "prod", "bucket": "mine"}),
])
def test_compile_flags_reach_the_config(fake_aws, capsys, compile_with, flags, overrides):
    assert cli.main(["compile", "--definition", EXAMPLE_DEF, *flags]) == 0
    assert capsys.readouterr().out == compile_with(**overrides).definition


def test_compile_errors_exit_2_with_the_message(capsys):
    assert cli.main(["compile", "--definition", EXAMPLE_DEF, "--env", "staging"]) == 2
    assert capsys.readouterr().err.startswith("error: environment 'staging' is not in")


# --- refusals that must not reach AWS --------------------------------------------------------


@pytest.fixture
def no_api_calls(monkeypatch, fake_aws):
    """Any AWS API call fails the test; the endpoint points at a port where nothing listens."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    calls = []

    def refuse(client, operation, params):
        calls.append(operation)
        raise AssertionError(f"unexpected AWS call {operation}")

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refuse)
    return calls


@pytest.mark.parametrize("pair, message", [
    ("MaxTuningJobs=abc", "parameter MaxTuningJobs is Integer: 'abc' is not a valid integer"),
    ("Nope=1", "the pipeline has no parameter 'Nope'; its parameters are InputData, ProcessingInstanceType"),
    ("ModelApprovalStatus=Maybe", "parameter ModelApprovalStatus must be one of PendingManualApproval, Approved, "
                                  "Rejected, got 'Maybe'"),
    ("QualityThreshold=high", "parameter QualityThreshold: 'high' is not valid; Smallest acceptable test roc_auc: "
                              "a number, or baseline+N%"),
    ("QualityThreshold", "-p 'QualityThreshold': write parameters as Name=Value"),
])
def test_a_bad_override_is_refused_before_any_call(no_api_calls, capsys, pair, message):
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "-p", pair]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert no_api_calls == []


def test_run_refuses_a_bad_override_before_upserting(no_api_calls, capsys):
    assert cli.main(["run", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "-p", "MaxTuningJobs=abc"]) == 2
    assert "parameter MaxTuningJobs is Integer" in capsys.readouterr().err
    assert no_api_calls == []


def test_upsert_without_a_role_is_refused_before_any_call(no_api_calls, capsys):
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF]) == 1
    assert "upsert needs the pipeline's execution role: pass --role-arn" in capsys.readouterr().err
    assert no_api_calls == []


# --- commands against moto -------------------------------------------------------------------


def test_diff_exits_1_on_a_change_and_0_when_equal(dev_aws, capsys):
    assert cli.main(["diff", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 1  # nothing deployed: one line, not the whole definition
    assert capsys.readouterr().out == \
        f"purchase-intent: not deployed in {REGION} yet (`python deploy.py upsert` creates it)\n"
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert capsys.readouterr().out.strip() == f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/purchase-intent"
    assert cli.main(["diff", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert capsys.readouterr().out.strip() == "purchase-intent: deployed definition is up to date"
    assert cli.main(["diff", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--label", "Bought"]) == 1
    out = capsys.readouterr().out
    assert "changed: step Preprocess" in out and '"Bought"' in out and "added:" not in out


def test_diff_without_role_compares_with_the_deployed_role(dev_aws, capsys):
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    capsys.readouterr()
    assert cli.main(["diff", "--definition", EXAMPLE_DEF]) == 0, capsys.readouterr().out


def test_start_sends_typed_overrides(dev_aws, capsys):
    sm, _ = dev_aws
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "-p", "MaxTuningJobs=3", "-p", "QualityThreshold=1", "-p", "ModelApprovalStatus=Approved"]) == 0
    arn = capsys.readouterr().out.splitlines()[-1]
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in params} == {
        "MaxTuningJobs": "3", "QualityThreshold": "1", "ModelApprovalStatus": "Approved"}


def test_start_with_a_local_file_uploads_it_by_content_and_sets_input_data(dev_aws, capsys, tmp_path):
    sm, s3 = dev_aws
    data = tmp_path / "sessions.csv"
    data.write_bytes(b"Revenue,x\n1,2\n")
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--input-data", str(data)]) == 0
    arn = capsys.readouterr().out.splitlines()[-1]
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    key = f"purchase-intent/data/{hashlib.sha256(data.read_bytes()).hexdigest()}/sessions.csv"
    assert params == [{"Name": "InputData", "Value": f"s3://{BUCKET}/{key}"}]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data.read_bytes()


def test_start_with_a_local_folder_uploads_each_file_under_one_prefix(dev_aws, capsys, tmp_path):
    sm, s3 = dev_aws
    for name in ("a.csv", "more/b.csv"):
        (tmp_path / "data" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / name).write_bytes(f"Revenue,x\n1,{name}\n".encode())
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--input-data", str(tmp_path / "data")]) == 0
    arn = capsys.readouterr().out.splitlines()[-1]
    (param,) = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    prefix = param["Value"].removeprefix(f"s3://{BUCKET}/")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")["Contents"])
    assert keys == [f"{prefix}/a.csv", f"{prefix}/more/b.csv"]  # one object per file: instances share them
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--input-data", str(tmp_path / "data")]) == 0  # the same files, the same prefix
    arn = capsys.readouterr().out.splitlines()[-1]
    assert sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"] == [param]


def test_start_wait_reports_success(dev_aws, capsys):
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--wait", "--timeout", "5", "--poll", "0.1"]) == 0
    assert re.search(r"execution \S+ of purchase-intent: Succeeded", capsys.readouterr().err)


def test_start_wait_times_out_with_a_message(dev_aws, capsys, monkeypatch):
    """moto finishes every execution at once; hold it at Executing to see the timeout."""
    from moto.sagemaker.models import FakePipelineExecution

    init = FakePipelineExecution.__init__

    def executing(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.pipeline_execution_status = "Executing"

    monkeypatch.setattr(FakePipelineExecution, "__init__", executing)
    assert cli.main(["upsert", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 0
    began = time.monotonic()
    assert cli.main(["start", "--definition", EXAMPLE_DEF, "--wait", "--timeout", "1", "--poll", "0.2"]) == 1
    assert 0.8 < time.monotonic() - began < 5
    err = capsys.readouterr().err
    assert "still Executing after 1 s; it keeps running in SageMaker (raise --timeout to wait longer)" in err


def test_start_before_upsert_says_to_upsert(dev_aws, capsys):
    assert cli.main(["start", "--definition", EXAMPLE_DEF]) == 1
    assert "run `python deploy.py upsert`" in capsys.readouterr().err
