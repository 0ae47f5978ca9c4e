"""The SageMaker target: pipelines, executions, model packages, endpoints and transform jobs through
boto3, in the region the settings name (`pipelines.cloud`, `pipelines.executions`, `pipelines.endpoints`
hold the calls; this class is what the commands see of them)."""
from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Iterator

from pipelines import history
from pipelines.inputs import stage_input
from pipelines.targets import RunRequest, Target, UserError

ORIGIN_LIMIT = 3072  # PipelineExecutionDescription's limit: the origin travels there when it fits


class SageMakerTarget(Target):
    name = "SageMaker"

    def __init__(self, region: str):
        self.region = region

    @cached_property
    def _session(self):
        import boto3

        return boto3.Session(region_name=self.region)

    @cached_property
    def sm(self):
        return self._session.client("sagemaker")

    @cached_property
    def s3(self):
        return self._session.client("s3")

    # -- code and data ------------------------------------------------------------------------------

    def stage_input(self, path_or_uri: str, root: str, *, flag: str = "--input-data") -> str:
        return stage_input(path_or_uri, root, self.put_file, flag=flag)

    def exists(self, uri: str) -> bool:
        from pipelines import cloud

        return cloud.exists(self.s3, uri)

    def put_file(self, uri: str, path: Path) -> None:
        from pipelines import cloud

        bucket, key = cloud.split_s3_uri(uri)
        try:
            self.s3.upload_file(str(path), bucket, key)
        except Exception as e:  # boto3's S3UploadFailedError wraps the ClientError
            raise cloud.CloudError(f"could not upload {path} to {uri}: {e} (create bucket {bucket} or pass "
                                   f"--bucket NAME)") from None

    def read(self, uri: str) -> bytes | None:
        from botocore.exceptions import ClientError

        from pipelines import cloud

        try:
            bucket, key = cloud.split_s3_uri(uri)
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (cloud.CloudError, ClientError):  # a bundle that cannot be read is shown by name only
            return None

    def upsert(self, name, definition, assets, *, role_arn, display_name=None, description=None, tags=None) -> str:
        from pipelines import cloud

        return cloud.upsert(self.sm, self.s3, name, definition, assets, role_arn, display_name=display_name,
                            description=description, tags=tags)

    # -- executions ---------------------------------------------------------------------------------

    def start(self, request: RunRequest) -> str:
        from pipelines import cloud

        local_only = [flag for flag, given in (("--resume", request.resume), ("--stage", request.stage),
                                               ("--job-env", request.job_env), ("--keep-trials", request.keep_trials))
                      if given]
        if local_only:
            raise UserError(f"{local_only[0]} works with --local only; in SageMaker, start a new execution "
                            f"(or retry a failed one from Studio)")
        parameters = dict(request.parameters)
        selective = None
        if request.source:
            parameters = {**cloud.execution_parameters(self.sm, self._arn(request.source, request.pipeline_name)),
                          **parameters}
            selective = {"SourcePipelineExecutionArn": self._arn(request.source, request.pipeline_name),
                         "SelectedSteps": [{"StepName": s} for s in request.steps]}
        origin = json.dumps({"origin": request.origin}, separators=(",", ":"), default=str)
        return cloud.start(self.sm, request.pipeline_name, parameters, selective=selective,
                           description=origin if len(origin) <= ORIGIN_LIMIT else None)

    def wait(self, execution, *, timeout, poll, on_event) -> dict:
        from pipelines import cloud

        def on_step(step: dict) -> None:
            if on_event:
                on_event({"event": "step_status", "time": "", "step": step.get("StepName"),
                          "status": step.get("StepStatus")})

        cloud.wait(self.sm, execution, timeout=timeout, poll=poll, on_step=on_step)
        return self.summary(execution)

    def summary(self, execution: str) -> dict:
        view = self.view(execution, None)
        return history.summary(view)

    def views(self, pipeline_name, last) -> list[dict]:
        from pipelines import executions

        return [executions.view(self.sm, self.s3, arn)
                for arn in executions.execution_arns(self.sm, self._pipeline(pipeline_name), last)]

    def view(self, execution, pipeline_name) -> dict:
        from pipelines import executions

        return executions.view(self.sm, self.s3, self._arn(execution, pipeline_name))

    def logs(self, execution, step, *, follow, pipeline_name) -> Iterator[str]:
        from pipelines import executions

        arn = self._arn(execution, pipeline_name)
        yield from executions.logs(self.sm, self._session.client("logs"), arn, step, follow=follow)

    def stop(self, execution: str) -> str:
        from pipelines import cloud

        if not execution.startswith("arn:"):
            raise UserError(f"{execution}: give the execution's ARN (as start printed it), or add --local")
        return f"{cloud.stop(self.sm, execution)}: Stopping"

    def origin(self, execution: str) -> dict:
        from pipelines import executions

        described = executions.describe(self.sm, execution)
        try:
            return json.loads(described.get("PipelineExecutionDescription") or "{}").get("origin") or {}
        except (ValueError, AttributeError):
            return {}  # a description someone else wrote

    def _arn(self, execution: str, pipeline_name: str | None) -> str:
        from pipelines import executions

        return execution if execution.startswith("arn:") else \
            executions.resolve(self.sm, self._pipeline(pipeline_name), execution)

    @staticmethod
    def _pipeline(pipeline_name: str | None) -> str:
        if not pipeline_name:
            raise UserError("name the pipeline with --definition, or give the execution's ARN")
        return pipeline_name

    # -- registered models --------------------------------------------------------------------------

    def groups(self, names, last) -> list[dict]:
        from pipelines import endpoints

        return endpoints.list_models(self.sm, self.s3, last=last, names=names)

    def latest_groups(self) -> tuple[list[str], str]:
        from pipelines import endpoints

        latest = endpoints.latest_package(self.sm)
        if latest is None:
            return [], f"no model package in SageMaker ({self.region}) yet"
        return [latest["ModelPackageGroupName"]], f"the newest model package in {self.region}, {latest['ModelPackageArn']}"

    def package(self, group, ref, *, approved=False) -> dict:
        from pipelines import endpoints

        return endpoints.approved_package(self.sm, group, ref) if approved else \
            endpoints.resolve_package(self.sm, group, ref)

    def set_approval(self, group, ref, status, description=None) -> dict:
        from pipelines import endpoints

        return endpoints.set_approval(self.sm, group, ref, status, description)

    def deploy(self, package, *, endpoint_name, instance_type, instance_count, role_arn, tags, wait):
        from pipelines import endpoints

        result = endpoints.deploy_endpoint(self.sm, package, endpoint_name=endpoint_name, role_arn=role_arn,
                                           instance_type=instance_type, instance_count=instance_count, tags=tags)
        hint = endpoints.wait_in_service(self.sm, endpoint_name)["EndpointStatus"] if wait else \
            "SageMaker is bringing it into service (add --wait to follow)"
        return result, hint

    def serve(self, package, *, endpoint_name, host, port, max_payload_mb, say) -> None:
        raise UserError("serve runs a local endpoint: add --local (in SageMaker, use deploy-endpoint)")

    def prune(self, *, keep, older_than, dry_run) -> dict:
        raise UserError("prune frees a local home: add --local (in SageMaker, S3 lifecycle rules expire old outputs)")

    def endpoint_package(self, endpoint_name: str) -> str:
        raise UserError("serve runs a local endpoint: add --local (in SageMaker, use deploy-endpoint)")

    def predict(self, body, *, endpoint_name, url, content_type, accept) -> bytes:
        from pipelines import endpoints

        if not endpoint_name:
            raise UserError("predict needs --endpoint NAME (or --local for the local server)")
        runtime = self._session.client("sagemaker-runtime")
        return endpoints.invoke(runtime, endpoint_name, body, content_type=content_type, accept=accept)

    def batch_transform(self, package, *, input_path, output, root, instance_type, role_arn, tags, wait, say) -> dict:
        from pipelines import endpoints

        input_uri = self.stage_input(input_path, f"{root}/scoring", flag="--input")
        request = endpoints.batch_transform(self.sm, package, input_uri=input_uri, output_uri=output,
                                            output_root=f"{root}/transform", role_arn=role_arn,
                                            instance_type=instance_type, tags=tags)
        say(f"transform job {request['TransformJobName']} started")
        if wait:
            endpoints.wait_transform(self.sm, request["TransformJobName"])
        return {**request, "Output": request["TransformOutput"]["S3OutputPath"]}

