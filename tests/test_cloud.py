"""pipelines.cloud against moto in this process: upsert, start, role checks, diff."""
from __future__ import annotations

import hashlib
import json

import boto3
import pytest
from botocore.stub import Stubber
from conftest import BUCKET, FAKE_ROLE, REGION, upsert_compiled

from pipelines import cloud
from pipelines.cloud import CloudError
from pipelines.compiler import PLACEHOLDER_ROLE



def test_upsert_twice_leaves_one_pipeline_with_the_latest_definition(dev_aws, compile_with):
    sm, s3 = dev_aws
    first, second = compile_with(), compile_with(max_tuning_jobs=7)
    assert first.definition != second.definition
    arn = upsert_compiled(sm, s3, first, FAKE_ROLE)
    assert upsert_compiled(sm, s3, second, FAKE_ROLE) == arn
    assert [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]] == ["purchase-intent"]
    deployed = sm.describe_pipeline(PipelineName="purchase-intent")
    assert deployed["PipelineDefinition"] == second.definition
    assert (deployed["PipelineDisplayName"], deployed["RoleArn"]) == ("Purchase intent", FAKE_ROLE)
    assert deployed["PipelineDescription"].startswith("Predicts the likelihood")
    tags = sm.list_tags(ResourceArn=arn)["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == {"environment": "dev"}


def test_upsert_uploads_the_code_at_its_content_hash_keys_once(dev_aws, compile_with):
    sm, s3 = dev_aws
    compiled = compile_with()
    upsert_compiled(sm, s3, compiled, FAKE_ROLE)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {cloud.split_s3_uri(uri)[1] for uri in compiled.assets}
    for uri, data in compiled.assets.items():
        bucket, key = cloud.split_s3_uri(uri)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == data and hashlib.sha256(body).hexdigest() in key
    assert cloud.upload_assets(s3, compiled.assets) == 0  # already there: nothing to upload again


def test_upload_fails_loudly_when_the_bucket_does_not_exist(moto_aws, compile_with):
    s3 = boto3.client("s3", region_name=REGION)
    with pytest.raises(CloudError, match=rf"could not upload s3://{BUCKET}/.*\(create bucket {BUCKET} or pass --bucket NAME\)"):
        cloud.upload_assets(s3, compile_with().assets)


@pytest.fixture
def no_calls(fake_aws):
    """Clients whose every API call would fail the test, and a record of attempted calls."""
    sm, s3 = boto3.client("sagemaker", region_name=REGION), boto3.client("s3", region_name=REGION)
    calls = []
    for client in (sm, s3):
        client.meta.events.register("before-call", lambda event_name, **kw: calls.append(event_name))
    with Stubber(sm), Stubber(s3):  # no responses queued: any call raises
        yield sm, s3, calls


@pytest.mark.parametrize("role, message", [
    (None, "upsert needs the pipeline's execution role: pass --role-arn"),
    ("", "upsert needs the pipeline's execution role"),
    (PLACEHOLDER_ROLE, "upsert needs the pipeline's execution role"),
    ("arn:aws:iam::123456789012:user/alice", "is not an IAM role ARN: expected arn:aws:iam::<12-digit account>:role/<name>"),
    ("arn:aws:sagemaker:us-east-1:123456789012:role/x", "is not an IAM role ARN"),
    ("arn:aws:iam::1234:role/short-account", "is not an IAM role ARN"),
    ("MySageMakerRole", "is not an IAM role ARN"),
])
def test_upsert_refuses_a_bad_role_before_any_call(no_calls, compile_with, role, message):
    sm, s3, calls = no_calls
    with pytest.raises(CloudError, match=message):
        upsert_compiled(sm, s3, compile_with(), role)
    assert calls == []


@pytest.mark.parametrize("role", [FAKE_ROLE, "arn:aws-cn:iam::123456789012:role/path/to/Role+x=y,z.w@v-1"])
def test_good_role_arns_pass(role):
    assert cloud.check_role(role) == role


def test_start_passes_the_overrides_to_the_execution(dev_aws, compile_with):
    sm, s3 = dev_aws
    compiled = compile_with()
    upsert_compiled(sm, s3, compiled, FAKE_ROLE)
    arn = cloud.start(sm, compiled.name, {"MaxTuningJobs": 3, "QualityThreshold": 0.5, "ModelApprovalStatus": "Approved"})
    params = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert {p["Name"]: p["Value"] for p in params} == {
        "MaxTuningJobs": "3", "QualityThreshold": "0.5", "ModelApprovalStatus": "Approved"}
    executions = sm.list_pipeline_executions(PipelineName="purchase-intent")["PipelineExecutionSummaries"]
    assert [e["PipelineExecutionArn"] for e in executions] == [arn]


def test_start_before_upsert_says_to_upsert(dev_aws, compile_with):
    sm, _ = dev_aws
    with pytest.raises(CloudError, match=r"could not start purchase-intent: .*run `python deploy.py upsert`"):
        cloud.start(sm, compile_with().name, {})


def test_wait_returns_the_finished_execution(dev_aws, compile_with):
    sm, s3 = dev_aws
    compiled = compile_with()
    upsert_compiled(sm, s3, compiled, FAKE_ROLE)
    arn = cloud.start(sm, compiled.name, {})
    execution = cloud.wait(sm, arn, timeout=5, poll=0.1)
    assert execution["PipelineExecutionStatus"] == "Succeeded"  # moto finishes executions at once


def test_deployed_is_none_before_upsert(dev_aws):
    assert cloud.deployed(dev_aws[0], "purchase-intent") is None


def test_diff_is_empty_for_the_same_definition(compile_with):
    assert cloud.diff(compile_with().definition, compile_with().definition) == []


def test_diff_names_changed_steps_and_parameters(compile_with):
    lines = cloud.diff(compile_with().definition, compile_with(label="Bought").definition)
    changed = [line for line in lines if line.startswith(("added", "removed", "changed"))]
    assert changed == ["changed: step Evaluate", "changed: step Preprocess", "changed: step Register-RegisterModel",
                       "changed: step Tune"]
    removed = [line for line in lines if line.startswith("-") and not line.startswith("---")]
    added = [line for line in lines if line.startswith("+") and not line.startswith("+++")]
    assert removed and all("revenue" in line.lower() for line in removed)  # the label, and the model group it names
    assert len(added) == len(removed) and all("bought" in line.lower() for line in added)


def test_diff_sees_a_changed_parameter_default_and_branch_steps(compile_with):
    lines = cloud.diff(compile_with().definition, compile_with(max_tuning_jobs=9).definition)
    assert [line for line in lines if line.startswith("changed")] == ["changed: parameter MaxTuningJobs"]
    old = json.loads(compile_with().definition)
    new = json.loads(compile_with().definition)
    new["Steps"][3]["Arguments"]["ElseSteps"][0]["Arguments"]["ErrorMessage"] = "too weak"
    assert [line for line in cloud.diff(json.dumps(old), json.dumps(new)) if line.startswith("changed")] == \
        ["changed: step Fail"]


def test_diff_against_nothing_deployed_lists_every_step_as_added(compile_with):
    lines = cloud.diff(None, compile_with(tuning=False).definition)
    assert "added: step Train" in lines and "added: step Fail" in lines
    assert not [line for line in lines if line.startswith(("removed", "changed"))]


def test_diff_between_tuning_and_training(compile_with):
    lines = cloud.diff(compile_with().definition, compile_with(tuning=False).definition)
    assert "removed: step Tune" in lines and "added: step Train" in lines


@pytest.mark.parametrize("uri", ["bucket/key", "s3://bucket", "s3:/bucket/key"])
def test_split_s3_uri_refuses_what_is_not_an_s3_object(uri):
    with pytest.raises(CloudError, match="is not an s3://bucket/key URI"):
        cloud.split_s3_uri(uri)
