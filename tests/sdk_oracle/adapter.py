"""What the v2 and v3 adapters share: an offline session, and the calls both SDKs spell alike.

Both SDKs reach AWS through botocore, so one hook on the session they are given refuses
every request before it is signed; compile is offline by construction, not by luck.
"""
from __future__ import annotations

import functools


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


class Adapter:
    """The part of an SDK adapter that is the same in v2 and v3; each subclass imports the names
    (`PipelineSession`, `Transformer`, ...) from its own SDK."""

    @functools.lru_cache(maxsize=None)
    def session(self, region: str, bucket: str):
        """A PipelineSession whose every AWS request is refused.

        Cached: a new boto3 session reloads botocore's service models, most of a compile's time.
        """
        session = self.PipelineSession(boto_session=refusing_boto_session(region), default_bucket=bucket,
                                       sagemaker_config=EMPTY_SDK_CONFIG)
        # None at all after construction: the SDK re-validates a non-empty config at every lookup.
        session.sagemaker_config = {}
        self._prepare(session, bucket)
        return session

    def _prepare(self, session, bucket: str) -> None:
        """Whatever else an SDK's session needs to stay offline (nothing, unless a subclass says)."""

    def processing_args(self, session, *, role, image_uri, instance_type, instance_count, kms_key, network,
                        code, inputs, outputs, arguments):
        """A ScriptProcessor's run; `inputs` are (name, source, destination, S3 distribution) and
        `outputs` (name, source, destination), which each SDK spells in its own classes
        (`_processing_input`, `_processing_output`)."""
        processor = self.ScriptProcessor(
            image_uri=image_uri, command=["python3"], role=role, instance_type=instance_type,
            instance_count=instance_count, sagemaker_session=session,
            **encryption(kms_key), **({"network_config": self.NetworkConfig(**network)} if network else {}),
        )
        return processor.run(code=code, arguments=arguments, inputs=[self._processing_input(*i) for i in inputs],
                             outputs=[self._processing_output(*o) for o in outputs])

    def register_args(self, session, *, content_types, instance_types, group, approval_status, model_metrics,
                      description, metadata, framework=None, framework_version=None, **model):
        """A model package in `group`; `model` is what the subclass's `_model` serves."""
        return self._model(session, **model).register(
            content_types=content_types, response_types=content_types, inference_instances=instance_types,
            transform_instances=instance_types, model_package_group_name=group, approval_status=approval_status,
            model_metrics=model_metrics, description=description, customer_metadata_properties=metadata,
            **self._framework_fields(framework, framework_version),
        )

    def _framework_fields(self, framework, framework_version) -> dict:
        """The model package container's Framework and FrameworkVersion, where the SDK can write them."""
        return {"framework": framework, "framework_version": framework_version}

    def transform_args(self, session, *, model_name, instance_type, instance_count, accept, assemble_with,
                       max_payload, kms_key, output_path, data, content_type, split_type):
        transformer = self.Transformer(
            model_name=model_name, instance_type=instance_type, instance_count=instance_count, accept=accept,
            assemble_with=assemble_with, max_payload=max_payload, sagemaker_session=session,
            output_path=output_path, **encryption(kms_key),
        )
        return transformer.transform(data=data, content_type=content_type, split_type=split_type)


def encryption(kms_key: str | None) -> dict:
    """A job's volume and output KMS key, as both SDKs' processors, estimators and transformers take it."""
    return {"volume_kms_key": kms_key, "output_kms_key": kms_key} if kms_key else {}
