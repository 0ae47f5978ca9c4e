"""From a registered model to predictions in SageMaker (moto in this process): models, approve,
reject, deploy-endpoint and batch-transform through deploy.py's command line."""
from __future__ import annotations

import io
import json

import botocore.client
import pytest
from conftest import BUCKET, EXAMPLE_DEF, FAKE_ROLE

from pipelines import cli, endpoints
from pipelines.cloud import CloudError

GROUP = "purchase-intent-revenue-binary"  # the model group the pipeline registers into
ENDPOINT = "purchase-intent-revenue-binary-dev"  # the default endpoint name: <model package group>-<env>
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"


@pytest.fixture
def aws(dev_aws):
    """The dev bucket, and a model package group with two pending versions (each with an evaluation report)."""
    sm, s3 = dev_aws
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    arns = []
    for version, auc in ((1, 0.91), (2, 0.93)):
        report = f"purchase-intent/runs/exec{version}/Evaluate/evaluation/evaluation.json"
        s3.put_object(Bucket=BUCKET, Key=report,
                      Body=json.dumps({"binary_classification_metrics": {"roc_auc": {"value": auc}}}))
        arns.append(sm.create_model_package(
            ModelPackageGroupName=GROUP, ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{BUCKET}/models/{version}/model.tar.gz",
                                "Environment": {"SAGEMAKER_PROGRAM": "inference.py",
                                                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}}],
                "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"]},
            ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json",
                                                          "S3Uri": f"s3://{BUCKET}/{report}"}}},
        )["ModelPackageArn"])
    return sm, s3, arns


@pytest.fixture
def moto_update_endpoint(monkeypatch):
    """moto 5 has no UpdateEndpoint: emulate it (the endpoint moves to the named, existing config)."""
    from moto.core.responses import ActionResult
    from moto.sagemaker.responses import SageMakerResponse

    calls = []

    def update_endpoint(self):
        name, config = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        self.sagemaker_backend.describe_endpoint_config(config)  # a missing config is refused, as by SageMaker
        endpoint = self.sagemaker_backend.endpoints[name]
        endpoint.endpoint_config_name = config
        calls.append((name, config))
        return ActionResult({"EndpointArn": endpoint.arn})

    monkeypatch.setattr(SageMakerResponse, "update_endpoint", update_endpoint, raising=False)
    return calls


def status(sm, arn):
    return sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"]


def test_models_lists_versions_with_status_and_key_metrics(aws, capsys):
    assert cli.main(["models", "--definition", EXAMPLE_DEF]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == GROUP
    assert out[1].startswith("  v1   PendingManualApproval") and "roc_auc=0.9100" in out[1]
    assert out[2].startswith("  v2   PendingManualApproval") and "roc_auc=0.9300" in out[2]


def test_approve_latest_and_reject_a_version(aws, capsys):
    sm, _, (v1, v2) = aws
    assert cli.main(["approve", "--definition", EXAMPLE_DEF, "latest", "--description", "looks good"]) == 0
    assert capsys.readouterr().out.strip() == f"{v2}: Approved"
    assert (status(sm, v1), status(sm, v2)) == ("PendingManualApproval", "Approved")
    assert sm.describe_model_package(ModelPackageName=v2)["ApprovalDescription"] == "looks good"
    assert cli.main(["reject", "--definition", EXAMPLE_DEF, "1"]) == 0
    assert cli.main(["approve", "--definition", EXAMPLE_DEF, v1]) == 0  # by ARN
    assert cli.main(["reject", "--definition", EXAMPLE_DEF, "v2"]) == 0  # as `models` prints it
    assert (status(sm, v1), status(sm, v2)) == ("Approved", "Rejected")


@pytest.mark.parametrize("ref, message", [
    ("7", "has no version 7"),
    ("newest", "'newest' names no model package: give a version number (3), latest, latest-approved or a model "
               "package ARN"),
])
def test_approve_refuses_what_names_no_version(aws, capsys, ref, message):
    assert cli.main(["approve", "--definition", EXAMPLE_DEF, ref]) == 1
    assert message in capsys.readouterr().err


def test_deploy_endpoint_creates_then_updates_to_a_new_config(aws, moto_update_endpoint, capsys):
    sm, _, (v1, v2) = aws
    sm.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Approved")
    assert cli.main(["deploy-endpoint", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--wait"]) == 0
    first = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert capsys.readouterr().out.startswith(f"created endpoint {ENDPOINT}: config {first['EndpointConfigName']} "
                                              f"serves {v1}")
    config = sm.describe_endpoint_config(EndpointConfigName=first["EndpointConfigName"])
    (variant,) = config["ProductionVariants"]
    assert (variant["InstanceType"], variant["InitialInstanceCount"]) == ("ml.m5.large", 1)  # config.toml's default
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["Containers"] == [{"ModelPackageName": v1}] and model["ExecutionRoleArn"] == FAKE_ROLE
    assert moto_update_endpoint == []

    sm.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Approved")
    assert cli.main(["deploy-endpoint", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--instance-type", "ml.c5.xlarge"]) == 0
    second = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert capsys.readouterr().out.startswith(f"updated endpoint {ENDPOINT}: config {second['EndpointConfigName']}")
    assert moto_update_endpoint == [(ENDPOINT, second["EndpointConfigName"])]
    configs = {c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]}
    assert configs == {first["EndpointConfigName"], second["EndpointConfigName"]}  # the old one stays, for rollback
    (variant,) = sm.describe_endpoint_config(EndpointConfigName=second["EndpointConfigName"])["ProductionVariants"]
    assert variant["InstanceType"] == "ml.c5.xlarge"
    assert sm.describe_model(ModelName=variant["ModelName"])["Containers"] == [{"ModelPackageName": v2}]
    assert [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]] == [ENDPOINT]


def test_deploy_refuses_unapproved_versions_and_a_missing_role(aws, capsys):
    sm, _, (v1, _) = aws
    assert cli.main(["deploy-endpoint", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE]) == 1
    assert "has no approved version yet: approve one with `python deploy.py approve VERSION`" in capsys.readouterr().err
    assert cli.main(["deploy-endpoint", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--model-package", "1"]) == 1
    assert f"{v1} is PendingManualApproval, not Approved: approve it first" in capsys.readouterr().err
    sm.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Approved")
    assert cli.main(["deploy-endpoint", "--definition", EXAMPLE_DEF]) == 1
    assert "SageMaker needs an execution role for the model: pass --role-arn" in capsys.readouterr().err
    assert sm.list_endpoints()["Endpoints"] == [] and sm.list_models()["Models"] == []


def test_batch_transform_creates_a_job_over_the_input_with_a_model_of_the_package(aws, capsys):
    sm, _, (v1, _) = aws
    sm.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Approved")
    source = f"s3://{BUCKET}/scoring/sessions.csv"
    assert cli.main(["batch-transform", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--input", source, "--wait"]) == 0
    output = capsys.readouterr().out.strip()
    (summary,) = sm.list_transform_jobs()["TransformJobSummaries"]
    job = sm.describe_transform_job(TransformJobName=summary["TransformJobName"])
    assert output == job["TransformOutput"]["S3OutputPath"] == \
        f"s3://{BUCKET}/ml-pipelines/transform/{job['TransformJobName']}"
    assert job["TransformJobName"].startswith(f"{GROUP}-v1-")
    assert job["TransformInput"] == {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": source}},
                                     "ContentType": "text/csv", "SplitType": "None"}
    assert (job["TransformOutput"]["Accept"], job["TransformOutput"]["AssembleWith"]) == ("text/csv", "Line")
    assert job["TransformResources"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1}
    assert sm.describe_model(ModelName=job["ModelName"])["Containers"] == [{"ModelPackageName": v1}]


def test_batch_transform_uploads_a_local_file_by_content(aws, tmp_path, capsys):
    sm, s3, (v1, _) = aws
    sm.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Approved")
    rows = tmp_path / "rows.csv"
    rows.write_text("Administrative,Revenue\n1,FALSE\n")
    assert cli.main(["batch-transform", "--definition", EXAMPLE_DEF, "--role-arn", FAKE_ROLE, "--input", str(rows), "--output",
                     f"s3://{BUCKET}/scores"]) == 0
    assert capsys.readouterr().out.strip() == f"s3://{BUCKET}/scores"
    (summary,) = sm.list_transform_jobs()["TransformJobSummaries"]
    uri = sm.describe_transform_job(TransformJobName=summary["TransformJobName"])[
        "TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, key = uri[5:].split("/", 1)
    assert key.startswith("ml-pipelines/scoring/") and key.endswith("/rows.csv")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == rows.read_bytes()


@pytest.mark.parametrize("ref, expected", [
    ("3", 3), ("v12", 12), ("latest", "latest"), ("latest-approved", "latest-approved"),
    ("arn:aws:sagemaker:eu-west-1:123456789012:model-package/purchase-intent/4",
     "arn:aws:sagemaker:eu-west-1:123456789012:model-package/purchase-intent/4"),
])
def test_references_to_a_model_package(ref, expected):
    assert endpoints.parse_reference(ref) == expected


@pytest.mark.parametrize("ref", ["0", "-1", "v", "arn:aws:sagemaker:eu-west-1:1:model-package/x/1", ""])
def test_bad_references_are_refused(ref):
    with pytest.raises(CloudError, match="names no model package"):
        endpoints.parse_reference(ref)


def test_predict_sends_the_rows_to_the_endpoint_and_prints_its_answer(moto_aws, monkeypatch, capsys):
    import requests  # moto's own dependency; its API queues what InvokeEndpoint answers

    requests.post("http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
                  json={"results": [{"Body": "0.25\n0.75\n", "ContentType": "text/csv"}]}).raise_for_status()
    calls = []
    real = botocore.client.BaseClient._make_api_call

    def spy(client, operation, params):
        calls.append((operation, params))
        return real(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    rows = b"Administrative,Month\n1,Feb\n2,Mar\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(rows)))
    assert cli.main(["predict", "--endpoint", ENDPOINT]) == 0
    assert capsys.readouterr().out == "0.25\n0.75\n"
    assert calls == [("InvokeEndpoint", {"EndpointName": ENDPOINT, "Body": rows, "ContentType": "text/csv",
                                         "Accept": "text/csv"})]


def test_predict_refuses_a_payload_above_6_mb_before_calling(moto_aws, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"1,2\n" * (2 * 1024 * 1024))))
    assert cli.main(["predict", "--endpoint", ENDPOINT]) == 1
    assert "a real-time endpoint takes at most 6 MB" in capsys.readouterr().err
