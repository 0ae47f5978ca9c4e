"""Every property the SDK can reference for the supported step types resolves locally, with its shape.

The cases are generated from the SDK's own property trees (`sagemaker.workflow.properties`, built from
botocore's SageMaker shapes) over the records of two runs of the abalone sample (with a TrainingStep
and with a TuningStep), so every step type the runner supports answers for every path the SDK offers:
each member SageMaker always returns is there, and each member there has the shape's type.
"""
from __future__ import annotations

import botocore.session
import pytest

from conftest import SDK_V2_SAMPLES, steps_of
from fixtures.aws_samples.data import abalone_rows
from pipelines.local import LocalHome, open_store, run_pipeline
from pipelines.local.expressions import ExpressionError, Scope, evaluate
from pipelines.sdk_pipelines import offline
from pipelines.local.staging import stage

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
BUCKET = "abalone-properties"

pytestmark = SDK_V2_SAMPLES
SHAPES = {  # the SDK's `properties` of each step type (sagemaker/workflow/steps.py, _utils.py)
    "Processing": ["DescribeProcessingJobResponse"],
    "Training": ["DescribeTrainingJobResponse"],
    "Tuning": ["DescribeHyperParameterTuningJobResponse", "ListTrainingJobsForHyperParameterTuningJobResponse"],
    "Transform": ["DescribeTransformJobResponse"],
    "Model": ["DescribeModelOutput"],
    "RegisterModel": ["DescribeModelPackageOutput"],
}
# Members SageMaker returns for every finished job of these kinds, beyond the shape's `required` ones.
ALWAYS = {
    "DescribeProcessingJobResponse": ["ProcessingStartTime", "ProcessingEndTime", "LastModifiedTime", "RoleArn"],
    "DescribeTrainingJobResponse": ["AlgorithmSpecification", "RoleArn", "ResourceConfig", "OutputDataConfig",
                                    "TrainingStartTime", "TrainingEndTime", "LastModifiedTime",
                                    "SecondaryStatusTransitions", "FinalMetricDataList", "EnableNetworkIsolation",
                                    "EnableInterContainerTrafficEncryption", "EnableManagedSpotTraining",
                                    "TrainingTimeInSeconds", "BillableTimeInSeconds", "HyperParameters"],
    "DescribeHyperParameterTuningJobResponse": ["TrainingJobDefinition", "HyperParameterTuningEndTime",
                                                "LastModifiedTime", "BestTrainingJob"],
    "DescribeTransformJobResponse": ["TransformOutput", "TransformStartTime", "TransformEndTime", "MaxPayloadInMB",
                                     "BatchStrategy"],
    "DescribeModelOutput": ["PrimaryContainer", "ExecutionRoleArn", "EnableNetworkIsolation"],
    "DescribeModelPackageOutput": ["ModelPackageGroupName", "ModelPackageVersion", "InferenceSpecification",
                                   "ModelApprovalStatus", "LastModifiedTime", "CertifyForMarketplace", "ModelMetrics"],
}
# Local additions a SageMaker response does not have, which the run report and the registry read.
LOCAL_EXTRAS = {"DescribeModelPackageOutput": {"Metrics", "PipelineExecutionId"}}


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Step records by type, from the abalone sample run with training and with tuning."""
    from fixtures.aws_samples.abalone.pipeline import get_pipeline

    tmp = tmp_path_factory.mktemp("properties")
    home = LocalHome(tmp / "home")
    store = open_store(None, root=home.s3)
    data = tmp / "abalone.csv"
    abalone_rows(200).to_csv(data, header=False, index=False)
    (tmp / "batch").mkdir()
    (tmp / "batch" / "rows.csv").write_text("\n".join([",".join(["0.1"] * 7 + ["0", "1", "0"])] * 3) + "\n")
    stage(store, [f"s3://{BUCKET}/abalone/abalone-dataset.csv={data}",
                  f"s3://{BUCKET}/abalone/abalone-dataset-batch={tmp / 'batch'}"])
    by_type = {}
    for tuning in (False, True):
        with offline(buckets=[BUCKET]) as sdk:
            pipeline = get_pipeline("us-east-1", ROLE, BUCKET, tuning=tuning, pipeline_name=f"Abalone{tuning}")
            definition, _ = sdk.export(pipeline, tmp / f"build-{tuning}")
        stage(store, [f"s3://{BUCKET}={tmp / f'build-{tuning}' / 's3' / BUCKET}"])
        record = run_pipeline(definition.read_text(), pipeline_name=pipeline.name, home=home, store=store)
        assert record["status"] == "Succeeded", record["failure_reason"]
        for step in steps_of(record).values():
            if step["status"] == "Succeeded" and step["type"] in SHAPES:
                by_type[step["type"]] = step
    assert sorted(by_type) == sorted(SHAPES)
    return by_type


def _model():
    return botocore.session.get_session().get_service_model("sagemaker")


def _conformance(value, shape, path: str, extras=frozenset()) -> list[str]:
    """Where `value` differs from botocore's `shape`: a wrong type, or a member the shape does not have."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not an object"]
        problems = [f"{path}.{key}: not a member of {shape.name}" for key in value
                    if key not in shape.members and key not in extras]
        for key, member in shape.members.items():
            if key in value:
                problems += _conformance(value[key], member, f"{path}.{key}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__}, not a list"]
        return [p for i, item in enumerate(value) for p in _conformance(item, shape.member, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__}, not a map"]
        return [p for k, v in value.items() for p in _conformance(v, shape.value, f"{path}['{k}']")]
    expected = {"string": str, "timestamp": str, "boolean": bool, "integer": int, "long": int,
                "float": (int, float), "double": (int, float), "blob": (str, bytes)}[kind]
    if not isinstance(value, expected) or (kind in ("integer", "long") and isinstance(value, bool)):
        return [f"{path}: {value!r} is not a {kind}"]
    return []


def _missing(value, shape, path: str, also=()) -> list[str]:
    """Members SageMaker always returns (`required`, and `also` at the top) that `value` lacks."""
    if shape.type_name == "structure" and isinstance(value, dict):
        problems = [f"{path}.{key}" for key in [*shape.required_members, *also] if key not in value]
        for key, member in shape.members.items():
            if key in value:
                problems += _missing(value[key], member, f"{path}.{key}")
        return problems
    if shape.type_name == "list" and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _missing(item, shape.member, f"{path}[{i}]")]
    return []


CASES = [(step_type, shape) for step_type, shapes in SHAPES.items() for shape in shapes]


@pytest.mark.parametrize("step_type, shape_name", CASES)
def test_each_response_has_the_shape_sagemaker_gives_it(records, step_type, shape_name):
    response = records[step_type]["response"]
    shape = _model().shape_for(shape_name)
    # A step whose properties join several shapes (Tuning) answers with the members of all of them.
    siblings = {m for other in SHAPES[step_type] if other != shape_name for m in _model().shape_for(other).members}
    assert _missing(response, shape, step_type, ALWAYS.get(shape_name, ())) == []
    assert _conformance(response, shape, step_type, LOCAL_EXTRAS.get(shape_name, set()) | siblings) == []


def _sdk_paths(properties, depth: int = 4):
    """Every property expression the SDK offers below `properties`: structure members by attribute,
    lists at [0], maps at one of their keys (as `PropertiesList`/`PropertiesMap` build them)."""
    from sagemaker.workflow.properties import Properties, PropertiesList, PropertiesMap

    for name, child in vars(properties).items():
        if name.startswith("_") or not isinstance(child, Properties):
            continue
        yield child
        if depth > 1:
            if isinstance(child, PropertiesList):
                yield from _sdk_paths(child[0], depth - 1)
            elif isinstance(child, PropertiesMap):
                continue
            else:
                yield from _sdk_paths(child, depth - 1)


def _sdk_properties(step_type: str, name: str):
    from sagemaker.workflow.properties import Properties

    return Properties(step_name=name, shape_names=SHAPES[step_type])


@pytest.mark.parametrize("step_type", SHAPES)
def test_every_sdk_property_that_sagemaker_would_return_resolves_locally(records, step_type):
    step = records[step_type]
    scope = Scope(parameters={}, execution={}, steps={step["name"]: step})
    shapes = [_model().shape_for(name) for name in SHAPES[step_type]]
    resolved, unresolved = 0, []
    for prop in _sdk_paths(_sdk_properties(step_type, step["name"])):
        expression = prop.expr
        path = expression["Get"][len(f"Steps.{step['name']}."):]
        try:
            evaluate(expression, scope)
            resolved += 1
        except ExpressionError:
            if _always_returned(path, shapes, step["response"]):
                unresolved.append(path)
    assert unresolved == []
    assert resolved > 5  # the tree was really walked


def _always_returned(path: str, shapes, response) -> bool:
    """Whether SageMaker returns `path` for this response: each segment is required or always returned
    (ALWAYS) where its parent is present, or present in the local response."""
    from pipelines.local.expressions import Key, parse_path

    segments = parse_path(path, path)
    shape = next((s for s in shapes if segments[0] in s.members), None)
    if shape is None:
        return False
    value = response
    for depth, segment in enumerate(segments):
        if isinstance(segment, int) or isinstance(segment, Key):
            if not isinstance(value, list) or not value:
                return False  # an empty list has no [0]: SageMaker's would not either
            value, shape = value[0], shape.member
            continue
        wanted = segment in shape.required_members or (depth == 0 and segment in ALWAYS.get(shape.name, ()))
        if not isinstance(value, dict) or segment not in value:
            return wanted
        value, shape = value[segment], shape.members[segment]
    return True
