"""Pipelines written with the plain SageMaker SDK, as AWS's samples write them, run unchanged from the
command line: compiled offline (`pipelines.sdk_pipelines`), staged with --stage, run with --definition-json.
The training step is the built-in XGBoost algorithm (no script), served again by the transform step."""
from __future__ import annotations

import io
import os
import pickle
import tarfile

import pytest

from conftest import SDK_V2_SAMPLES, run_cli, steps_of
from fixtures.aws_samples.data import abalone_rows
from pipelines.local import LocalHome, open_store
from pipelines.sdk_pipelines import offline

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "abalone-samples"


def export(tmp_path, get_pipeline, **kwargs):
    with offline(buckets=[BUCKET]) as sdk:
        return sdk.export(get_pipeline("us-east-1", ROLE, BUCKET, **kwargs), tmp_path / "build")


@pytest.fixture
def abalone_data(tmp_path):
    rows = abalone_rows(300)
    data = tmp_path / "abalone-dataset.csv"
    rows.to_csv(data, header=False, index=False)
    batch = tmp_path / "abalone-dataset-batch.csv"
    rows.drop(columns="rings").head(40).to_csv(batch, header=False, index=False)  # raw, as the sample's batch file
    return data, batch


@SDK_V2_SAMPLES
def test_the_abalone_pipeline_runs_unchanged_with_the_built_in_algorithm(tmp_path, abalone_data):
    from fixtures.aws_samples.abalone.pipeline import get_pipeline

    data, _ = abalone_data
    definition, stage = export(tmp_path, get_pipeline)
    batch_dir = tmp_path / "batch"
    batch_dir.mkdir()
    # Rows as the model reads them: 7 scaled measurements and the one-hot sex, no label, no header.
    (batch_dir / "part-0.csv").write_text("\n".join(",".join(["0.1"] * 7 + ["1", "0", "0"]) for _ in range(5)) + "\n")
    home = tmp_path / "home"
    code, summary = run_cli("run", "--local", "--home", home, "--definition-json", definition, *stage,
                            "--stage", f"s3://{BUCKET}/abalone/abalone-dataset.csv={data}",
                            "--stage", f"s3://{BUCKET}/abalone/abalone-dataset-batch={batch_dir}")
    assert code == 0, summary["failure_reason"]
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert status == {"AbaloneProcess": "Succeeded", "AbaloneTrain": "Succeeded", "AbaloneEval": "Succeeded",
                      "AbaloneMSECond": "Succeeded", "RegisterAbaloneModel-RegisterModel": "Succeeded",
                      "AbaloneCreateModel-CreateModel": "Succeeded", "AbaloneTransform": "Succeeded", "AbaloneMSEFail": "NotRun"}
    record = steps_of(LocalHome(home).execution(summary["execution_id"]))
    train = record["AbaloneTrain"]["response"]
    # The built-in's metric definitions read the per-round lines: no MetricDefinitions in the request.
    assert "MetricDefinitions" not in train["AlgorithmSpecification"]
    metrics = {m["MetricName"]: m["Value"] for m in train["FinalMetricDataList"]}
    assert 0 < metrics["validation:rmse"] < 5
    store = open_store(None, root=home / "s3")
    with tarfile.open(fileobj=io.BytesIO(store.get_bytes(train["ModelArtifacts"]["S3ModelArtifacts"]))) as tar:
        assert tar.getnames() == ["xgboost-model"]
        booster = pickle.loads(tar.extractfile("xgboost-model").read())  # image 1.0-1 pickles the Booster
    assert type(booster).__name__ == "Booster"
    outputs = store.list(record["AbaloneTransform"]["response"]["TransformOutput"]["S3OutputPath"])
    predictions = store.get_bytes(outputs[0]).decode().split()
    assert outputs[0].endswith("part-0.csv.out") and len(predictions) == 5
    assert all(1 < float(p) < 30 for p in predictions)
    log = (home / "runs" / summary["execution_id"] / "logs" / "AbaloneTrain.log").read_text()
    assert "[0]\ttrain-rmse:" in log and "\tvalidation-rmse:" in log


@SDK_V2_SAMPLES
def test_a_missing_input_is_refused_before_anything_runs_and_names_the_stage_flag(tmp_path, capsys):
    from fixtures.aws_samples.abalone.pipeline import get_pipeline
    from pipelines import cli

    definition, stage = export(tmp_path, get_pipeline)
    home = tmp_path / "home"
    code = cli.main(["run", "--local", "--home", str(home), "--definition-json", str(definition), *stage])
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2
    uri = f"s3://{BUCKET}/abalone/abalone-dataset.csv"
    assert f"{uri} is not in the local store; stage it with --stage {uri}=LOCAL_PATH" in error
    assert error.startswith("error: the local runner cannot run this definition: step AbaloneProcess:")
    assert not (home / "runs").exists()  # refused before the execution was even recorded


@SDK_V2_SAMPLES
def test_the_model_build_seed_pipeline_runs_unchanged_and_its_preprocess_downloads_with_boto3(tmp_path, abalone_data):
    from fixtures.aws_samples.seed.pipeline import get_pipeline

    data, _ = abalone_data
    definition, stage = export(tmp_path, get_pipeline)
    home = tmp_path / "home"
    seed_uri = "s3://sagemaker-servicecatalog-seedcode-us-east-1/dataset/abalone-dataset.csv"
    code, summary = run_cli("run", "--local", "--home", home, "--definition-json", definition, *stage,
                            "--stage", f"{seed_uri}={data}")
    assert code == 0, summary["failure_reason"]
    status = {s["name"]: s["status"] for s in summary["steps"]}
    assert status == {"PreprocessAbaloneData": "Succeeded", "TrainAbaloneModel": "Succeeded",
                      "EvaluateAbaloneModel": "Succeeded", "CheckMSEAbaloneEvaluation": "Succeeded",
                      "RegisterAbaloneModel-RegisterModel": "Succeeded"}
    store = open_store(None, root=home / "s3")
    # The object preprocess.py uploaded itself, through the loopback endpoint, is in the store.
    copied = store.get_bytes("s3://sagemaker-servicecatalog-seedcode-us-east-1/abalone/copies/test.csv").decode().splitlines()
    assert len(copied) == 45  # 15% of 300 rows
    log = (home / "runs" / summary["execution_id"] / "logs" / "PreprocessAbaloneData.log").read_text()
    assert "Downloading data from bucket: sagemaker-servicecatalog-seedcode-us-east-1" in log


@pytest.mark.parametrize("args, message", [
    (["--definition-json", "no-such.json"], "error: --definition-json no-such.json: no such file"),
    (["--definition-json", "{json}", "--stage", "bucket/key=x"], "error: --stage 'bucket/key=x': write it as s3://bucket/key=LOCAL_PATH"),
    (["--definition-json", "{json}", "--stage", "s3://b/k=missing.csv"], "error: --stage 's3://b/k=missing.csv': missing.csv does not exist"),
    (["--definition-json", "{json}", "-p", "Threshold"], "error: -p 'Threshold': write parameters as Name=Value"),
    (["--definition-json", "{json}", "-p", "Nope=1"], "error: unknown parameter(s) Nope; the pipeline declares: Threshold"),
])
def test_bad_command_lines_get_one_line_errors_and_run_nothing(tmp_path, capsys, args, message):
    from pipelines import cli

    definition = tmp_path / "p.json"
    definition.write_text('{"Version": "2020-12-01", "Parameters": [{"Name": "Threshold", "Type": "Float", '
                          '"DefaultValue": 0.5}], "Steps": []}')
    args = [a.replace("{json}", str(definition)) for a in args]
    assert cli.main(["run", "--local", "--home", str(tmp_path / "home"), *args]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == message
    assert not (tmp_path / "home" / "runs").exists()


def test_offline_hides_the_callers_aws_settings_and_puts_them_back(monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "host-profile")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAHOSTKEY")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with offline(region="eu-west-1", buckets=["staged"]):
        import boto3
        assert "AWS_PROFILE" not in os.environ and os.environ["AWS_ACCESS_KEY_ID"] != "AKIAHOSTKEY"
        assert os.environ["AWS_DEFAULT_REGION"] == "eu-west-1"
        assert [b["Name"] for b in boto3.client("s3", region_name="eu-west-1").list_buckets()["Buckets"]] == ["staged"]
    assert os.environ["AWS_PROFILE"] == "host-profile" and os.environ["AWS_ACCESS_KEY_ID"] == "AKIAHOSTKEY"
    assert "AWS_DEFAULT_REGION" not in os.environ


def test_offline_sagemaker_has_no_custom_images_and_describes_the_packages_it_is_given():
    # Seed code falls back to AWS's image when DescribeImageVersion raises ResourceNotFound; the SDK's
    # ModelPackage describes the version (in a local registry) before it creates a model from it.
    arn = "arn:aws:sagemaker:us-east-1:000000000000:model-package/abalone/1"
    package = {"ModelPackageArn": arn, "ModelPackageGroupName": "abalone", "ModelPackageVersion": 1,
               "ModelApprovalStatus": "Approved", "CreationTime": "2026-01-01T00:00:00.000+00:00",
               "InferenceSpecification": {"Containers": [{"Image": "xgb", "ModelDataUrl": "s3://b/model.tar.gz"}]}}
    with offline(model_packages=[package]):
        import boto3
        sm = boto3.client("sagemaker", region_name="us-east-1")
        with pytest.raises(sm.exceptions.ResourceNotFound):
            sm.describe_image_version(ImageName="sagemaker-p-123-processingimagebuild")
        described = sm.describe_model_package(ModelPackageName=arn)
        assert described["ModelApprovalStatus"] == "Approved"
        assert described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == "s3://b/model.tar.gz"
        with pytest.raises(sm.exceptions.ClientError):
            sm.describe_model_package(ModelPackageName=arn[:-1] + "2")
