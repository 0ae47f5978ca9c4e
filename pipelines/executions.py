"""Executions of a pipeline in SageMaker: what ran, with which values and results, and their logs.

The SageMaker side of `deploy.py runs`, `compare` and `logs` (the local runner's records answer the
same questions offline). Each execution becomes the same plain view the local records give
(`history.view`): status, times, parameters, steps, the gate's metric, the registered version and
the definition, so listing and comparing never care where a run happened.

Logs are CloudWatch's: a job writes to `/aws/sagemaker/<Kind>Jobs`, one stream per host named
`<job name>/algo-N-<time>`; a tuning step's jobs are its training jobs.
"""
from __future__ import annotations

import json
import time
from typing import Callable, Iterator

from botocore.exceptions import ClientError

from pipelines import spec
from pipelines.cloud import TERMINAL, CloudError, split_s3_uri

LOG_GROUPS = {"ProcessingJob": "/aws/sagemaker/ProcessingJobs", "TrainingJob": "/aws/sagemaker/TrainingJobs",
              "TransformJob": "/aws/sagemaker/TransformJobs"}


def _call(method, **kwargs):
    try:
        return method(**kwargs)
    except ClientError as e:
        raise CloudError(f"{method.__name__}: {e.response['Error']['Message']}") from None


def execution_arns(sm, pipeline_name: str, last: int = 20) -> list[str]:
    """The pipeline's newest executions, newest first."""
    summaries = _call(sm.list_pipeline_executions, PipelineName=pipeline_name, SortBy="CreationTime",
                      SortOrder="Descending", MaxResults=max(1, min(last, 100)))["PipelineExecutionSummaries"]
    # sorted here too: the order of the answer is the service's promise, not every emulator's
    newest = sorted(enumerate(summaries), key=lambda pair: (pair[1]["StartTime"], pair[0]), reverse=True)
    return [s["PipelineExecutionArn"] for _, s in newest]


def resolve(sm, pipeline_name: str, ref: str) -> str:
    """An execution ARN from an ARN, an execution id, or `latest`."""
    if ref.startswith("arn:"):
        return ref
    arns = execution_arns(sm, pipeline_name, last=100)
    found = arns[:1] if ref == "latest" else [a for a in arns if a.rsplit("/", 1)[-1] == ref]
    if not found:
        raise CloudError(f"pipeline {pipeline_name} has no execution {ref!r} among its newest 100: give its ARN")
    return found[0]


def steps(sm, execution_arn: str) -> list[dict]:
    """ListPipelineExecutionSteps, in the order the steps started."""
    pages = sm.get_paginator("list_pipeline_execution_steps").paginate(PipelineExecutionArn=execution_arn)
    try:
        return list(reversed([s for page in pages for s in page["PipelineExecutionSteps"]]))
    except ClientError as e:
        raise CloudError(f"steps of {execution_arn}: {e.response['Error']['Message']}") from None


def describe(sm, execution_arn: str) -> dict:
    """DescribePipelineExecution."""
    return _call(sm.describe_pipeline_execution, PipelineExecutionArn=execution_arn)


def view(sm, s3, execution_arn: str) -> dict:
    """The execution as `history` shows runs: the same keys as a local record's view."""
    described = describe(sm, execution_arn)
    definition = _definition(_call(sm.describe_pipeline_definition_for_execution,
                                   PipelineExecutionArn=execution_arn)["PipelineDefinition"], execution_arn)
    parameters = {p["Name"]: p["Value"] for page in sm.get_paginator("list_pipeline_parameters_for_execution")
                  .paginate(PipelineExecutionArn=execution_arn) for p in page["PipelineParameters"]}
    declared = {p.name: p.default for p in definition.parameters}
    try:
        listed = steps(sm, execution_arn)
    except NotImplementedError:  # an emulator without ListPipelineExecutionSteps (moto): the execution alone
        listed = []
    started, ended = described.get("CreationTime"), described.get("LastModifiedTime")
    status = described["PipelineExecutionStatus"]
    evaluation = _evaluation(sm, s3, definition, listed)
    failed = next((s for s in listed if s.get("StepStatus") == "Failed"), {})
    return {
        "execution_id": execution_arn.rsplit("/", 1)[-1], "execution_arn": execution_arn, "status": status,
        "pipeline_name": execution_arn.split(":pipeline/", 1)[-1].split("/", 1)[0],
        "started": started.isoformat() if started else None,
        "seconds": (ended - started).total_seconds() if started and ended and status in TERMINAL else None,
        "parameters": {**declared, **parameters}, "definition": definition,
        "failure_reason": described.get("FailureReason"), "failed_step": failed.get("StepName"),
        "steps": [_step(s, definition) for s in listed],
        "metrics": evaluation, "report_file": evaluation,
        "registered": _registered(listed),
    }


def _step(step: dict, definition: spec.Definition) -> dict:
    """A listed step as a view's step: its type (the definition's), status, seconds, and for a Condition
    the outcome (what `history.gate` reads, as a local record's response holds it)."""
    types = {placed.name: placed.step.type for placed in definition.flat}
    metadata = step.get("Metadata") or {}
    began, ended = step.get("StartTime"), step.get("EndTime")
    return {"name": step["StepName"], "type": types.get(step["StepName"]), "status": step.get("StepStatus"),
            "seconds": (ended - began).total_seconds() if began and ended else None, "metadata": metadata,
            "failure_reason": step.get("FailureReason"),
            "response": {"Outcome": str(metadata["Condition"]["Outcome"])} if "Condition" in metadata else None}


def _registered(listed: list[dict]) -> dict | None:
    for step in listed:
        arn = ((step.get("Metadata") or {}).get("RegisterModel") or {}).get("Arn")
        if arn:
            return {"ModelPackageArn": arn, "ModelPackageVersion": int(arn.rsplit("/", 1)[-1]),
                    "ModelPackageGroupName": arn.split(":model-package/", 1)[-1].rsplit("/", 1)[0]}
    return None


def _definition(text: str, execution_arn: str) -> spec.Definition:
    try:
        return spec.read(text)
    except spec.SpecError as e:
        raise CloudError(f"the definition of {execution_arn} cannot be read: {e}") from None


def _evaluation(sm, s3, definition: spec.Definition, listed: list[dict]) -> dict | None:
    """The property file a step wrote (evaluation.json), read from its processing job's output."""
    jobs = {s["StepName"]: ((s.get("Metadata") or {}).get("ProcessingJob") or {}).get("Arn") for s in listed}
    for placed in definition.flat:
        for file in placed.step.property_files:
            arn = jobs.get(placed.name)
            if not arn:
                continue
            job = _call(sm.describe_processing_job, ProcessingJobName=arn.rsplit("/", 1)[-1])
            outputs = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in
                       (job.get("ProcessingOutputConfig") or {}).get("Outputs") or []}
            if file.output_name in outputs:
                bucket, key = split_s3_uri(f"{outputs[file.output_name].rstrip('/')}/{file.file_path}")
                try:
                    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
                except (ClientError, ValueError):
                    return None
    return None


# --- logs -----------------------------------------------------------------------------------------


def step_jobs(sm, step: dict) -> list[tuple[str, str]]:
    """(log group, job name) of each job a listed step ran: a tuning step's are its training jobs."""
    metadata = step.get("Metadata") or {}
    if "TuningJob" in metadata:
        name = metadata["TuningJob"]["Arn"].rsplit("/", 1)[-1]
        pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=name)
        return [(LOG_GROUPS["TrainingJob"], job["TrainingJobName"]) for page in pages
                for job in page["TrainingJobSummaries"]]
    return [(group, metadata[kind]["Arn"].rsplit("/", 1)[-1]) for kind, group in LOG_GROUPS.items()
            if kind in metadata]


def logs(sm, logs_client, execution_arn: str, step_name: str | None = None, *, follow: bool = False,
         poll: float = 10.0, sleep: Callable[[float], None] = time.sleep) -> Iterator[str]:
    """The CloudWatch lines of an execution's jobs (one step's with `step_name`), each stream
    introduced by a header; with `follow`, new lines until the execution ends."""
    positions: dict[tuple[str, str], str | None] = {}
    while True:
        listed = steps(sm, execution_arn)
        chosen = [s for s in listed if step_name in (None, s["StepName"])]
        if step_name and not chosen and not follow:
            names = ", ".join(s["StepName"] for s in listed) or "none yet"
            raise CloudError(f"execution {execution_arn} has no step {step_name!r} (its steps: {names})")
        for step in chosen:
            for group, job in step_jobs(sm, step):
                yield from _new_lines(logs_client, group, job, positions)
        if not follow or _call(sm.describe_pipeline_execution,
                               PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"] in TERMINAL:
            return
        sleep(poll)


def _new_lines(client, group: str, job: str, positions: dict) -> Iterator[str]:
    try:
        streams = [s["logStreamName"] for page in client.get_paginator("describe_log_streams").paginate(
            logGroupName=group, logStreamNamePrefix=f"{job}/") for s in page["logStreams"]]
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return  # nothing logged yet
        raise CloudError(f"logs of {job}: {e.response['Error']['Message']}") from None
    for stream in streams:
        key = (group, stream)
        if key not in positions:
            positions[key] = None
            yield f"==> {group} {stream} <=="
        while True:
            kwargs = {"nextToken": positions[key]} if positions[key] else {"startFromHead": True}
            page = client.get_log_events(logGroupName=group, logStreamName=stream, **kwargs)
            for event in page["events"]:
                yield event["message"]
            if page["nextForwardToken"] == positions[key] or not page["events"]:
                positions[key] = page["nextForwardToken"]
                break
            positions[key] = page["nextForwardToken"]
