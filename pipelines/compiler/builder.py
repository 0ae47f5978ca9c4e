"""Definition + config -> SageMaker pipeline definition JSON, spelled by the project itself.

Pure: no AWS call, no SageMaker SDK, and the same definition and config give the same bytes.
Each step's settings are decided here, once, and written as a `spec.Step` whose arguments are
SageMaker's own request (`requests`); images come from the project's table (`images`).
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import dsl, spec
from pipelines.bundles import file_asset, folder_asset
from pipelines.compiler import requests
from pipelines.compiler.images import ImageError, image_uri
from pipelines.config import Config, ConfigError

SKLEARN_VERSION = "1.4-2"
XGBOOST_VERSION = "3.0-5"
PINNED_VERSIONS = {"sklearn": SKLEARN_VERSION, "xgboost": XGBOOST_VERSION}  # image="sklearn" / "xgboost"
# dsl framework -> the ModelPackage container's Framework.
REGISTRY_FRAMEWORKS = {"sklearn": "SKLEARN", "xgboost": "XGBOOST", "pytorch": "PYTORCH", "tensorflow": "TENSORFLOW"}
CACHE_EXPIRY = "P30D"
# Local placeholder: compile and local runs need a role in the JSON; upsert refuses it.
PLACEHOLDER_ROLE = "arn:aws:iam::000000000000:role/set-role-arn-to-deploy"
# The model archive carries its inference code in code/ (training_scripts/train.py puts it there),
# so registering or creating a model needs no repack job.
SERVING_ENV = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}
# Transient job failures a job step retries, and API faults a Register or Model step retries.
JOB_ERRORS = ("SageMaker.JOB_INTERNAL_ERROR", "SageMaker.CAPACITY_ERROR")
STEP_ERRORS = ("Step.SERVICE_FAULT", "Step.THROTTLING")
# SageMaker's names of the steps a Register or Model step becomes.
JSON_SUFFIXES = {dsl.Register: "-RegisterModel", dsl.Model: "-CreateModel"}
OPERATORS = {">=": "GreaterThanOrEqualTo", ">": "GreaterThan", "<=": "LessThanOrEqualTo", "<": "LessThan"}


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


def compile_pipeline(pipeline: dsl.Pipeline, cfg: Config) -> Compiled:
    """The definition JSON and code bundles. The pipeline's objects go under its own prefix: the
    config's `prefix`, else the pipeline's name."""
    pipeline.validate()
    cfg = dataclasses.replace(cfg, pipeline_name=pipeline.name)
    code = code_assets(pipeline, cfg)
    return Compiled(
        name=pipeline.name,
        display_name=pipeline.display_name,
        description=pipeline.description,
        tags=cfg.all_tags(),
        definition=spec.write(build(pipeline, cfg, code)),
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


def build(pipeline: dsl.Pipeline, cfg: Config, code: dict) -> spec.Definition:
    """The definition of a validated pipeline whose code bundles are `code` (`code_assets`)."""
    if not cfg.region:
        raise ConfigError("compile needs a region (image URIs are regional): pass --region or set AWS_REGION")
    builder = _Builder(pipeline, cfg, code)
    return spec.Definition(
        parameters=tuple(_parameter(p) for p in pipeline.parameters.values()),
        experiment_config={"ExperimentName": spec.get("Execution.PipelineName"),
                           "TrialName": spec.get("Execution.PipelineExecutionId")},
        steps=tuple(builder.steps[s.name] for s in pipeline.top_level()),
    )


def _parameter(p: dsl.Parameter) -> spec.Parameter:
    return spec.Parameter(p.name, p.kind, p.default, tuple(p.enum))


def json_name(step: dsl.Step) -> str:
    """The step's name in the JSON: SageMaker calls a Register step `<name>-RegisterModel` and a
    Model step `<name>-CreateModel`."""
    return step.name + JSON_SUFFIXES.get(type(step), "")


class _Builder:
    """Turns each dsl step into the definition's step; every setting is decided here."""

    def __init__(self, pipeline: dsl.Pipeline, cfg: Config, code: dict):
        self.pipeline, self.cfg, self.code = pipeline, cfg, code
        self.region = cfg.region
        self.role = cfg.role_arn or PLACEHOLDER_ROLE
        self.network = requests.Network(tuple(cfg.subnets or ()), tuple(cfg.security_group_ids or ()),
                                        bool(cfg.network_isolation), bool(cfg.encrypt_inter_container_traffic))
        self.steps: dict[str, spec.Step] = {}
        for step in pipeline.steps.values():
            self.steps[step.name] = getattr(self, f"_{type(step).__name__.lower()}")(step)

    # -- values --

    def value(self, v):
        """A dsl value as JSON: the literal itself, or the expression SageMaker resolves at run time."""
        if isinstance(v, dsl.Parameter):
            return spec.get(f"Parameters.{v.name}")
        if isinstance(v, dsl.OutputRef):
            return spec.get(f"Steps.{v.step.name}.ProcessingOutputConfig.Outputs['{v.name}'].S3Output.S3Uri")
        if isinstance(v, dsl.ModelRef):
            return self._model_uri(v.step)
        if isinstance(v, dsl.RegisteredModelRef):
            return spec.get(f"Steps.{json_name(v.step)}.InferenceSpecification.Containers[0].ModelDataUrl")
        if isinstance(v, dsl.ModelNameRef):
            return spec.get(f"Steps.{json_name(v.step)}.ModelName")
        if isinstance(v, dsl.Sharded):
            return self.value(v.source)
        if isinstance(v, dsl.ReportValue):
            return spec.json_get(v.report.step.name, _property_file_name(v.report.name), v.path)
        return v

    def text(self, v):
        """Like value(), but always a string: a literal as str(), a String parameter as itself, any
        other expression joined into a string when it is resolved."""
        out = self.value(v)
        if not isinstance(out, dict):
            return str(out)
        return out if isinstance(v, dsl.Parameter) and v.type is str else spec.join([out])

    def hyperparameter(self, v):
        """A hyperparameter as the framework containers read it: JSON text, or an expression's string."""
        out = self.value(v)
        return self.text(v) if isinstance(out, dict) else json.dumps(out)

    def _model_uri(self, step: dsl.Training):
        if isinstance(step, dsl.Tuning):  # the best trial's model, under the tuning job's output path
            best = spec.get(f"Steps.{step.name}.TrainingJobSummaries[0].TrainingJobName")
            return spec.join(["s3:/", self.cfg.artifact_bucket, f"{self.cfg.key_prefix}/models/{step.name}", best,
                              "output/model.tar.gz"], on="/")
        return spec.get(f"Steps.{step.name}.ModelArtifacts.S3ModelArtifacts")

    def _image(self, step: dsl.Step, scope: str, instance_type) -> str:
        """The image URI of `step`: its URI as written, or the framework image of the project's table
        for the region and instance type (a parameter's default)."""
        image = step.image
        if isinstance(image, str):
            return image
        if isinstance(instance_type, dsl.Parameter):
            instance_type = instance_type.default
        try:
            return image_uri(_pinned(image), self.region, instance_type, scope)
        except ImageError as e:
            raise dsl.DefinitionError(f"step {step.name!r}: no {scope} image for {image}: {e}; or name the image "
                                      f"by its URI") from None

    def _asset(self, path: Path) -> str:
        return self.code[path][0]

    def _run_path(self, *parts: str):
        """s3://<root>/runs/<execution id>/<parts>: where a job of one execution writes."""
        return spec.join([f"{self.cfg.s3_root}/runs", spec.get("Execution.PipelineExecutionId"), *parts], on="/")

    # -- what every step has --

    def _step(self, step: dsl.Step, kind: str, arguments: dict, **extra) -> spec.Step:
        """A step with its ordering, retries (jobs retry transient failures, Register and Model API
        faults) and, for jobs, its cache."""
        errors = STEP_ERRORS if isinstance(step, (dsl.Register, dsl.Model)) else JOB_ERRORS
        retry = (spec.RetryPolicy(errors, interval_seconds=1, backoff_rate=2.0, max_attempts=step.retries),) \
            if step.retries and kind not in ("Fail", "Condition") else ()
        cache = spec.CacheConfig(step.cache, CACHE_EXPIRY) if kind in ("Processing", "Training", "Tuning",
                                                                         "Transform") else None
        return spec.Step(json_name(step), kind, arguments, depends_on=self._after(step), retry_policies=retry,
                         cache=cache, **extra)

    def _after(self, step: dsl.Step) -> tuple[spec.Dependency, ...]:
        named = [self.pipeline.steps[a] if isinstance(a, str) else a for a in step.after]
        return tuple(spec.Dependency(json_name(a)) for a in named)

    # -- steps --

    def _processing(self, step: dsl.Processing) -> spec.Step:
        arguments = requests.processing_job(
            role=self.role, image=self._image(step, "training", step.instance_type),
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            kms_key=self.cfg.kms_key_id, network=self.network, script=self._asset(step.script),
            inputs=[(k, self.value(v), f"/opt/ml/processing/input/{k}", _distribution(v))
                    for k, v in step.inputs_.items()],
            outputs=[(name, f"/opt/ml/processing/output/{name}", self._run_path(step.name, name))
                     for name in step.outputs],
            arguments=[self.text(a) for a in step.arguments],
        )
        files = tuple(spec.PropertyFile(_property_file_name(name), report.output, report.file)
                      for name, report in step.reports.items())
        return self._step(step, "Processing", arguments, property_files=files)

    def _training_job(self, step: dsl.Training) -> requests.TrainingJob:
        """What a training job is, for one job (Training) or each trial (Tuning): `entry_point` from
        `source_dir` in the step's image, the framework containers' script mode."""
        return requests.TrainingJob(
            role=self.role, image=self._image(step, "training", step.instance_type),
            framework=None if isinstance(step.image, str) else step.image.framework,
            entry_point=step.entry_point, source_dir=self._asset(step.source_dir),
            instance_type=self.value(step.instance_type), instance_count=self.value(step.instance_count),
            output_path=f"{self.cfg.s3_root}/models/{step.name}",
            hyperparameters={k: self.hyperparameter(v) for k, v in step.hyperparameters.items()},
            metric_definitions=[{"Name": name, "Regex": regex} for name, regex in step.metrics.items()],
            channels={name: (self.value(v), _distribution(v)) for name, v in step.channels.items()},
            region=self.region, kms_key=self.cfg.kms_key_id, network=self.network,
        )

    def _stopping_condition(self, step: dsl.Training) -> dict:
        """Each training job's limit: the step's max_runtime (seconds or an Integer parameter), else a day."""
        return {"MaxRuntimeInSeconds": requests.MAX_RUNTIME if step.max_runtime is None
                else self.value(step.max_runtime)}

    def _training(self, step: dsl.Training) -> spec.Step:
        return self._step(step, "Training", requests.training_job(self._training_job(step),
                                                                  self._stopping_condition(step)))

    def _tuning(self, step: dsl.Tuning) -> spec.Step:
        arguments = requests.tuning_job(
            self._training_job(step), strategy=step.strategy, random_seed=step.random_seed,
            limits={"MaxNumberOfTrainingJobs": self.value(step.max_jobs),
                    "MaxParallelTrainingJobs": self.value(step.max_parallel),
                    **({} if step.max_runtime is None else {"MaxRuntimeInSeconds": self.value(step.max_runtime)})},
            early_stopping=step.early_stopping,
            objective={"Type": step.objective.direction, "MetricName": step.objective.metric},
            ranges=self._ranges(step), stopping_condition=self._stopping_condition(step),
            job_name=f"{self.pipeline.name}-{step.name}",
        )
        return self._step(step, "Tuning", arguments)

    def _ranges(self, step: dsl.Tuning) -> dict:
        """The search space as the tuner writes it: bounds as strings; categorical values JSON-encoded
        for a framework's script mode, as they are for the generic estimator's only as text."""
        kinds = {"ContinuousParameterRanges": [], "CategoricalParameterRanges": [], "IntegerParameterRanges": []}
        encode = str if isinstance(step.image, str) else json.dumps
        for name, r in step.ranges.items():
            if isinstance(r, dsl.Categorical):
                kinds["CategoricalParameterRanges"].append({"Name": name, "Values": [encode(v) for v in r.values]})
            else:
                kind = "Continuous" if isinstance(r, dsl.Continuous) else "Integer"
                scaling = ("Logarithmic" if r.log else "Linear") if kind == "Continuous" else "Auto"
                kinds[f"{kind}ParameterRanges"].append({"Name": name, "MinValue": str(r.low), "MaxValue": str(r.high),
                                                        "ScalingType": scaling})
        return kinds

    def _container(self, step, instance_type: str, isolated: bool = False) -> dict:
        """What a Register or Model step serves: with `entry_point`, that program from its own
        sourcedir.tar.gz, which the serving image fetches (SAGEMAKER_SUBMIT_DIRECTORY, as the SDK's
        framework models write it); without, the code inside the model archive (SERVING_ENV), which
        needs no repack job."""
        image = self._image(step, "inference", instance_type)
        if not step.entry_point:
            return requests.container(image, dict(SERVING_ENV), self.value(step.model), **self._framework(step))
        if isolated:
            raise ConfigError(f"step {step.name!r}: with network_isolation, SageMaker repacks a model whose "
                              f"entry_point is named, a job compile cannot set up offline: leave entry_point out "
                              f"and have the training script copy the inference code to <model dir>/code/")
        environment = {"SAGEMAKER_PROGRAM": step.entry_point,
                       "SAGEMAKER_SUBMIT_DIRECTORY": self._asset(step.source_dir),
                       "SAGEMAKER_CONTAINER_LOG_LEVEL": str(requests.LOG_LEVEL), "SAGEMAKER_REGION": self.region}
        return requests.container(image, environment, self.value(step.model), **self._framework(step))

    def _framework(self, step) -> dict:
        """A registered container's Framework and FrameworkVersion, where the registry knows the framework."""
        if not isinstance(step, dsl.Register) or isinstance(step.image, str) \
                or step.image.framework not in REGISTRY_FRAMEWORKS:
            return {}
        return {"framework": REGISTRY_FRAMEWORKS[step.image.framework],
                "framework_version": _pinned(step.image).version}

    def _register(self, step: dsl.Register) -> spec.Step:
        report = step.report
        declared = report.step.reports[report.name]
        arguments = requests.model_package(
            group=step.group, description=step.description or None,
            metrics_uri=spec.join([self.value(dsl.OutputRef(report.step, declared.output)), declared.file], on="/"),
            metadata=dict(step.metadata) or None, container=self._container(step, step.inference_instance_type),
            content_types=list(step.content_types), instance_types=[step.inference_instance_type],
            approval_status=self.value(step.approval_status),
        )
        return self._step(step, "RegisterModel", arguments)

    def _model(self, step: dsl.Model) -> spec.Step:
        container = self._container(step, step.instance_type, self.network.isolation)
        return self._step(step, "Model", requests.model(role=self.role, container=container, network=self.network))

    def _transform(self, step: dsl.Transform) -> spec.Step:
        arguments = requests.transform_job(
            model_name=self.value(step.model.name_ref), data=self.value(step.data), content_type=step.content_type,
            split_type=step.split_type, output_path=self._run_path(step.name), kms_key=self.cfg.kms_key_id,
            assemble_with=step.assemble_with, accept=step.accept, instance_type=self.value(step.instance_type),
            instance_count=self.value(step.instance_count), max_payload=step.max_payload_mb,
        )
        return self._step(step, "Transform", arguments)

    def _fail(self, step: dsl.Fail) -> spec.Step:
        message = spec.join([self.text(part) for part in step.message], on=" ")
        return self._step(step, "Fail", {"ErrorMessage": message})

    def _conditionstep(self, step: dsl.ConditionStep) -> spec.Step:
        c = step.condition
        condition = {"Type": OPERATORS[c.op], "LeftValue": self.value(c.left), "RightValue": self.value(c.right)}
        return self._step(step, "Condition", {"Conditions": [condition]},
                          if_steps=tuple(self.steps[s.name] for s in step.then),
                          else_steps=tuple(self.steps[s.name] for s in step.otherwise))


def _distribution(value) -> str:
    return "ShardedByS3Key" if isinstance(value, dsl.Sharded) else "FullyReplicated"


def _property_file_name(report: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]", report)) + "Report"


def _pinned(image: dsl.Image) -> dsl.Image:
    """`image` with its version: "sklearn" and "xgboost" without one are the project's pinned versions."""
    return image if image.version else dataclasses.replace(image, version=PINNED_VERSIONS[image.framework])
