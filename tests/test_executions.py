"""Executions in SageMaker, against moto: `runs`, `compare`, `logs`, `stop` and selective starts.

moto records pipelines, executions, their parameters and definitions, processing jobs, model
packages and CloudWatch logs, but has no ListPipelineExecutionSteps: the `steps` fixture answers
that one call (in SageMaker's shape) from what each test says the execution's steps did.
"""
from __future__ import annotations

import contextlib
import io
import json
import time

import boto3
import pytest
from botocore.stub import Stubber
from conftest import BUCKET, EXAMPLE_DEF, FAKE_ROLE, REGION, upsert_compiled

from pipelines import cli, cloud

EVALUATION = "s3://{bucket}/purchase-intent/runs/{id}/Evaluate/evaluation"


@pytest.fixture
def steps(monkeypatch):
    """Execution ARN -> the PipelineExecutionSteps moto should list for it."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    listed: dict[str, list[dict]] = {}

    def list_pipeline_execution_steps(self):
        return ActionResult({"PipelineExecutionSteps": listed.get(self._get_param("PipelineExecutionArn"), [])})

    monkeypatch.setattr(SageMakerResponse, "list_pipeline_execution_steps", list_pipeline_execution_steps,
                        raising=False)
    return listed


def executed(sm, s3, steps, compiled, threshold: str, roc_auc: float, version: int | None) -> str:
    """Start an execution and make it look as SageMaker leaves it: Evaluate's job wrote evaluation.json
    and its log, and (with `version`) Register registered that model package version."""
    arn = cloud.start(sm, compiled.name, {"QualityThreshold": threshold})
    execution_id = arn.rsplit("/", 1)[-1]
    job = f"pipelines-{execution_id}-Evaluate-abc"
    output = EVALUATION.format(bucket=BUCKET, id=execution_id)
    sm.create_processing_job(
        ProcessingJobName=job, RoleArn=FAKE_ROLE,
        ProcessingResources={"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
        AppSpecification={"ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        ProcessingOutputConfig={"Outputs": [{"OutputName": "evaluation", "S3Output": {
            "S3Uri": output, "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]})
    report = {"binary_classification_metrics": {"roc_auc": {"value": roc_auc}, "accuracy": {"value": 0.9}},
              "gate": {"metric": "roc_auc", "value": roc_auc, "threshold": 0.55, "passed": True, "rule": threshold}}
    s3.put_object(Bucket=BUCKET, Key=cloud.split_s3_uri(f"{output}/evaluation.json")[1], Body=json.dumps(report))
    logs = boto3.client("logs", region_name=REGION)
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="/aws/sagemaker/ProcessingJobs")
    logs.create_log_stream(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=f"{job}/algo-1-1700000000")
    logs.put_log_events(logGroupName="/aws/sagemaker/ProcessingJobs", logStreamName=f"{job}/algo-1-1700000000",
                        logEvents=[{"timestamp": int(time.time() * 1000) + i, "message": f"{execution_id} line {i}"}
                                   for i in range(3)])  # CloudWatch refuses events older than 14 days
    listed = [{"StepName": "Evaluate", "StepStatus": "Succeeded",
               "Metadata": {"ProcessingJob": {"Arn": f"arn:aws:sagemaker:{REGION}:123456789012:processing-job/{job}"}}}]
    if version is not None:
        listed.append({"StepName": "Register-RegisterModel", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {
            "Arn": f"arn:aws:sagemaker:{REGION}:123456789012:model-package/purchase-intent-revenue-binary/{version}"}}})
    steps[arn] = listed[::-1]  # SageMaker lists the newest step first
    return arn


def deploy(*args) -> tuple[int, str]:
    """deploy.py ARGS about the worked example's executions in SageMaker."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([*map(str, args), "--definition", EXAMPLE_DEF])
    return code, out.getvalue()


@pytest.fixture
def two_runs(dev_aws, compile_with, steps):
    sm, s3 = dev_aws
    compiled = compile_with()
    upsert_compiled(sm, s3, compiled, FAKE_ROLE)
    first = executed(sm, s3, steps, compiled, "baseline+10%", 0.91, 1)
    second = executed(sm, s3, steps, compiled, "0.05", 0.93, None)
    return first, second


def test_runs_lists_executions_newest_first_with_gate_and_model(two_runs):
    first, second = two_runs
    code, out = deploy("runs", "--json")
    rows = json.loads(out)
    assert code == 0
    assert [r["execution_id"] for r in rows] == [second.rsplit("/", 1)[-1], first.rsplit("/", 1)[-1]]
    assert [r["gate"]["value"] for r in rows] == [0.93, 0.91]
    assert [r["model_version"] for r in rows] == [None, 1]
    assert all(r["status"] == "Succeeded" for r in rows)
    code, out = deploy("runs")
    assert "purchase-intent" in out and "roc_auc 0.9300 ≥ 0.5500  pass" in out and " v1" in out


def test_compare_shows_parameters_metrics_with_deltas_and_models(two_runs):
    first, second = two_runs
    code, out = deploy("compare", first, second.rsplit("/", 1)[-1], "--json")  # an ARN or an id
    result = json.loads(out)
    assert code == 0
    threshold = next(p for p in result["parameters"] if p["name"] == "QualityThreshold")
    assert (threshold["a"], threshold["b"], threshold["changed"]) == ("baseline+10%", "0.05", True)
    roc = next(m for m in result["metrics"] if m["name"] == "roc_auc")
    assert roc["delta"] == pytest.approx(0.02)
    assert result["models"] == [1, None] and result["code"] == []


def test_logs_come_from_cloudwatch(two_runs):
    first, _ = two_runs
    execution_id = first.rsplit("/", 1)[-1]
    code, out = deploy("logs", first, "Evaluate")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(f"==> /aws/sagemaker/ProcessingJobs pipelines-{execution_id}-Evaluate-abc/algo-1-")
    assert lines[1:] == [f"{execution_id} line {i}" for i in range(3)]


def test_logs_of_an_unknown_step_name_the_steps(two_runs, capsys):
    assert cli.main(["logs", two_runs[0], "Nope", "--definition", EXAMPLE_DEF]) == 1
    assert "has no step 'Nope' (its steps: Evaluate, Register-RegisterModel)" in capsys.readouterr().err


def test_a_selective_start_sends_the_source_and_steps_and_the_source_parameters(two_runs, compile_with):
    first, _ = two_runs
    sm = boto3.client("sagemaker", region_name=REGION)
    sent = []
    sm.meta.events.register("provide-client-params.sagemaker.StartPipelineExecution",
                            lambda params, **kw: sent.append(params))
    from pipelines.commands import Flags, RunOptions, Workspace, run

    ws = Workspace(Flags(definition=EXAMPLE_DEF))
    ws.target.__dict__["sm"] = sm
    run(ws, RunOptions(parameters=["ProcessingInstanceType=ml.m5.xlarge"], source=first, steps=["Evaluate"],
                       wait=False, upsert=False))
    (params,) = sent
    assert params["SelectiveExecutionConfig"] == {"SourcePipelineExecutionArn": first,
                                                  "SelectedSteps": [{"StepName": "Evaluate"}]}
    values = {p["Name"]: p["Value"] for p in params["PipelineParameters"]}
    assert values["QualityThreshold"] == "baseline+10%" and values["ProcessingInstanceType"] == "ml.m5.xlarge"


def test_stop_calls_stop_pipeline_execution(fake_aws):
    sm = boto3.client("sagemaker", region_name=REGION)
    arn = f"arn:aws:sagemaker:{REGION}:123456789012:pipeline/p/execution/abc"
    with Stubber(sm) as stub:
        stub.add_response("stop_pipeline_execution", {"PipelineExecutionArn": arn},
                          {"PipelineExecutionArn": arn, "ClientRequestToken": stub_any()})
        assert cloud.stop(sm, arn) == arn


def stub_any():
    from botocore.stub import ANY

    return ANY


def test_compare_names_the_files_that_changed_inside_a_code_bundle():
    import tarfile

    from pipelines import history, spec

    def bundle(files: dict[str, bytes]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return out.getvalue()

    def definition(sha_train: str, sha_eval: str) -> spec.Definition:
        uri = "s3://b/p/code/{}/{}"
        return spec.read(json.dumps({"Steps": [
            {"Name": "Train", "Type": "Training", "Arguments": {"HyperParameters": {
                "sagemaker_submit_directory": json.dumps(uri.format(sha_train, "sourcedir.tar.gz"))}}},
            {"Name": "Evaluate", "Type": "Processing", "Arguments": {"ProcessingInputs": [
                {"S3Input": {"S3Uri": uri.format(sha_eval, "evaluate.py")}}]}}]}))

    a, b, c = "a" * 64, "b" * 64, "c" * 64
    store = {f"s3://b/p/code/{a}/sourcedir.tar.gz": bundle({"train.py": b"1", "util.py": b"x"}),
             f"s3://b/p/code/{b}/sourcedir.tar.gz": bundle({"train.py": b"2", "new.py": b""})}
    changes = history.code_changes(definition(a, c), definition(b, c), store.get)
    assert changes == [{"step": "Train", "a": ["sourcedir.tar.gz"], "b": ["sourcedir.tar.gz"],
                        "files": ["added new.py", "removed util.py", "changed train.py"]}]
    assert history.code_changes(definition(a, a), definition(a, b), store.get)[0] == {
        "step": "Evaluate", "a": ["evaluate.py"], "b": ["evaluate.py"], "files": None}  # the old bundle is gone
