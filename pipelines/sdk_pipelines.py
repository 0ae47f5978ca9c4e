"""Pipelines written with the plain SageMaker SDK, made ready for the local runner.

The SDK uploads code while it builds a definition (`pipeline.definition()`
puts each processing script and training source_dir into S3), so its JSON
names s3:// objects that exist only after an upload. `offline()` builds the
pipeline against an in-process S3 and SageMaker (moto), so nothing reaches
AWS, and `export` writes the definition with every object the SDK uploaded:

    with offline(buckets=["my-bucket"]) as sdk:
        pipeline = get_pipeline(region="us-east-1", role=ROLE, default_bucket="my-bucket")
        json_path, stage_flags = sdk.export(pipeline, "build/")
    # python deploy.py run --local --definition-json build/<name>.json --stage s3://my-bucket=build/s3/my-bucket

This module belongs to the command layer: the runner itself never imports the SDK.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipelines.files import write_atomically

@contextlib.contextmanager
def environment(**values: str | None):
    """`os.environ` with `values` set (None: unset) for the duration, then exactly as it was."""
    before = {key: os.environ.get(key) for key in values}
    _set_environment(values)
    try:
        yield
    finally:
        _set_environment(before)


def _set_environment(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "offline", "AWS_SECRET_ACCESS_KEY": "offline", "AWS_SESSION_TOKEN": "offline"}


@dataclass
class OfflineSdk:
    """The in-process AWS a pipeline was built against: what the SDK uploaded is read back from it."""

    region: str

    def uploads(self) -> dict[str, bytes]:
        """Every object in the in-process S3, by s3:// URI."""
        import boto3

        s3 = boto3.client("s3", region_name=self.region)
        objects = {}
        for bucket in s3.list_buckets()["Buckets"]:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
                for item in page.get("Contents", []):
                    body = s3.get_object(Bucket=bucket["Name"], Key=item["Key"])["Body"].read()
                    objects[f"s3://{bucket['Name']}/{item['Key']}"] = body
        return objects

    def export(self, pipeline, directory: str | Path) -> tuple[Path, list[str]]:
        """Write ``<name>.json`` and ``s3/<bucket>/<key>`` for each upload under `directory`;
        return the JSON's path and the ``--stage`` arguments that put the uploads in a local store."""
        directory = Path(directory)
        definition = pipeline.definition()  # the SDK uploads code now
        path = directory / f"{pipeline.name}.json"
        write_atomically(path, definition)
        buckets = set()
        for uri, data in self.uploads().items():
            bucket, _, key = uri[len("s3://"):].partition("/")
            target = directory / "s3" / bucket / key
            write_atomically(target, data)
            buckets.add(bucket)
        return path, [f"--stage=s3://{b}={directory / 's3' / b}" for b in sorted(buckets)]


@contextlib.contextmanager
def offline(region: str = "us-east-1", buckets: tuple[str, ...] | list[str] = (),
            model_packages: tuple[dict, ...] | list[dict] = ()) -> Iterator[OfflineSdk]:
    """Build SDK pipelines inside: every AWS call goes to moto in this process, with throwaway
    credentials (the caller's are hidden), and `buckets` exist for the SDK's uploads.

    `model_packages` (DescribeModelPackage responses, a local registry's) are the versions the
    in-process SageMaker knows: the SDK describes a package before it creates a model from it."""
    import boto3

    try:
        from moto import mock_aws
    except ImportError:
        raise ImportError("plain-SDK pipelines are built against moto's in-process AWS: "
                          "pip install -e '.[sdk-v2]' (or '.[sdk-v3]')") from None

    with environment(**FAKE_CREDENTIALS, AWS_DEFAULT_REGION=region, AWS_PROFILE=None), mock_aws(), \
            _sagemaker_answers(model_packages):
        s3 = boto3.client("s3", region_name=region)
        for bucket in buckets:
            s3.create_bucket(Bucket=bucket, **({} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}))
        yield OfflineSdk(region)


@contextlib.contextmanager
def _sagemaker_answers(model_packages):
    """What moto's SageMaker lacks and pipeline code calls while it builds: DescribeImageVersion
    (seed code looks for a custom image and falls back to AWS's on ResourceNotFound, which an
    account without that image answers) and DescribeModelPackage for the given versions."""
    import json
    from unittest import mock

    from moto.sagemaker.exceptions import ResourceNotFound
    from moto.sagemaker.responses import SageMakerResponse

    packages = {p["ModelPackageArn"]: p for p in model_packages}
    moto_describe = SageMakerResponse.describe_model_package

    def describe_image_version(self):
        raise ResourceNotFound(f"Image {self._get_param('ImageName')} does not exist.")

    def describe_model_package(self):
        package = packages.get(self._get_param("ModelPackageName"))
        return moto_describe(self) if package is None else json.dumps(package, default=str)

    with mock.patch.object(SageMakerResponse, "describe_image_version", describe_image_version, create=True), \
            mock.patch.object(SageMakerResponse, "describe_model_package", describe_model_package):
        yield
