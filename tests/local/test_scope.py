"""What the runner refuses before anything runs (pipelines.local.scope), on definitions built here."""
from __future__ import annotations

import json

from pipelines.local.expressions import Scope
from pipelines.local.plan import parse_definition, plan
from pipelines.local.scope import refusals
from pipelines.local.steps import IN_PROCESS, JOB_HANDLERS
from pipelines.local.storage import LocalStore

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


def processing(name, reads=(), writes=(), depends_on=()):
    return {"Name": name, "Type": "Processing", "DependsOn": list(depends_on), "Arguments": {
        "AppSpecification": {"ImageUri": IMAGE, "ContainerEntrypoint": ["python3", "run.py"]},
        "ProcessingInputs": [{"InputName": f"in{i}", "S3Input": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/in{i}"}}
                             for i, uri in enumerate(reads)],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": f"out{i}", "S3Output": {
            "S3Uri": uri, "LocalPath": f"/opt/ml/processing/out{i}"}} for i, uri in enumerate(writes)]},
    }}


def problems(tmp_path, *steps):
    definition = parse_definition(json.dumps({"Version": "2020-12-01", "Steps": list(steps)}))
    planned = plan(definition, in_process=IN_PROCESS, job_types=JOB_HANDLERS)
    return refusals(planned, Scope(parameters={}, execution={"PipelineExecutionId": "e1"}), LocalStore(tmp_path))


def test_an_input_an_earlier_step_writes_to_a_fixed_s3_uri_is_not_refused_as_missing(tmp_path):
    # AWS's customer-churn sample: preprocessing writes to s3://bucket/output/train, a later step reads
    # s3://bucket/output/train/train.csv by that literal URI rather than through a property.
    found = problems(tmp_path,
                     processing("Prep", writes=["s3://bkt/output/train"]),
                     processing("Report", reads=["s3://bkt/output/train/train.csv"], depends_on=["Prep"]),
                     processing("Early", reads=["s3://bkt/output/train/train.csv"]),  # runs before Prep could write it
                     processing("Other", reads=["s3://bkt/output/training.csv"], depends_on=["Prep"]))
    uri = "s3://bkt/output/train/train.csv"
    assert found == [f"step Early: {uri} is not in the local store; stage it with --stage {uri}=LOCAL_PATH",
                     "step Other: s3://bkt/output/training.csv is not in the local store; stage it with "
                     "--stage s3://bkt/output/training.csv=LOCAL_PATH"]


def test_outputs_of_steps_before_the_upstream_step_count_too(tmp_path):
    found = problems(tmp_path,
                     processing("Prep", writes=["s3://bkt/prep/"]),
                     processing("Middle", depends_on=["Prep"]),
                     processing("Last", reads=["s3://bkt/prep/part-0.csv"], depends_on=["Middle"]))
    assert found == []


XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3"


def model_from(package_arn):
    return {"Name": "Make-CreateModel", "Type": "Model",
            "Arguments": {"ExecutionRoleArn": "role", "Containers": [{"ModelPackageName": package_arn}]}}


def test_a_model_from_a_package_version_is_checked_against_the_registry_before_anything_runs(tmp_path):
    from pipelines.local.registry import Registry

    registry = Registry(tmp_path / "registry.sqlite")
    arn = registry.register({"ModelPackageGroupName": "abalone", "InferenceSpecification": {"Containers": [
        {"Image": XGBOOST, "ModelDataUrl": "s3://bkt/model.tar.gz"}]}}, execution_id=None)["ModelPackageArn"]
    unsupported = registry.register({"ModelPackageGroupName": "abalone", "InferenceSpecification": {"Containers": [
        {"Image": "1234.dkr.ecr.us-east-1.amazonaws.com/mine:1", "ModelDataUrl": "s3://bkt/m.tar.gz"}]}},
        execution_id=None)["ModelPackageArn"]
    definition = parse_definition(json.dumps({"Version": "2020-12-01", "Steps": [model_from(arn)]}))
    check = lambda d: refusals(plan(d, in_process=IN_PROCESS, job_types=JOB_HANDLERS),  # noqa: E731
                               Scope(parameters={}, execution={"PipelineExecutionId": "e1"}), LocalStore(tmp_path), registry)
    assert check(definition) == []
    missing = arn.replace("/abalone/1", "/abalone/9")
    assert check(parse_definition(json.dumps({"Version": "2020-12-01", "Steps": [model_from(missing)]}))) == [
        f"step Make-CreateModel: no model package abalone/9 in {registry.path}"]
    assert "is not supported locally" in check(parse_definition(json.dumps(
        {"Version": "2020-12-01", "Steps": [model_from(unsupported)]})))[0]
