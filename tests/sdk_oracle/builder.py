"""The oracle: a pipeline compiled by the installed SageMaker SDK, v2 or v3.

The project's compiler (`pipelines.compiler`) writes the definition JSON itself; this compiles
the same definition and config through the SDK's own classes, with the same decisions (images
from the SDK's `image_uris`, everything else from the project's constants), so that
tests/test_same_json.py can hold the project's JSON to v2's bytes and to v3's apart from the
documented differences. `v2.py` and `v3.py` spell the settings in their SDK's classes, on a
PipelineSession that refuses every AWS request (`adapter.py`).
"""
from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

from pipelines import dsl, spec
from pipelines.compiler.builder import (CACHE_EXPIRY, PLACEHOLDER_ROLE, REGISTRY_FRAMEWORKS, SERVING_ENV,
                                        _distribution, _pinned, _property_file_name, code_assets, json_name)
from pipelines.config import Config, ConfigError

from sdk_oracle import sdk as sdks


def compile_with_sdk(pipeline: dsl.Pipeline, cfg: Config) -> str:
    """The definition JSON the installed SDK compiles for `pipeline`, in the project's layout
    (two-space indents, a final newline) and with the SDK's timestamped job name replaced."""
    pipeline.validate()
    cfg = dataclasses.replace(cfg, pipeline_name=pipeline.name)
    if not cfg.region:
        raise ConfigError("compile needs a region (image URIs are regional): pass --region or set AWS_REGION")
    code = code_assets(pipeline, cfg)
    sdk = sdks.load()
    with sdk.compiling(cfg.region):
        build = _Builder(pipeline, cfg, sdk, code)
        sdk_pipeline = sdk.Pipeline(
            name=pipeline.name,
            parameters=list(build.params.values()),
            steps=[build.steps[s.name] for s in pipeline.top_level()],
            sagemaker_session=build.session,
            pipeline_definition_config=sdk.PipelineDefinitionConfig(use_custom_job_prefix=False),
        )
        text = sdk_pipeline.definition()
    return json.dumps(json.loads(_without_timestamps(text, pipeline.name)), indent=2) + "\n"


def _without_timestamps(text: str, pipeline_name: str) -> str:
    """v2 writes a tuning job's name, timestamped at compile time, into its static hyperparameters;
    the project writes `<pipeline>-<step>` there."""
    for placed in spec.read(text).flat:
        static = placed.step.arguments.get("TrainingJobDefinition", {}).get("StaticHyperParameters", {})
        if "sagemaker_job_name" in static:
            text = text.replace(json.dumps(static["sagemaker_job_name"])[1:-1],
                                json.dumps(json.dumps(f"{pipeline_name}-{placed.name}"))[1:-1])
    return text


class _Builder:
    """Turns each dsl step into the SDK step that SageMaker's JSON comes from.

    Every setting is decided here; `self.sdk` (v2 or v3) only spells it in its own classes.
    """

    def __init__(self, pipeline: dsl.Pipeline, cfg: Config, sdk, code: dict):
        self.pipeline, self.cfg, self.sdk = pipeline, cfg, sdk
        self.region = cfg.region
        self.role = cfg.role_arn or PLACEHOLDER_ROLE
        self.session = sdk.session(self.region, cfg.artifact_bucket)
        self.code = code
        self.property_files: dict[tuple[str, str], object] = {}
        self.params = {p.name: self._parameter(p) for p in pipeline.parameters.values()}
        self.steps: dict = {}
        for step in pipeline.steps.values():
            self.steps[step.name] = getattr(self, f"_{type(step).__name__.lower()}")(step)

    # -- values --

    def _parameter(self, p: dsl.Parameter):
        cls = {"String": self.sdk.ParameterString, "Integer": self.sdk.ParameterInteger,
               "Float": self.sdk.ParameterFloat}[p.kind]
        extra = {"enum_values": list(p.enum)} if p.enum else {}
        return cls(name=p.name, default_value=p.default, **extra)

    def value(self, v):
        """A dsl value as the SDK's pipeline variable (or the literal itself)."""
        if isinstance(v, dsl.Parameter):
            return self.params[v.name]
        if isinstance(v, dsl.OutputRef):
            return self.steps[v.step.name].properties.ProcessingOutputConfig.Outputs[v.name].S3Output.S3Uri
        if isinstance(v, dsl.ModelRef):
            return self._model_uri(v.step)
        if isinstance(v, dsl.RegisteredModelRef):
            return self.steps[v.step.name].properties.InferenceSpecification.Containers[0].ModelDataUrl
        if isinstance(v, dsl.ModelNameRef):
            return self.steps[v.step.name].properties.ModelName
        if isinstance(v, dsl.Sharded):
            return self.value(v.source)
        if isinstance(v, dsl.ReportValue):
            step, name = v.report.step.name, v.report.name
            return self.sdk.JsonGet(step_name=step, property_file=self.property_files[(step, name)], json_path=v.path)
        return v

    def text(self, v):
        """Like value(), but always a string (container arguments and messages)."""
        out = self.value(v)
        if isinstance(out, self.sdk.PipelineVariable):
            return out if isinstance(v, dsl.Parameter) and v.type is str else out.to_string()
        return str(out)

    def _model_uri(self, step: dsl.Training):
        sdk_step = self.steps[step.name]
        if isinstance(step, dsl.Tuning):
            return sdk_step.get_top_model_s3_uri(top_k=0, s3_bucket=self.cfg.artifact_bucket,
                                                 prefix=f"{self.cfg.key_prefix}/models/{step.name}")
        return sdk_step.properties.ModelArtifacts.S3ModelArtifacts

    def _image(self, step: dsl.Step, scope: str, instance_type) -> str:
        """The image URI of `step`: its URI as written, or the framework image the SDK's image_uris
        names for the region and instance type (a parameter's default)."""
        image = step.image
        if isinstance(image, str):
            return image
        if isinstance(instance_type, dsl.Parameter):
            instance_type = instance_type.default
        try:
            return _image_uri(self.sdk, _pinned(image), self.region, instance_type, scope)
        except ValueError as e:
            raise dsl.DefinitionError(f"step {step.name!r}: no {scope} image for {image}: {e}") from None

    def _asset(self, path: Path) -> str:
        return self.code[path][0]

    def _job_options(self, step: dsl.Step) -> dict:
        """Ordering and retries: jobs retry internal and capacity errors, registration retries API faults."""
        after = [self.pipeline.steps[a] if isinstance(a, str) else a for a in step.after]
        options = {"depends_on": [json_name(a) for a in after] or None}
        if step.retries:
            sdk, backoff = self.sdk, dict(interval_seconds=1, backoff_rate=2.0, max_attempts=step.retries)
            options["retry_policies"] = [
                sdk.StepRetryPolicy(exception_types=[sdk.StepError.SERVICE_FAULT, sdk.StepError.THROTTLING], **backoff)
                if isinstance(step, (dsl.Register, dsl.Model)) else
                sdk.SageMakerJobStepRetryPolicy(exception_types=[sdk.JobError.INTERNAL_ERROR,
                                                                 sdk.JobError.CAPACITY_ERROR], **backoff)]
        return options

    def _cache(self, step: dsl.Step):
        return self.sdk.CacheConfig(enable_caching=step.cache, expire_after=CACHE_EXPIRY)

    def _run_path(self, *parts: str):
        """s3://<root>/runs/<execution id>/<parts>: where a job of one execution writes."""
        sdk = self.sdk
        return sdk.Join(on="/", values=[f"{self.cfg.s3_root}/runs", sdk.ExecutionVariables.PIPELINE_EXECUTION_ID,
                                        *parts])

    # -- security: only what is configured, so the default JSON carries no empty settings --

    def _network(self) -> dict:
        """Subnets, security groups, isolation and inter-container encryption, as configured."""
        cfg, out = self.cfg, {}
        if cfg.subnets:
            out.update(subnets=list(cfg.subnets), security_group_ids=list(cfg.security_group_ids))
        if cfg.network_isolation:
            out["enable_network_isolation"] = True
        if cfg.encrypt_inter_container_traffic:
            out["encrypt_inter_container_traffic"] = True
        return out

    # -- steps --

    def _processing(self, step: dsl.Processing):
        sdk = self.sdk
        for report, declared in step.reports.items():
            self.property_files[(step.name, report)] = sdk.PropertyFile(
                name=_property_file_name(report), output_name=declared.output, path=declared.file)
        args = sdk.processing_args(
            self.session, role=self.role, image_uri=self._image(step, "training", step.instance_type),
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            kms_key=self.cfg.kms_key_id, network=self._network(), code=self._asset(step.script),
            inputs=[(k, self.value(v), f"/opt/ml/processing/input/{k}", _distribution(v))
                    for k, v in step.inputs_.items()],
            outputs=[(name, f"/opt/ml/processing/output/{name}", self._run_path(step.name, name))
                     for name in step.outputs],
            arguments=[self.text(a) for a in step.arguments] or None,
        )
        return sdk.ProcessingStep(
            step.name, step_args=args, cache_config=self._cache(step), **self._job_options(step),
            property_files=[self.property_files[(step.name, r)] for r in step.reports] or None,
        )

    def _training_job(self, step: dsl.Training) -> dict:
        """What a training job is, for one job (Training) or each trial (Tuning): `entry_point` from
        `source_dir` in the step's image, the framework containers' script mode. `framework` is the
        pinned dsl.Image, or None for an image named by URI."""
        return dict(
            role=self.role, image_uri=self._image(step, "training", step.instance_type),
            framework=None if isinstance(step.image, str) else _pinned(step.image),
            entry_point=step.entry_point, source_dir=self._asset(step.source_dir),
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            output_path=f"{self.cfg.s3_root}/models/{step.name}",
            hyperparameters={k: self.value(v) for k, v in step.hyperparameters.items()},
            metric_definitions=_metric_definitions(step), kms_key=self.cfg.kms_key_id, network=self._network(),
            channels={name: (self.value(v), _distribution(v)) for name, v in step.channels.items()},
            max_runtime=None if step.max_runtime is None else self.value(step.max_runtime),
        )

    def _training(self, step: dsl.Training):
        args = self.sdk.training_args(self.session, **self._training_job(step))
        return self.sdk.TrainingStep(step.name, step_args=args, cache_config=self._cache(step),
                                     **self._job_options(step))

    def _tuning(self, step: dsl.Tuning):
        args = self.sdk.tuning_args(
            self.session, **self._training_job(step),
            objective_metric=step.objective.metric, objective_type=step.objective.direction,
            ranges={name: self._range(r) for name, r in step.ranges.items()}, strategy=step.strategy,
            max_jobs=self.value(step.max_jobs), max_parallel_jobs=self.value(step.max_parallel),
            random_seed=step.random_seed, early_stopping=step.early_stopping,
        )
        return self.sdk.TuningStep(step.name, step_args=args, cache_config=self._cache(step),
                                   **self._job_options(step))

    def _range(self, r):
        sdk = self.sdk
        if isinstance(r, dsl.Continuous):
            return sdk.ContinuousParameter(r.low, r.high, scaling_type="Logarithmic" if r.log else "Linear")
        if isinstance(r, dsl.Integer):
            return sdk.IntegerParameter(r.low, r.high)
        return sdk.CategoricalParameter(list(r.values))

    def _serving_model(self, step, instance_type: str, isolated: bool = False) -> dict:
        """What a Register or Model step serves: with `entry_point`, that program from its own
        sourcedir.tar.gz, which the serving image fetches (SAGEMAKER_SUBMIT_DIRECTORY, as the SDK's
        framework models do); without, the code inside the model archive (SERVING_ENV), which needs
        no repack job."""
        serving = dict(role=self.role, image_uri=self._image(step, "inference", instance_type),
                       model_data=self.value(step.model))
        if not step.entry_point:
            return dict(serving, env=dict(SERVING_ENV), code=None)
        if isolated:
            raise ConfigError(f"step {step.name!r}: with network_isolation, SageMaker repacks a model whose "
                              f"entry_point is named, a job compile cannot set up offline: leave entry_point out "
                              f"and have the training script copy the inference code to <model dir>/code/")
        # code_location names the bucket, else the SDK asks S3 for its default one; nothing is uploaded,
        # since source_dir is already an s3:// bundle.
        return dict(serving, env=None, code=dict(
            entry_point=step.entry_point, source_dir=self._asset(step.source_dir), framework=_pinned(step.image),
            code_location=f"{self.cfg.s3_root}/code"))

    def _register(self, step: dsl.Register):
        sdk = self.sdk
        report = step.report
        declared = report.step.reports[report.name]
        report_uri = sdk.Join(on="/", values=[self.value(dsl.OutputRef(report.step, declared.output)), declared.file])
        framework = {} if isinstance(step.image, str) or step.image.framework not in REGISTRY_FRAMEWORKS else \
            dict(framework=REGISTRY_FRAMEWORKS[step.image.framework], framework_version=_pinned(step.image).version)
        args = sdk.register_args(
            self.session, **self._serving_model(step, step.inference_instance_type),
            content_types=list(step.content_types), instance_types=[step.inference_instance_type],
            group=step.group, approval_status=self.value(step.approval_status),
            model_metrics=sdk.ModelMetrics(model_statistics=sdk.MetricsSource(
                s3_uri=report_uri, content_type="application/json")),
            description=step.description or None, metadata=dict(step.metadata) or None, **framework,
        )
        return sdk.ModelStep(step.name, step_args=args, **self._job_options(step))

    def _model(self, step: dsl.Model):
        network = self._network()
        isolated = network.get("enable_network_isolation", False)
        args = self.sdk.create_model_args(
            self.session, **self._serving_model(step, step.instance_type, isolated), instance_type=step.instance_type,
            network_isolation=isolated,
            vpc_config={"Subnets": network["subnets"], "SecurityGroupIds": network["security_group_ids"]}
            if network.get("subnets") else None,
        )
        return self.sdk.ModelStep(step.name, step_args=args, **self._job_options(step))

    def _transform(self, step: dsl.Transform):
        args = self.sdk.transform_args(
            self.session, model_name=self.value(step.model.name_ref), instance_type=self.value(step.instance_type),
            instance_count=self.value(step.instance_count), accept=step.accept, assemble_with=step.assemble_with,
            max_payload=step.max_payload_mb, kms_key=self.cfg.kms_key_id, output_path=self._run_path(step.name),
            data=self.value(step.data), content_type=step.content_type, split_type=step.split_type,
        )
        return self.sdk.TransformStep(step.name, step_args=args, cache_config=self._cache(step),
                                      **self._job_options(step))

    def _fail(self, step: dsl.Fail):
        message = self.sdk.Join(on=" ", values=[self.text(part) for part in step.message])
        return self.sdk.FailStep(step.name, error_message=message, depends_on=self._job_options(step)["depends_on"])

    def _conditionstep(self, step: dsl.ConditionStep):
        c = step.condition
        cls = {">=": self.sdk.ConditionGreaterThanOrEqualTo, ">": self.sdk.ConditionGreaterThan,
               "<=": self.sdk.ConditionLessThanOrEqualTo, "<": self.sdk.ConditionLessThan}[c.op]
        return self.sdk.ConditionStep(
            step.name, conditions=[cls(left=self.value(c.left), right=self.value(c.right))],
            if_steps=[self.steps[s.name] for s in step.then], else_steps=[self.steps[s.name] for s in step.otherwise],
            depends_on=self._job_options(step)["depends_on"],
        )


def _metric_definitions(step: dsl.Training) -> list[dict]:
    return [{"Name": name, "Regex": regex} for name, regex in step.metrics.items()]


@functools.lru_cache(maxsize=None)
def _image_uri(sdk, image: dsl.Image, region: str, instance_type: str, scope: str) -> str:
    """Cached: each lookup makes the SDK load botocore's endpoint data anew (a tenth of a second)."""
    return sdk.image_uris.retrieve(image.framework, region=region, version=image.version, py_version=image.py_version,
                                   instance_type=instance_type, image_scope=scope,
                                   base_framework_version=image.base)
