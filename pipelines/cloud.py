"""The compiled pipeline in SageMaker: upload code, upsert, start, wait, diff.

Clients come from boto3's own resolution, so AWS_PROFILE, AWS_REGION and
AWS_ENDPOINT_URL (moto, LocalStack) work without anything of ours.
"""
from __future__ import annotations

import difflib
import json
import re
import time
import uuid
from typing import Callable

from botocore.exceptions import ClientError

from pipelines import spec
from pipelines.compiler import PLACEHOLDER_ROLE

ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
TERMINAL = ("Succeeded", "Failed", "Stopped")


class CloudError(RuntimeError):
    """Something SageMaker would refuse or did refuse; the message says what to do."""


def check_role(role_arn: str | None, needed_for: str = "upsert needs the pipeline's execution role") -> str:
    """The role ARN, or a CloudError before any call: SageMaker would only refuse it later."""
    if not role_arn or role_arn == PLACEHOLDER_ROLE:
        raise CloudError(f"{needed_for}: pass --role-arn arn:aws:iam::ACCOUNT:role/NAME "
                         "or set role_arn in ml-pipelines.toml")
    if not ROLE_ARN.match(role_arn):
        raise CloudError(f"{role_arn!r} is not an IAM role ARN: expected arn:aws:iam::<12-digit account>:role/<name>")
    return role_arn


def upload_assets(s3, assets: dict[str, bytes]) -> int:
    """Upload code bundles not yet in S3; content-addressed keys make existing ones current. Returns uploads."""
    uploaded = 0
    for uri, data in assets.items():
        bucket, key = split_s3_uri(uri)
        try:
            if not _exists(s3, bucket, key):
                s3.put_object(Bucket=bucket, Key=key, Body=data)
                uploaded += 1
        except ClientError as e:
            raise CloudError(f"could not upload {uri}: {e.response['Error']['Message']} "
                             f"(create bucket {bucket} or pass --bucket NAME)") from None
    return uploaded


def exists(s3, uri: str) -> bool:
    """Whether an object is at `uri`."""
    bucket, key = split_s3_uri(uri)
    try:
        return _exists(s3, bucket, key)
    except ClientError as e:
        raise CloudError(f"could not read {uri}: {e.response['Error']['Message']}") from None


def _exists(s3, bucket: str, key: str) -> bool:
    """A 404 means "upload it"; S3 also answers 404 for a missing bucket, which put_object then names."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def upsert(sm, s3, name: str, definition: str, assets: dict[str, bytes], role_arn: str | None, *,
           display_name: str | None = None, description: str | None = None, tags: dict | None = None) -> str:
    """Upload the code and create the pipeline or update it in place; returns its ARN. Safe to repeat."""
    role_arn = check_role(role_arn)
    upload_assets(s3, assets)
    fields = dict(PipelineName=name, PipelineDefinition=definition, RoleArn=role_arn,
                  PipelineDisplayName=display_name or name, PipelineDescription=description or "")
    tags = tag_list(tags)
    if deployed(sm, name) is None:
        arn = sm.create_pipeline(**fields, Tags=tags, ClientRequestToken=str(uuid.uuid4()))["PipelineArn"]
    else:
        arn = sm.update_pipeline(**fields)["PipelineArn"]
        if tags:
            sm.add_tags(ResourceArn=arn, Tags=tags)
    return arn


def start(sm, pipeline_name: str, parameters: dict, selective: dict | None = None,
          description: str | None = None) -> str:
    """Start an execution with already type-checked parameter overrides; returns its ARN.
    `selective` is a SelectiveExecutionConfig: the steps to run, and the execution to take the rest from;
    `description` its PipelineExecutionDescription."""
    params = [{"Name": k, "Value": str(v)} for k, v in parameters.items()]
    extra = {"SelectiveExecutionConfig": selective} if selective else {}
    if description:
        extra["PipelineExecutionDescription"] = description
    try:
        return sm.start_pipeline_execution(PipelineName=pipeline_name, PipelineParameters=params,
                                           ClientRequestToken=str(uuid.uuid4()), **extra)["PipelineExecutionArn"]
    except ClientError as e:
        raise CloudError(f"could not start {pipeline_name}: {e.response['Error']['Message']} "
                         f"(has it been upserted? run `python deploy.py upsert`)") from None


def execution_parameters(sm, execution_arn: str) -> dict[str, str]:
    """The parameter values an execution ran with (ListPipelineParametersForExecution)."""
    try:
        pages = sm.get_paginator("list_pipeline_parameters_for_execution").paginate(PipelineExecutionArn=execution_arn)
        return {p["Name"]: p["Value"] for page in pages for p in page["PipelineParameters"]}
    except ClientError as e:
        raise CloudError(f"execution {execution_arn}: {e.response['Error']['Message']}") from None


def stop(sm, execution_arn: str) -> str:
    """Ask SageMaker to stop an execution (StopPipelineExecution); it goes Stopping, then Stopped."""
    try:
        return sm.stop_pipeline_execution(PipelineExecutionArn=execution_arn,
                                          ClientRequestToken=str(uuid.uuid4()))["PipelineExecutionArn"]
    except ClientError as e:
        raise CloudError(f"could not stop {execution_arn}: {e.response['Error']['Message']}") from None


def wait(sm, execution_arn: str, *, timeout: float, poll: float = 15.0,
         on_step: Callable[[dict], None] = lambda step: None) -> dict:
    """Poll until the execution ends or `timeout` passes; reports each step status change."""
    deadline, seen = time.monotonic() + timeout, {}
    while True:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
        for step in _steps(sm, execution_arn):
            key = (step.get("StepName"), step.get("StepStatus"))
            if seen.get(key[0]) != key[1]:
                seen[key[0]] = key[1]
                on_step(step)
        status = execution["PipelineExecutionStatus"]
        if status in TERMINAL:
            return execution
        if time.monotonic() + poll > deadline:
            raise CloudError(f"execution {execution_arn} still {status} after {timeout:.0f} s; "
                             f"it keeps running in SageMaker (raise --timeout to wait longer)")
        time.sleep(poll)


def _steps(sm, execution_arn: str) -> list[dict]:
    try:
        return list(reversed(sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn)["PipelineExecutionSteps"]))
    except (ClientError, NotImplementedError):
        return []  # progress is a courtesy; the execution status is what counts


def tag_list(tags: dict | None) -> list[dict]:
    """{key: value} as the Tags list of SageMaker's Create* calls, in a stable order."""
    return [{"Key": k, "Value": v} for k, v in sorted((tags or {}).items())]


def deployed(sm, name: str) -> dict | None:
    """The DescribePipeline answer (definition, role, ...) or None when there is no such pipeline."""
    try:
        return sm.describe_pipeline(PipelineName=name)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("ResourceNotFound", "ValidationException") or "not exist" in str(e):
            return None
        raise


def diff(deployed: str | None, compiled: str) -> list[str]:
    """Step-by-step differences, deployed -> compiled; empty when they are the same pipeline."""
    old, new = _by_name(deployed), _by_name(compiled)
    lines = []
    for name in sorted(old.keys() | new.keys()):
        if old.get(name) == new.get(name):
            continue
        change = "added" if name not in old else "removed" if name not in new else "changed"
        lines.append(f"{change}: {name}")
        lines += difflib.unified_diff(_lines(old.get(name)), _lines(new.get(name)), "deployed", "compiled", lineterm="")
    return lines


def _by_name(definition: str | None) -> dict[str, object]:
    """Steps (branch steps included, a condition naming its branches' steps) and parameters keyed by
    name, as JSON, for a diff that names what changed."""
    if definition is None:
        return {}
    try:
        doc = spec.read(definition)
    except spec.SpecError as e:
        raise CloudError(f"the deployed definition cannot be read: {e}") from None
    items = {f"parameter {p['Name']}": p for p in spec.document(doc)["Parameters"]}
    for placed in doc.flat:
        step = placed.step
        branches = {"IfSteps": [s.name for s in step.if_steps], "ElseSteps": [s.name for s in step.else_steps]}
        items[f"step {step.name}"] = {**spec.step_json(step), "Arguments": step.arguments,
                                      **(branches if step.type == "Condition" else {})}
    return items


def _lines(value) -> list[str]:
    return [] if value is None else json.dumps(value, indent=2, sort_keys=True).splitlines()


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CloudError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key
