"""What keeps a compile offline under either SDK: a boto3 session that refuses every request.

Both SDKs reach AWS through botocore, so one hook on the session they are given refuses
every request before it is signed; compile is offline by construction, not by luck.
"""
from __future__ import annotations

import contextlib
import os


class AwsCallDuringCompile(RuntimeError):
    """The SDK tried to reach AWS while compiling; compile must stay offline."""


def refusing_boto_session(region: str):
    """A boto3 session whose every request raises AwsCallDuringCompile, naming the operation."""
    import boto3

    boto = boto3.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")

    def refuse(**kwargs):
        raise AwsCallDuringCompile(f"compile tried to call AWS ({kwargs.get('event_name')}); it must stay offline")

    boto.events.register("before-send", refuse)
    return boto


# The SDK reads a machine's ~/.config/sagemaker/config.yaml unless given a config of its own; this
# one sets nothing, so no developer's KMS keys or tags reach the JSON.
EMPTY_SDK_CONFIG = {"SchemaVersion": "1.0"}


@contextlib.contextmanager
def environment(**values: str):
    """`os.environ` with `values` set for the duration, then exactly as it was."""
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
