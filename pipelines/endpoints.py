"""From a registered model to predictions in SageMaker: approve, deploy, invoke, batch transform (boto3).

    approve / reject      UpdateModelPackage(ModelApprovalStatus=...)
    deploy-endpoint       CreateModel(Containers=[{ModelPackageName}]) + CreateEndpointConfig
                          + CreateEndpoint, or UpdateEndpoint to the NEW config when the endpoint exists
    predict               sagemaker-runtime InvokeEndpoint
    batch-transform       CreateModel from the package + CreateTransformJob

A model package is named by a reference: its ARN, its version number in the
group, ``latest`` or ``latest-approved`` (`pipelines.packages`). Only Approved
versions are deployed or used for batch transform; ``approve`` first. The local
twins of these operations are in `pipelines.local.endpoint`; both share the
transform request of `pipelines.scoring`.
"""
from __future__ import annotations

import json

from botocore.exceptions import ClientError, WaiterError

from pipelines import packages
from pipelines.cloud import CloudError, check_role, split_s3_uri, tag_list
from pipelines.packages import APPROVED, LATEST, LATEST_APPROVED, stamp, unique_name
from pipelines.scoring import MAX_PAYLOAD_MB, transform_request

VARIANT = "AllTraffic"


# --- naming model packages --------------------------------------------------------------------


def parse_reference(ref: str) -> str | int:
    """`packages.parse_reference`, refusing with a CloudError."""
    try:
        return packages.parse_reference(ref)
    except ValueError as e:
        raise CloudError(str(e)) from None


def resolve_package(sm, group: str, ref: str) -> dict:
    """DescribeModelPackage of the version `ref` names in `group`."""
    ref = parse_reference(ref)
    if isinstance(ref, str) and ref.startswith("arn:"):
        return _describe(sm, ref)
    if ref in (LATEST, LATEST_APPROVED):
        extra = {"ModelApprovalStatus": APPROVED} if ref == LATEST_APPROVED else {}
        summaries = _call(sm.list_model_packages, ModelPackageGroupName=group, SortBy="CreationTime",
                          SortOrder="Descending", MaxResults=1, **extra)["ModelPackageSummaryList"]
        if not summaries:
            what = "approved version" if extra else "version"
            raise CloudError(f"model package group {group!r} has no {what} yet"
                             + (": approve one with `python deploy.py approve VERSION`" if extra else ""))
        return _describe(sm, summaries[0]["ModelPackageArn"])
    for summary in _versions(sm, group):
        if summary.get("ModelPackageVersion") == ref:
            return _describe(sm, summary["ModelPackageArn"])
    raise CloudError(f"model package group {group!r} has no version {ref} (list them with `python deploy.py models`)")


def set_approval(sm, group: str, ref: str, status: str, description: str | None = None) -> dict:
    """Approve or reject a version; returns it as described afterwards."""
    package = resolve_package(sm, group, ref)
    fields = {"ApprovalDescription": description} if description else {}
    _call(sm.update_model_package, ModelPackageArn=package["ModelPackageArn"], ModelApprovalStatus=status, **fields)
    return _describe(sm, package["ModelPackageArn"])


def approved_package(sm, group: str, ref: str) -> dict:
    """The version `ref` names, refused unless it is Approved (what deploy and batch transform use)."""
    package = resolve_package(sm, group, ref)
    if package.get("ModelApprovalStatus") != APPROVED:
        raise CloudError(f"{package['ModelPackageArn']} is {package.get('ModelApprovalStatus')}, not Approved: "
                         f"approve it first (`python deploy.py approve {package.get('ModelPackageVersion')}`)")
    return package


# --- listing ----------------------------------------------------------------------------------


def list_models(sm, s3=None, *, last: int = 10, names: list[str] | None = None) -> list[dict]:
    """Every model package group (or those of `names` that exist) with its newest `last` versions
    (oldest first), each with the scalar metrics of its model-quality report when `s3` can read it."""
    groups = [g for page in sm.get_paginator("list_model_package_groups").paginate()
              for g in page["ModelPackageGroupSummaryList"]
              if names is None or g["ModelPackageGroupName"] in names]
    out = []
    for group in sorted(groups, key=lambda g: g["ModelPackageGroupName"]):
        name = group["ModelPackageGroupName"]
        newest = _call(sm.list_model_packages, ModelPackageGroupName=name, SortBy="CreationTime",
                       SortOrder="Descending", MaxResults=max(1, min(last, 100)))["ModelPackageSummaryList"]
        versions = []
        for summary in reversed(newest):
            package = _describe(sm, summary["ModelPackageArn"])
            versions.append({**package, "Metrics": _metrics(s3, package)})
        out.append({"ModelPackageGroupName": name, "Versions": versions})
    return out


def latest_package(sm) -> dict | None:
    """The newest versioned model package of any group (what commands act on when nothing names one)."""
    found = _call(sm.list_model_packages, ModelPackageType="Versioned", SortBy="CreationTime",
                  SortOrder="Descending", MaxResults=1)["ModelPackageSummaryList"]
    return found[0] if found else None


def _metrics(s3, package: dict) -> dict:
    uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    if not uri or s3 is None:
        return {}
    try:
        bucket, key = split_s3_uri(uri)
        return {"ModelQuality.Statistics": json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())}
    except (ClientError, CloudError, ValueError):
        return {}  # a listing shows what it can; the report URI stays in the package


# --- endpoints --------------------------------------------------------------------------------


def deploy_endpoint(sm, package: dict, *, endpoint_name: str, role_arn: str | None, instance_type: str,
                    instance_count: int = 1, tags: dict[str, str] | None = None) -> dict:
    """Create the endpoint serving `package`, or move the existing one to a NEW endpoint config.

    A new model and endpoint config are created every time (SageMaker never changes a config in
    place), so the previous config stays available for a rollback with UpdateEndpoint.
    """
    role_arn = check_role(role_arn, "SageMaker needs an execution role for the model")
    existing = describe_endpoint(sm, endpoint_name)
    if existing and existing["EndpointStatus"] not in ("InService", "Failed"):
        raise CloudError(f"endpoint {endpoint_name} is {existing['EndpointStatus']}: wait until it is InService, "
                         f"then deploy again")
    if existing and existing["EndpointStatus"] == "Failed":
        raise CloudError(f"endpoint {endpoint_name} is Failed ({existing.get('FailureReason', 'no reason given')}); "
                         f"delete it (aws sagemaker delete-endpoint --endpoint-name {endpoint_name}) and deploy again")
    suffix = stamp()
    aws_tags = tag_list(tags)
    version = f"v{package.get('ModelPackageVersion', 0)}"
    model_name = create_model(sm, package, name=unique_name(endpoint_name, f"{version}-{suffix}"), role_arn=role_arn,
                              tags=aws_tags)
    config_name = unique_name(endpoint_name, suffix)
    _call(sm.create_endpoint_config, EndpointConfigName=config_name, Tags=aws_tags, ProductionVariants=[{
        "VariantName": VARIANT, "ModelName": model_name, "InitialInstanceCount": instance_count,
        "InstanceType": instance_type, "InitialVariantWeight": 1.0}])
    if existing:
        _call(sm.update_endpoint, EndpointName=endpoint_name, EndpointConfigName=config_name)
    else:
        _call(sm.create_endpoint, EndpointName=endpoint_name, EndpointConfigName=config_name, Tags=aws_tags)
    return {"Action": "updated" if existing else "created", "EndpointName": endpoint_name,
            "EndpointConfigName": config_name, "ModelName": model_name,
            "PreviousEndpointConfigName": existing and existing.get("EndpointConfigName"),
            "ModelPackageArn": package["ModelPackageArn"]}


def describe_endpoint(sm, name: str) -> dict | None:
    try:
        return sm.describe_endpoint(EndpointName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound") and "not find" in str(e):
            return None
        raise CloudError(f"could not describe endpoint {name}: {e.response['Error']['Message']}") from None


def wait_in_service(sm, name: str, *, timeout: float = 3600, poll: float = 30) -> dict:
    waiter = sm.get_waiter("endpoint_in_service")
    try:
        waiter.wait(EndpointName=name, WaiterConfig={"Delay": poll, "MaxAttempts": max(1, int(timeout // poll))})
    except WaiterError as e:  # failed, or still not in service
        raise CloudError(f"endpoint {name} did not come into service: {e}") from None
    return sm.describe_endpoint(EndpointName=name)


def create_model(sm, package: dict, *, name: str, role_arn: str, tags: list | None = None) -> str:
    """A SageMaker model serving the model package (its image, artifact and environment)."""
    _call(sm.create_model, ModelName=name, ExecutionRoleArn=role_arn,
          Containers=[{"ModelPackageName": package["ModelPackageArn"]}], **({"Tags": tags} if tags else {}))
    return name


def invoke(runtime, endpoint_name: str, body: bytes, *, content_type: str = "text/csv",
           accept: str = "text/csv") -> bytes:
    """One real-time request (sagemaker-runtime InvokeEndpoint); the response body."""
    _check_payload(len(body))
    try:
        response = runtime.invoke_endpoint(EndpointName=endpoint_name, Body=body, ContentType=content_type,
                                           Accept=accept)
    except ClientError as e:
        raise CloudError(f"endpoint {endpoint_name}: {e.response['Error'].get('Message') or e}") from None
    return response["Body"].read()


# --- batch transform --------------------------------------------------------------------------


def batch_transform(sm, package: dict, *, input_uri: str, output_uri: str | None, output_root: str,
                    role_arn: str | None, instance_type: str, instance_count: int = 1,
                    tags: dict[str, str] | None = None) -> dict:
    """Create a model from `package` and a transform job scoring `input_uri` (a file or a prefix).

    Output lands in `output_uri`, by default `<output_root>/<job name>`, one `<input name>.out`
    per input object. Returns the job's request.
    """
    role_arn = check_role(role_arn, "SageMaker needs an execution role for the model")
    if not input_uri.startswith("s3://"):
        raise CloudError(f"--input {input_uri!r}: batch transform reads from S3; give an s3:// URI or a local file")
    stem = f"{package.get('ModelPackageGroupName', 'model')}-v{package.get('ModelPackageVersion', 0)}"
    job_name = unique_name(stem, stamp())
    aws_tags = tag_list(tags)
    model_name = create_model(sm, package, name=job_name, role_arn=role_arn, tags=aws_tags)
    request = transform_request(job_name, model_name, input_uri, output_uri or f"{output_root.rstrip('/')}/{job_name}",
                                instance_type=instance_type, instance_count=instance_count)
    _call(sm.create_transform_job, **request, **({"Tags": aws_tags} if aws_tags else {}))
    return request


def wait_transform(sm, job_name: str, *, timeout: float = 6 * 3600, poll: float = 30) -> dict:
    waiter = sm.get_waiter("transform_job_completed_or_stopped")
    try:
        waiter.wait(TransformJobName=job_name,
                    WaiterConfig={"Delay": poll, "MaxAttempts": max(1, int(timeout // poll))})
    except WaiterError as e:
        raise CloudError(f"transform job {job_name} did not complete: {e}") from None
    job = sm.describe_transform_job(TransformJobName=job_name)
    if job["TransformJobStatus"] != "Completed":
        raise CloudError(f"transform job {job_name} {job['TransformJobStatus']}: {job.get('FailureReason', '')}")
    return job


# --- helpers ----------------------------------------------------------------------------------


def _versions(sm, group: str):
    for page in sm.get_paginator("list_model_packages").paginate(ModelPackageGroupName=group):
        yield from page["ModelPackageSummaryList"]


def _describe(sm, arn: str) -> dict:
    return _call(sm.describe_model_package, ModelPackageName=arn)


def _call(operation, **kwargs) -> dict:
    """A SageMaker call whose refusal becomes a CloudError naming the operation."""
    try:
        return operation(**kwargs)
    except ClientError as e:
        raise CloudError(f"{e.operation_name}: {e.response['Error'].get('Message') or e}") from None


def _check_payload(size: int) -> None:
    if size > MAX_PAYLOAD_MB * 1024 * 1024:
        raise CloudError(f"the request is {size} bytes; a real-time endpoint takes at most {MAX_PAYLOAD_MB} MB: "
                         f"split the rows, or score the file with `python deploy.py batch-transform`")
