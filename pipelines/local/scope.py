"""What the local runner supports, checked before anything runs.

A definition that needs something the runner does not emulate must be refused
with the reason before its first step runs, not after an hour of
preprocessing. The same checks guard each job when it starts (where every
value is known); before the run, values that depend on other steps' results
are not known yet and are skipped (`UNRESOLVED`).

The supported scope (README "Local runs" repeats it):

- step types: Processing, Training, Tuning, Transform, Condition, Fail,
  RegisterModel, Model (CreateModel, from an image or a model package version
  the local registry holds);
- images: the scikit-learn and XGBoost images of `pipelines.local.images`;
  training in script mode (``sagemaker_program``) on either, or the built-in
  XGBoost algorithm on the XGBoost image;
- inputs: S3Prefix data, File or FastFile mode, uncompressed; processing
  inputs and outputs on S3 only; transform with SplitType None or Line and no
  DataProcessing filters; tuning with one TrainingJobDefinition and the
  Random, Grid or Bayesian strategy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from pipelines.local.container import host_path
from pipelines.local.expressions import ExpressionError, Scope, evaluate, is_expression
from pipelines.local.images import XGBOOST, UnknownImage, image_for
from pipelines.local.plan import Step

UNRESOLVED = type("Unresolved", (), {"__repr__": lambda self: "<depends on another step>"})()
TUNING_STRATEGIES = ("Random", "Grid", "Bayesian")


def known(value: Any) -> bool:
    return value is not UNRESOLVED


def image_problem(uri: Any) -> str | None:
    if not known(uri):
        return None
    try:
        image_for(uri)
    except UnknownImage as exc:
        return str(exc)
    return None


def _source(what: str, data_type: Any, compression: Any, input_mode: Any) -> Iterator[str]:
    if known(data_type) and data_type not in (None, "S3Prefix"):
        yield f"{what}: S3DataType {data_type} is not supported locally (use S3Prefix)"
    if known(compression) and compression not in (None, "None"):
        yield f"{what}: compression {compression} is not supported locally"
    if known(input_mode) and input_mode not in (None, "File", "FastFile"):
        yield f"{what}: input mode {input_mode} is not supported locally (use File)"


def processing(request: dict) -> Iterator[str]:
    app = request.get("AppSpecification") or {}
    if problem := image_problem(app.get("ImageUri")):
        yield problem
    if known(app.get("ContainerEntrypoint")) and not app.get("ContainerEntrypoint"):
        yield "AppSpecification.ContainerEntrypoint is required locally (an image's own entrypoint is not emulated)"
    outputs = (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []
    for item, kind in [(i, "S3Input") for i in request.get("ProcessingInputs") or []] + \
                      [(o, "S3Output") for o in outputs]:
        name = item.get("InputName") or item.get("OutputName")
        spec = item.get(kind)
        if spec is None:
            yield f"{name}: only {kind} is supported locally (not Athena, Redshift or FeatureStore)"
            continue
        if isinstance(spec.get("LocalPath"), str):
            try:
                host_path(Path("/"), spec["LocalPath"])
            except ValueError as exc:
                yield f"LocalPath of {name}: {exc}"
        if kind == "S3Input":
            yield from _source(f"input {name}", spec.get("S3DataType"), spec.get("S3CompressionType"),
                               spec.get("S3InputMode"))


def training(request: dict) -> Iterator[str]:
    algorithm = request.get("AlgorithmSpecification") or {}
    image = algorithm.get("TrainingImage")
    if problem := image_problem(image):
        yield problem
    elif known(image) and "sagemaker_program" not in (request.get("HyperParameters") or {}):
        count = (request.get("ResourceConfig") or {}).get("InstanceCount", 1)
        if image_for(image).family != XGBOOST:
            yield ("no sagemaker_program hyperparameter: without a script only the built-in XGBoost algorithm "
                   "runs locally (on the XGBoost image)")
        elif known(count) and int(count) > 1:
            yield (f"the built-in XGBoost algorithm on {count} instances (distributed training) is not emulated "
                   "locally: use InstanceCount 1")
    if algorithm.get("AlgorithmName"):
        yield "AlgorithmSpecification.AlgorithmName (a marketplace algorithm) is not supported locally"
    if not (request.get("OutputDataConfig") or {}).get("S3OutputPath"):
        yield "OutputDataConfig.S3OutputPath is required"
    mode = algorithm.get("TrainingInputMode")
    script = "sagemaker_program" in (request.get("HyperParameters") or {})
    count = (request.get("ResourceConfig") or {}).get("InstanceCount", 1)
    for channel in request.get("InputDataConfig") or []:
        name, source = channel.get("ChannelName"), (channel.get("DataSource") or {}).get("S3DataSource")
        if source is None:
            yield f"channel {name}: only S3DataSource is supported locally"
        elif source.get("S3DataType") == "AugmentedManifestFile":
            yield from _augmented(f"channel {name}", source, channel, channel.get("InputMode") or mode, script, count)
        else:
            yield from _source(f"channel {name}", source.get("S3DataType"), channel.get("CompressionType"),
                               channel.get("InputMode") or mode)


def _augmented(what: str, source: dict, channel: dict, mode: Any, script: bool, count: Any) -> Iterator[str]:
    """An augmented manifest channel: streamed in Pipe mode, as SageMaker accepts it (pipes.py)."""
    if known(mode) and mode != "Pipe":
        yield f"{what}: S3DataType AugmentedManifestFile needs InputMode Pipe (SageMaker refuses it in {mode} mode)"
    if not source.get("AttributeNames"):
        yield f"{what}: S3DataType AugmentedManifestFile needs AttributeNames (the manifest's attributes to stream)"
    if known(channel.get("RecordWrapperType")) and channel.get("RecordWrapperType") not in (None, "None", "RecordIO"):
        yield f"{what}: RecordWrapperType must be None or RecordIO"
    if known(channel.get("CompressionType")) and channel.get("CompressionType") not in (None, "None"):
        yield f"{what}: compression {channel['CompressionType']} is not supported locally"
    if source.get("S3DataDistributionType") == "ShardedByS3Key" and (not known(count) or int(count) > 1):
        yield f"{what}: an augmented manifest ShardedByS3Key across instances is not emulated locally (use 1 instance)"
    if not script:
        yield f"{what}: an augmented manifest reaches script-mode entry points only locally (the built-in " \
              f"algorithms' Pipe mode is not emulated)"


def tuning(request: dict) -> Iterator[str]:
    config = request.get("HyperParameterTuningJobConfig") or {}
    definition = request.get("TrainingJobDefinition")
    if definition is None:
        yield "only a single TrainingJobDefinition is supported locally (not TrainingJobDefinitions)"
    else:
        hyperparameters = {**(definition.get("StaticHyperParameters") or {})}
        yield from training({**definition, "HyperParameters": hyperparameters,
                             "ResourceConfig": definition.get("HyperParameterTuningResourceConfig")})
    if not config.get("HyperParameterTuningJobObjective"):
        yield "HyperParameterTuningJobObjective is required"
    strategy = config.get("Strategy", "Bayesian")
    if known(strategy) and strategy not in TUNING_STRATEGIES:
        yield f"tuning strategy {strategy} is not supported locally (use {', '.join(TUNING_STRATEGIES)})"
    if request.get("WarmStartConfig"):
        yield "WarmStartConfig is not supported locally (the local runner keeps no earlier tuning jobs)"


def transform(request: dict) -> Iterator[str]:
    data_in = request.get("TransformInput") or {}
    source = (data_in.get("DataSource") or {}).get("S3DataSource")
    if source is None:
        yield "TransformInput: only S3DataSource is supported locally"
    else:
        yield from _source("TransformInput", source.get("S3DataType"), data_in.get("CompressionType"), None)
    split = data_in.get("SplitType", "None")
    if known(split) and split not in ("None", "Line"):
        yield f"SplitType {split} is not supported locally (use Line or None)"
    filters = request.get("DataProcessing") or {}
    if any(filters.get(k, "$") != "$" for k in ("InputFilter", "OutputFilter")) or \
            filters.get("JoinSource", "None") != "None":
        yield "DataProcessing (input/output filters, JoinSource) is not supported locally"


def model(request: dict) -> Iterator[str]:
    containers = [request.get("PrimaryContainer"), *(request.get("Containers") or [])]
    for container in filter(None, containers):
        if "Image" not in container and container.get("ModelPackageName"):
            continue  # the version's image, known once the registry resolves it (`refusals`, `run_model`)
        if problem := image_problem(container.get("Image")):
            yield problem


CHECKS = {"Processing": processing, "Training": training, "Tuning": tuning, "Transform": transform, "Model": model}


def refusals(steps: dict[str, Step], scope: Scope, store, registry=None) -> list[str]:
    """Everything in the definition the runner would refuse, and every input it already knows is missing:
    missing from the store and from the fixed S3 destinations of the steps that run before it, and
    model package versions missing from `registry` (a `Registry`)."""
    problems = []
    requests = {name: resolve_known(step.arguments, scope) for name, step in steps.items()}
    for step in steps.values():
        request = requests[step.name]
        if step.type == "Model" and registry is not None:
            try:
                request = registry.model_containers(request)
            except LookupError as exc:
                problems.append(f"step {step.name}: {exc}")
        written = [uri for name in _upstream(step.name, steps) for uri in _outputs(steps[name].type, requests[name])]
        problems += [f"step {step.name}: {problem}" for problem in CHECKS.get(step.type, _nothing)(request)]
        problems += [f"step {step.name}: {problem}" for problem in _missing(step.type, request, store, written)]
    return problems


def _missing(step_type: str, request: dict, store, written: list[str]) -> Iterator[str]:
    for uri in _inputs(step_type, request):
        if any(uri == prefix or uri.startswith(prefix.rstrip("/") + "/") for prefix in written):
            continue  # an earlier step writes it (a ProcessingOutput with a fixed S3Uri, say) before this one reads it
        try:
            found = store.list(uri)
        except ValueError as exc:  # a key the store refuses ('..')
            yield str(exc)
            continue
        if not found:
            yield f"{uri} is not in the local store; stage it with --stage {uri}=LOCAL_PATH"


def _upstream(name: str, steps: dict[str, Step]) -> set[str]:
    """Every step that must succeed before `name` runs (its needs, theirs, and so on)."""
    found, todo = set(), list(steps[name].needs)
    while todo:
        step = todo.pop()
        if step not in found:
            found.add(step)
            todo.extend(steps[step].needs)
    return found


def _outputs(step_type: str, request: dict) -> list[str]:
    """The s3:// prefixes a job of this request writes, where the definition already fixes them."""
    if step_type == "Processing":
        uris = [(o.get("S3Output") or {}).get("S3Uri")
                for o in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []]
    elif step_type in ("Training", "Tuning"):
        job = request.get("TrainingJobDefinition") or {} if step_type == "Tuning" else request
        uris = [(job.get("OutputDataConfig") or {}).get("S3OutputPath")]
    elif step_type == "Transform":
        uris = [(request.get("TransformOutput") or {}).get("S3OutputPath")]
    else:
        uris = []
    return [uri for uri in uris if isinstance(uri, str) and uri.startswith("s3://")]


def _nothing(request: dict) -> Iterator[str]:
    return iter(())


def resolve_known(obj: Any, scope: Scope) -> Any:
    """`obj` with each expression replaced by its value now, or UNRESOLVED where that needs a later result."""
    if isinstance(obj, dict):
        try:
            if is_expression(obj):
                return evaluate(obj, scope)
        except ExpressionError:
            return UNRESOLVED
        return {key: resolve_known(value, scope) for key, value in obj.items()}
    if isinstance(obj, list):
        return [resolve_known(value, scope) for value in obj]
    return obj


def _inputs(step_type: str, request: dict) -> list[str]:
    """The s3:// URIs a job of this request reads from the store when it starts."""
    if step_type == "Processing":
        uris = [(i.get("S3Input") or {}).get("S3Uri") for i in request.get("ProcessingInputs") or []]
    elif step_type in ("Training", "Tuning"):
        job = request.get("TrainingJobDefinition") or {} if step_type == "Tuning" else request
        uris = [((c.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
                for c in job.get("InputDataConfig") or []]
        hps = job.get("HyperParameters") or job.get("StaticHyperParameters") or {}
        submit = hps.get("sagemaker_submit_directory")
        uris.append(submit.strip('"') if isinstance(submit, str) else None)
    elif step_type == "Transform":
        uris = [((request.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource", {}).get("S3Uri")]
    else:
        uris = []
    return [uri for uri in uris if isinstance(uri, str) and uri.startswith("s3://")]
