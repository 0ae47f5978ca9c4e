"""Definition + config -> SageMaker pipeline definition JSON, through the SDK v2.

Pure: no AWS call (any attempt raises), and the same definition and config
give the same bytes. The SageMaker SDK is imported here and nowhere else, so
moving to SDK v3 touches this module only.
"""
from __future__ import annotations

import functools
import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import dsl
from pipelines.bundles import file_asset, folder_asset
from pipelines.config import Config, ConfigError
from pipelines.files import write_atomically

SKLEARN_VERSION = "1.4-2"
XGBOOST_VERSION = "3.0-5"
PINNED_VERSIONS = {"sklearn": SKLEARN_VERSION, "xgboost": XGBOOST_VERSION}  # image="sklearn" / "xgboost"
# dsl framework -> the SDK's estimator and model classes (script mode) and the ModelPackage Framework.
ESTIMATORS = {"sklearn": "SKLearn", "xgboost": "XGBoost", "pytorch": "PyTorch", "tensorflow": "TensorFlow",
              "huggingface": "HuggingFace"}
MODELS = {"sklearn": "SKLearnModel", "xgboost": "XGBoostModel"}  # dsl.CODE_BESIDE_MODEL
REGISTRY_FRAMEWORKS = {"sklearn": "SKLEARN", "xgboost": "XGBOOST", "pytorch": "PYTORCH", "tensorflow": "TENSORFLOW"}
CACHE_EXPIRY = "P30D"
# Local placeholder: compile and local runs need a role in the JSON; upsert refuses it.
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/set-role-arn-to-deploy"
# The model archive carries its inference code in code/ (training_scripts/train.py puts it there),
# so registering or creating a model needs no repack job.
SERVING_ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}


class AwsCallDuringCompile(RuntimeError):
    """The SDK tried to reach AWS while compiling; compile must stay offline."""


@dataclass(frozen=True)
class Compiled:
    """What deploy.py ships: the definition JSON plus the code it points at."""

    name: str
    display_name: str
    description: str
    tags: dict[str, str]
    definition: str
    parameters: dict[str, dsl.Parameter]
    assets: dict[str, bytes] = field(repr=False)  # s3 uri -> bytes, uploaded before a run


def compile_pipeline(pipeline: dsl.Pipeline, cfg: Config, *, cache_dir: Path | None = None) -> Compiled:
    """The definition JSON and code bundles. With `cache_dir`, an unchanged pipeline is not rebuilt:
    compile is pure, so its output is memoised by a fingerprint of everything it depends on.
    The pipeline's objects go under its own prefix: the config's `prefix`, else the pipeline's name."""
    pipeline.validate()
    cfg = dataclasses.replace(cfg, pipeline_name=pipeline.name)
    code = code_assets(pipeline, cfg)
    cached = cache_dir and Path(cache_dir) / f"{_fingerprint_key(pipeline, cfg, code)}.json"
    if cached and cached.is_file():
        definition = cached.read_text()
    else:
        definition = _definition(pipeline, cfg, code)
        if cached:
            write_atomically(cached, definition)
    return Compiled(
        name=pipeline.name,
        display_name=pipeline.display_name,
        description=pipeline.description,
        tags=cfg.all_tags(),
        definition=definition,
        parameters=dict(pipeline.parameters),
        assets=dict(sorted(code.values())),
    )


def code_assets(pipeline: dsl.Pipeline, cfg: Config) -> dict[Path, tuple[str, bytes]]:
    """Each script, training folder or model code folder -> (content-addressed s3 uri, bytes)."""
    root, assets = f"{cfg.s3_root}/code", {}
    for step in pipeline.steps.values():
        if isinstance(step, dsl.Processing):
            assets[step.script] = file_asset(step.script, root)
        elif isinstance(step, (dsl.Training, dsl.Register, dsl.Model)) and step.source_dir:
            assets[step.source_dir] = folder_asset(step.source_dir, root)
    return assets


def _definition(pipeline: dsl.Pipeline, cfg: Config, code: dict) -> str:
    sdk = _sdk()
    with warnings.catch_warnings():
        # The SDK warns that a PipelineSession starts no job: not starting jobs is the point of compiling.
        warnings.filterwarnings("ignore", message="Running within a PipelineSession")
        # ModelStep itself builds the CreateModelStep this deprecation is about; ModelStep is what we use.
        warnings.filterwarnings("ignore", message="We are deprecating the use of CreateModelStep")
        build = _Builder(pipeline, cfg, sdk, code)
        sdk_pipeline = sdk.Pipeline(
            name=pipeline.name,
            parameters=list(build.params.values()),
            steps=[build.steps[s.name] for s in pipeline.top_level()],
            sagemaker_session=build.session,
            pipeline_definition_config=sdk.PipelineDefinitionConfig(use_custom_job_prefix=False),
        )
        definition = _normalise(json.loads(sdk_pipeline.definition()), pipeline.name)
    return json.dumps(definition, indent=2) + "\n"


def _fingerprint_key(pipeline: dsl.Pipeline, cfg: Config, code: dict) -> str:
    """sha256 of what compile output depends on: the pipeline, the config, the code bundles,
    this package's own sources and the SDK version."""
    sources = sorted((p.name, p.read_bytes()) for p in Path(__file__).parent.glob("*.py"))
    facts = [_fingerprint(pipeline.__dict__), _fingerprint(dataclasses.asdict(cfg)),
             sorted(uri for uri, _ in code.values()), [(name, hashlib.sha256(data).hexdigest()) for name, data in sources],
             importlib.metadata.version("sagemaker")]
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


def _fingerprint(value, nested: bool = False):
    """A JSON-able, order-stable picture of a definition value; a step inside another value is its name."""
    if isinstance(value, dsl.Step) and nested:
        return ["step", value.name]
    if dataclasses.is_dataclass(value):
        return [type(value).__name__, {f.name: _fingerprint(getattr(value, f.name), True)
                                       for f in dataclasses.fields(value)}]
    if isinstance(value, dict):
        return sorted([str(k), _fingerprint(v, nested)] for k, v in value.items())
    if isinstance(value, (frozenset, set)):
        return sorted(map(str, value))
    if isinstance(value, (list, tuple)):
        return [_fingerprint(v, nested) for v in value]
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


def _normalise(definition: dict, pipeline_name: str) -> dict:
    """Replace the SDK's timestamped job name so two compiles give the same bytes."""
    for step in all_steps(definition["Steps"]):
        hps = step["Arguments"].get("TrainingJobDefinition", step["Arguments"]).get("StaticHyperParameters") \
            or step["Arguments"].get("HyperParameters") or {}
        if "sagemaker_job_name" in hps:
            hps["sagemaker_job_name"] = json.dumps(f"{pipeline_name}-{step['Name']}")
    return definition


def all_steps(steps: list[dict]):
    """Every step of a definition's `Steps`, those under conditions included."""
    for step in steps:
        yield step
        if step["Type"] == "Condition":
            yield from all_steps(step["Arguments"]["IfSteps"] + step["Arguments"]["ElseSteps"])


class _Builder:
    """Turns each dsl step into the SDK step that SageMaker's JSON comes from."""

    def __init__(self, pipeline: dsl.Pipeline, cfg: Config, sdk, code: dict):
        self.cfg, self.sdk = cfg, sdk
        if not cfg.region:
            raise ConfigError("compile needs a region (image URIs are regional): pass --region or set AWS_REGION")
        self.region = cfg.region
        self.role = cfg.role_arn or PLACEHOLDER_ROLE
        self.session = _offline_session(sdk, self.region, cfg.artifact_bucket)
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
        options = {"depends_on": [a if isinstance(a, str) else a.name for a in step.after] or None}
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

    # -- security: only what is configured, so the default JSON carries no empty settings --

    def _encryption(self) -> dict:
        kms = self.cfg.kms_key_id
        return {"volume_kms_key": kms, "output_kms_key": kms} if kms else {}

    def _network(self) -> dict:
        cfg, out = self.cfg, {}
        if cfg.subnets:
            out.update(subnets=list(cfg.subnets), security_group_ids=list(cfg.security_group_ids))
        if cfg.network_isolation:
            out["enable_network_isolation"] = True
        if cfg.encrypt_inter_container_traffic:
            out["encrypt_inter_container_traffic"] = True
        return out

    def _processing_network(self) -> dict:
        network = self._network()
        return {"network_config": self.sdk.NetworkConfig(**network)} if network else {}

    def _model_network(self) -> dict:
        network = self._network()
        out = {"enable_network_isolation": True} if network.get("enable_network_isolation") else {}
        if network.get("subnets"):
            out["vpc_config"] = {"Subnets": network["subnets"], "SecurityGroupIds": network["security_group_ids"]}
        return out

    # -- steps --

    def _processing(self, step: dsl.Processing):
        sdk = self.sdk
        processor = sdk.ScriptProcessor(
            image_uri=self._image(step, "training", step.instance_type), command=["python3"], role=self.role,
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            sagemaker_session=self.session, **self._encryption(), **self._processing_network(),
        )
        code = self._asset(step.script)
        inputs = [sdk.ProcessingInput(source=self.value(v), destination=f"/opt/ml/processing/input/{k}", input_name=k,
                                      s3_data_distribution_type=_distribution(v))
                  for k, v in step.inputs_.items()]
        outputs = [sdk.ProcessingOutput(
            output_name=name, source=f"/opt/ml/processing/output/{name}",
            destination=sdk.Join(on="/", values=[f"{self.cfg.s3_root}/runs", sdk.ExecutionVariables.PIPELINE_EXECUTION_ID,
                                                 step.name, name]))
            for name in step.outputs]
        for report, declared in step.reports.items():
            self.property_files[(step.name, report)] = sdk.PropertyFile(
                name=_property_file_name(report), output_name=declared.output, path=declared.file)
        args = processor.run(code=code, inputs=inputs, outputs=outputs,
                             arguments=[self.text(a) for a in step.arguments] or None)
        return sdk.ProcessingStep(
            step.name, step_args=args, cache_config=self._cache(step), **self._job_options(step),
            property_files=[self.property_files[(step.name, r)] for r in step.reports] or None,
        )

    def _estimator(self, step: dsl.Training):
        """The SDK's estimator for the step's framework (script mode), or the generic one for an image URI."""
        common = dict(
            entry_point=step.entry_point, source_dir=self._asset(step.source_dir), role=self.role,
            image_uri=self._image(step, "training", step.instance_type),
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            output_path=f"{self.cfg.s3_root}/models/{step.name}",
            hyperparameters={k: self.value(v) for k, v in step.hyperparameters.items()},
            metric_definitions=_metric_definitions(step),
            sagemaker_session=self.session, **self._encryption(), **self._network(),
        )
        image = step.image
        if isinstance(image, str):
            return self.sdk.Estimator(**common)
        image = _pinned(image)
        cls = getattr(self.sdk, ESTIMATORS[image.framework])
        if image.framework == "huggingface":
            base, version = re.fullmatch(r"(pytorch|tensorflow)(.+)", image.base).groups()
            return cls(transformers_version=image.version, **{f"{base}_version": version},
                       py_version=image.py_version, **common)
        # TensorFlow would add a model_dir hyperparameter of its own: the script gets only what the step names.
        extra = {"model_dir": False} if image.framework == "tensorflow" else {}
        return cls(framework_version=image.version, py_version=image.py_version or "py3", **extra, **common)

    def _channels(self, step: dsl.Training) -> dict:
        return {name: self.sdk.TrainingInput(self.value(v), distribution=_distribution(v))
                for name, v in step.channels.items()}

    def _training(self, step: dsl.Training):
        args = self._estimator(step).fit(inputs=self._channels(step))
        return self.sdk.TrainingStep(step.name, step_args=args, cache_config=self._cache(step),
                                     **self._job_options(step))

    def _tuning(self, step: dsl.Tuning):
        tuner = self.sdk.HyperparameterTuner(
            self._estimator(step), step.objective.metric,
            {name: self._range(r) for name, r in step.ranges.items()},
            metric_definitions=_metric_definitions(step),
            objective_type=step.objective.direction, strategy=step.strategy,
            max_jobs=self.value(step.max_jobs), max_parallel_jobs=self.value(step.max_parallel),
            random_seed=step.random_seed,
        )
        args = tuner.fit(inputs=self._channels(step))
        return self.sdk.TuningStep(step.name, step_args=args, cache_config=self._cache(step),
                                   **self._job_options(step))

    def _range(self, r):
        sdk = self.sdk
        if isinstance(r, dsl.Continuous):
            return sdk.ContinuousParameter(r.low, r.high, scaling_type="Logarithmic" if r.log else "Linear")
        if isinstance(r, dsl.Integer):
            return sdk.IntegerParameter(r.low, r.high)
        return sdk.CategoricalParameter(list(r.values))

    def _serving_model(self, step, instance_type: str, **network):
        """The SDK model a Register or Model step serves: with `entry_point`, the framework's model class
        (its code in its own sourcedir.tar.gz, named by SAGEMAKER_SUBMIT_DIRECTORY, as the SDK does);
        without, the code inside the model archive (SERVING_ENV), which needs no repack job."""
        common = dict(image_uri=self._image(step, "inference", instance_type), model_data=self.value(step.model),
                      role=self.role, sagemaker_session=self.session, **network)
        if not step.entry_point:
            return self.sdk.Model(env=dict(SERVING_ENV), **common)
        if network.get("enable_network_isolation"):
            raise ConfigError(f"step {step.name!r}: with network_isolation, SageMaker repacks a model whose "
                              f"entry_point is named, a job compile cannot set up offline: leave entry_point out "
                              f"and have the training script copy the inference code to <model dir>/code/")
        image = _pinned(step.image)
        # code_location names the bucket, else the SDK asks S3 for its default one; nothing is uploaded,
        # since source_dir is already an s3:// bundle.
        return getattr(self.sdk, MODELS[image.framework])(
            entry_point=step.entry_point, source_dir=self._asset(step.source_dir), framework_version=image.version,
            py_version=image.py_version or "py3", code_location=f"{self.cfg.s3_root}/code", **common)

    def _register(self, step: dsl.Register):
        sdk = self.sdk
        model = self._serving_model(step, step.inference_instance_type)
        report = step.report
        declared = report.step.reports[report.name]
        report_uri = sdk.Join(on="/", values=[self.value(dsl.OutputRef(report.step, declared.output)), declared.file])
        framework = {} if isinstance(step.image, str) or step.image.framework not in REGISTRY_FRAMEWORKS else \
            dict(framework=REGISTRY_FRAMEWORKS[step.image.framework], framework_version=_pinned(step.image).version)
        args = model.register(
            content_types=list(step.content_types), response_types=list(step.content_types),
            inference_instances=[step.inference_instance_type], transform_instances=[step.inference_instance_type],
            model_package_group_name=step.group, approval_status=self.value(step.approval_status),
            model_metrics=sdk.ModelMetrics(model_statistics=sdk.MetricsSource(
                s3_uri=report_uri, content_type="application/json")),
            description=step.description or None,
            customer_metadata_properties=dict(step.metadata) or None, **framework,
        )
        return sdk.ModelStep(step.name, step_args=args, **self._job_options(step))

    def _model(self, step: dsl.Model):
        model = self._serving_model(step, step.instance_type, **self._model_network())
        return self.sdk.ModelStep(step.name, step_args=model.create(instance_type=step.instance_type),
                                  **self._job_options(step))

    def _transform(self, step: dsl.Transform):
        sdk = self.sdk
        transformer = sdk.Transformer(
            model_name=self.value(step.model.name_ref), instance_type=self.value(step.instance_type),
            instance_count=self.value(step.instance_count), accept=step.accept, assemble_with=step.assemble_with,
            max_payload=step.max_payload_mb, sagemaker_session=self.session, **self._encryption(),
            output_path=sdk.Join(on="/", values=[f"{self.cfg.s3_root}/runs",
                                                 sdk.ExecutionVariables.PIPELINE_EXECUTION_ID, step.name]),
        )
        args = transformer.transform(data=self.value(step.data), content_type=step.content_type,
                                     split_type=step.split_type)
        return sdk.TransformStep(step.name, step_args=args, cache_config=self._cache(step), **self._job_options(step))

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


def _distribution(value) -> str:
    return "ShardedByS3Key" if isinstance(value, dsl.Sharded) else "FullyReplicated"


def _property_file_name(report: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", report)) + "Report"


def _metric_definitions(step: dsl.Training) -> list[dict]:
    return [{"Name": name, "Regex": regex} for name, regex in step.metrics.items()]


def _pinned(image: dsl.Image) -> dsl.Image:
    """`image` with its version: "sklearn" and "xgboost" without one are the project's pinned versions."""
    return image if image.version else dataclasses.replace(image, version=PINNED_VERSIONS[image.framework])


@functools.lru_cache(maxsize=None)
def _image_uri(sdk, image: dsl.Image, region: str, instance_type: str, scope: str) -> str:
    """Cached: each lookup makes the SDK load botocore's endpoint data anew (a tenth of a second)."""
    return sdk.image_uris.retrieve(image.framework, region=region, version=image.version, py_version=image.py_version,
                                   instance_type=instance_type, image_scope=scope,
                                   base_framework_version=image.base)


@functools.lru_cache(maxsize=None)
def _offline_session(sdk, region: str, bucket: str):
    """A PipelineSession whose every AWS request is refused, so compile provably stays offline.

    Cached: a new boto3 session reloads botocore's service models, most of a compile's time.
    """
    import boto3

    boto = boto3.Session(region_name=region, aws_access_key_id="offline", aws_secret_access_key="offline")

    def refuse(**kwargs):
        raise AwsCallDuringCompile(f"compile tried to call AWS ({kwargs.get('event_name')}); it must stay offline")

    boto.events.register("before-send", refuse)
    # An explicit SDK config, so the machine's ~/.config/sagemaker/config.yaml cannot add its KMS keys
    # or tags to the JSON; then none at all, as the SDK re-validates a non-empty one at every lookup.
    session = sdk.PipelineSession(boto_session=boto, default_bucket=bucket, sagemaker_config={"SchemaVersion": "1.0"})
    session.sagemaker_config = {}
    return session


class _Sdk:
    """The SageMaker SDK names this module uses, imported once and quietly."""

    def __init__(self):
        os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
        for name in ("sagemaker", "sagemaker.config"):
            logging.getLogger(name).setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sagemaker import image_uris
            from sagemaker.estimator import Estimator
            from sagemaker.huggingface import HuggingFace
            from sagemaker.inputs import TrainingInput
            from sagemaker.model import Model
            from sagemaker.model_metrics import MetricsSource, ModelMetrics
            from sagemaker.network import NetworkConfig
            from sagemaker.processing import ProcessingInput, ProcessingOutput, ScriptProcessor
            from sagemaker.pytorch import PyTorch
            from sagemaker.sklearn import SKLearn, SKLearnModel
            from sagemaker.tensorflow import TensorFlow
            from sagemaker.transformer import Transformer
            from sagemaker.tuner import (CategoricalParameter, ContinuousParameter, HyperparameterTuner,
                                         IntegerParameter)
            from sagemaker.workflow.condition_step import ConditionStep
            from sagemaker.workflow.conditions import (ConditionGreaterThan, ConditionGreaterThanOrEqualTo,
                                                       ConditionLessThan, ConditionLessThanOrEqualTo)
            from sagemaker.workflow.entities import PipelineVariable
            from sagemaker.workflow.execution_variables import ExecutionVariables
            from sagemaker.workflow.fail_step import FailStep
            from sagemaker.workflow.functions import Join, JsonGet
            from sagemaker.workflow.model_step import ModelStep
            from sagemaker.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
            from sagemaker.workflow.pipeline import Pipeline
            from sagemaker.workflow.pipeline_context import PipelineSession
            from sagemaker.workflow.pipeline_definition_config import PipelineDefinitionConfig
            from sagemaker.workflow.properties import PropertyFile
            from sagemaker.workflow.retry import SageMakerJobExceptionTypeEnum as JobError
            from sagemaker.workflow.retry import SageMakerJobStepRetryPolicy, StepRetryPolicy
            from sagemaker.workflow.retry import StepExceptionTypeEnum as StepError
            from sagemaker.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep, TuningStep
            from sagemaker.xgboost import XGBoost, XGBoostModel
        self.__dict__.update({k: v for k, v in locals().items() if k != "self"})
        from sagemaker.telemetry import telemetry_logging

        # estimator.fit reports to AWS over HTTP with `requests`, outside the botocore hook that keeps
        # compile offline. The SDK's switch for it is a non-empty SDK config, which costs seconds per
        # compile (see _offline_session), so the report is switched off here instead.
        telemetry_logging._send_telemetry_request = lambda *args, **kwargs: None


_SDK: _Sdk | None = None


def _sdk() -> _Sdk:
    global _SDK
    if _SDK is None:
        _SDK = _Sdk()
    return _SDK
