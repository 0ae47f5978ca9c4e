"""The local model registry: versions per group, approval status, metrics, and two writers at once."""
from __future__ import annotations

import json
import multiprocessing

import pytest

from pipelines.local.registry import Registry
from pipelines.local.storage import LocalStore

METRICS_URI = "s3://bkt/run/evaluation/evaluation.json"


def request(group: str = "purchase-intent", **extra) -> dict:
    return {
        "ModelPackageGroupName": group,
        "InferenceSpecification": {"Containers": [{"Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz"}]},
        "ModelMetrics": {
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": METRICS_URI}},
            "Bias": {},
        },
        **extra,
    }


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "registry.sqlite")


def test_versions_count_up_per_group(registry):
    first = registry.register(request(), execution_id="e1")
    second = registry.register(request(), execution_id="e2")
    other = registry.register(request("churn"), execution_id="e3")
    assert [first["ModelPackageVersion"], second["ModelPackageVersion"], other["ModelPackageVersion"]] == [1, 2, 1]
    assert second["ModelPackageArn"] == "arn:aws:sagemaker:us-east-1:000000000000:model-package/purchase-intent/2"
    assert second["PipelineExecutionId"] == "e2"
    assert second["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == "s3://bkt/model.tar.gz"


def test_region_and_account_shape_the_arn(tmp_path):
    registry = Registry(tmp_path / "r.sqlite", region="eu-west-1", account="123456789012")
    arn = registry.register(request(), execution_id=None)["ModelPackageArn"]
    assert arn == "arn:aws:sagemaker:eu-west-1:123456789012:model-package/purchase-intent/1"


def test_approval_status_defaults_to_pending_and_is_checked(registry):
    assert registry.register(request(), execution_id="e1")["ModelApprovalStatus"] == "PendingManualApproval"
    assert registry.register(request(ModelApprovalStatus="Approved"), execution_id="e1")["ModelApprovalStatus"] == "Approved"
    with pytest.raises(ValueError, match="must be one of PendingManualApproval, Approved, Rejected"):
        registry.register(request(ModelApprovalStatus="Maybe"), execution_id="e1")
    assert len(registry.list_versions("purchase-intent")) == 2


def test_a_group_name_is_required(registry):
    with pytest.raises(ValueError, match="ModelPackageGroupName"):
        registry.register({"InferenceSpecification": {}}, execution_id="e1")


def test_metrics_content_is_kept_when_the_store_can_read_it(registry, tmp_path):
    store = LocalStore(tmp_path / "s3")
    store.put_bytes(METRICS_URI, json.dumps({"auc": {"value": 0.93}}).encode())
    kept = registry.register(request(), execution_id="e1", store=store)
    assert kept["Metrics"] == {"ModelQuality.Statistics": {"auc": {"value": 0.93}}}
    assert kept["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"] == METRICS_URI


def test_unreachable_metrics_leave_only_the_uri(registry, tmp_path):
    kept = registry.register(request(), execution_id="e1", store=LocalStore(tmp_path / "empty"))
    assert kept["Metrics"] == {}


def test_listing_and_lookup(registry):
    registry.register(request(), execution_id="e1")
    registry.register(request(ModelApprovalStatus="Approved"), execution_id="e2")
    registry.register(request(), execution_id="e3")
    registry.register(request("churn"), execution_id="e4")
    assert [(g["ModelPackageGroupName"], g["Versions"]) for g in registry.list_groups()] == [
        ("churn", 1), ("purchase-intent", 3)
    ]
    assert [v["ModelPackageVersion"] for v in registry.list_versions("purchase-intent")] == [1, 2, 3]
    assert registry.get("purchase-intent", 2)["PipelineExecutionId"] == "e2"
    assert registry.latest("purchase-intent")["ModelPackageVersion"] == 3
    assert registry.latest("purchase-intent", status="Approved")["ModelPackageVersion"] == 2
    assert registry.latest("purchase-intent", status="Rejected") is None
    assert registry.latest("nothing") is None
    assert registry.list_versions("nothing") == []


def test_set_status(registry):
    registry.register(request(), execution_id="e1")
    approved = registry.set_status("purchase-intent", 1, "Approved")
    assert approved["ModelApprovalStatus"] == "Approved"
    assert registry.latest("purchase-intent", status="Approved")["ModelPackageVersion"] == 1
    with pytest.raises(ValueError, match="must be one of"):
        registry.set_status("purchase-intent", 1, "approved")
    with pytest.raises(LookupError, match="no model package purchase-intent/9"):
        registry.set_status("purchase-intent", 9, "Rejected")
    with pytest.raises(LookupError, match="no model package"):
        registry.get("purchase-intent", 9)


def _register_many(path: str, count: int) -> None:
    registry = Registry(path)
    for _ in range(count):
        registry.register(request(), execution_id="parallel")


def test_two_processes_registering_at_once_get_distinct_versions(tmp_path):
    path = str(tmp_path / "registry.sqlite")
    Registry(path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_register_many, args=(path, 10)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [w.exitcode for w in workers] == [0, 0]
    assert [v["ModelPackageVersion"] for v in Registry(path).list_versions("purchase-intent")] == list(range(1, 21))


def test_a_container_naming_a_version_gets_its_image_model_data_and_environment(registry):
    arn = registry.register(request(InferenceSpecification={"Containers": [{
        "Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz", "Environment": {"A": "1", "B": "2"}}]}),
        execution_id="e1")["ModelPackageArn"]
    model = {"ExecutionRoleArn": "role", "Containers": [{"ModelPackageName": arn, "Environment": {"B": "mine"}}]}
    assert registry.model_containers(model) == {"ExecutionRoleArn": "role", "Containers": [{
        "ModelPackageName": arn, "Image": "xgb", "ModelDataUrl": "s3://bkt/model.tar.gz",
        "Environment": {"A": "1", "B": "mine"}}]}
    plain = {"PrimaryContainer": {"Image": "own", "ModelDataUrl": "s3://bkt/own.tar.gz"}}
    assert registry.model_containers(plain) == plain
    with pytest.raises(LookupError, match="no model package purchase-intent/2"):
        registry.model_containers({"Containers": [{"ModelPackageName": arn[:-1] + "2"}]})
    with pytest.raises(LookupError, match="is not a model package version's ARN"):
        registry.model_containers({"PrimaryContainer": {"ModelPackageName": "purchase-intent"}})
