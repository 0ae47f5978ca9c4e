"""The project's compiler writes the JSON the SageMaker SDKs compile: byte for byte what SDK v2
writes, and what SDK v3 writes apart from the differences documented in docs/ARCHITECTURE.md
("SDK v2 and v3"), each listed here once (tests/sdk_oracle compiles with the SDK).

The installed SDK is compared in every run. v2 and v3 cannot share an environment, so the other
SDK compiles in its own interpreter, named by PIPELINES_OTHER_SDK_PYTHON (.ci/run makes that
virtualenv and sets it).
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import PROJECT_ROOT, offline_environ
from sdk_matrix import CONFIGS, cases, compile_all

from pipelines import spec

OTHER_SDK_PYTHON = os.environ.get("PIPELINES_OTHER_SDK_PYTHON")
ARCHITECTURE = (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text()


# --- the documented differences: each takes a definition to the form both SDKs share --------
# Each edits the steps' arguments of a `spec.Definition` read from the JSON, in place.


def _arguments(doc: spec.Definition, kind: str):
    return [placed.step.arguments for placed in doc.flat if placed.step.type == kind]


def _processing_io(doc):
    for arguments in _arguments(doc, "Processing"):
        yield from arguments["ProcessingInputs"]
        yield from arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])


def _training_jobs(doc):
    """Each training job's request: a Training step's arguments, a Tuning step's job definition."""
    yield from _arguments(doc, "Training")
    yield from (arguments["TrainingJobDefinition"] for arguments in _arguments(doc, "Tuning"))


def _serving_containers(doc):
    """The container of each RegisterModel and Model step."""
    for arguments in _arguments(doc, "RegisterModel"):
        yield from arguments["InferenceSpecification"]["Containers"]
    yield from (arguments["PrimaryContainer"] for arguments in _arguments(doc, "Model"))


def mlflow_config(doc):
    if doc.extra.get("MlflowConfig", "absent") is None:
        del doc.extra["MlflowConfig"]


def app_managed(doc):
    for io in _processing_io(doc):
        if io.get("AppManaged") is False:
            del io["AppManaged"]


def categorical_ranges(doc):
    for arguments in _arguments(doc, "Tuning"):
        ranges = arguments["HyperParameterTuningJobConfig"]["ParameterRanges"]
        for kind in [k for k, v in ranges.items() if v == []]:
            del ranges[kind]
        for categorical in ranges.get("CategoricalParameterRanges", []):
            categorical["Values"] = [json.loads(v) if v.startswith('"') else v for v in categorical["Values"]]


def empty_metric_definitions(doc):
    for job in _training_jobs(doc):
        if job["AlgorithmSpecification"].get("MetricDefinitions") == []:
            del job["AlgorithmSpecification"]["MetricDefinitions"]


def tuning_resource_config(doc):
    for arguments in _arguments(doc, "Tuning"):
        job = arguments["TrainingJobDefinition"]
        if "HyperParameterTuningResourceConfig" in job:
            job["ResourceConfig"] = job.pop("HyperParameterTuningResourceConfig")


def gzip_compression(doc):
    for job in _training_jobs(doc):
        if job["OutputDataConfig"].get("CompressionType") == "GZIP":
            del job["OutputDataConfig"]["CompressionType"]


def v2_estimator_hyperparameters(doc):
    for job in _training_jobs(doc):
        for key in ("sagemaker_estimator_class_name", "sagemaker_estimator_module", "sagemaker_job_name"):
            (job.get("StaticHyperParameters") or job.get("HyperParameters")).pop(key, None)


def debugger_and_profiler(doc):
    for job in _training_jobs(doc):
        job.pop("DebugHookConfig", None)
        job.pop("ProfilerConfig", None)


def metrics_time_series(doc):
    for job in _training_jobs(doc):
        job["AlgorithmSpecification"].pop("EnableSageMakerMetricsTimeSeries", None)


def channel_input_mode(doc):
    for job in _training_jobs(doc):
        for channel in job["InputDataConfig"]:
            if channel.get("InputMode") == job["AlgorithmSpecification"]["TrainingInputMode"]:
                del channel["InputMode"]


def serving_log_level_and_region(doc):
    for container in _serving_containers(doc):
        env = container["Environment"]
        if env.get("SAGEMAKER_CONTAINER_LOG_LEVEL") == "20":
            del env["SAGEMAKER_CONTAINER_LOG_LEVEL"]
        if env.get("SAGEMAKER_REGION") == container["Image"].split(".")[3]:  # <account>.dkr.ecr.<region>...
            del env["SAGEMAKER_REGION"]


def framework_fields(doc):
    for container in _serving_containers(doc):
        container.pop("Framework", None)
        container.pop("FrameworkVersion", None)


# Keyed by what docs/ARCHITECTURE.md names each difference.
DIFFERENCES = {
    "MlflowConfig": mlflow_config,
    "AppManaged": app_managed,
    "CategoricalParameterRanges": categorical_ranges,
    "MetricDefinitions": empty_metric_definitions,
    "HyperParameterTuningResourceConfig": tuning_resource_config,
    "CompressionType": gzip_compression,
    "sagemaker_estimator_class_name": v2_estimator_hyperparameters,
    "DebugHookConfig": debugger_and_profiler,
    "EnableSageMakerMetricsTimeSeries": metrics_time_series,
    "InputMode": channel_input_mode,
    "SAGEMAKER_CONTAINER_LOG_LEVEL": serving_log_level_and_region,
    "FrameworkVersion": framework_fields,
}


def shared_form(definition: str, skip: str | None = None) -> dict:
    """The definition with every documented difference (but `skip`) taken out, as JSON."""
    doc = spec.read(definition)
    for name, difference in DIFFERENCES.items():
        if name != skip:
            difference(doc)
    return spec.document(doc)


# --- the comparison --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def here() -> dict:
    """Every case compiled by the project and by the SDK installed here (tests/sdk_matrix.py)."""
    return compile_all()


@pytest.fixture(scope="module")
def there(tmp_path_factory) -> dict:
    """The same, in the interpreter that has the other SDK."""
    if not OTHER_SDK_PYTHON:
        pytest.skip("PIPELINES_OTHER_SDK_PYTHON names no interpreter with the other SageMaker SDK "
                    "(.ci/run makes one and sets it)")
    done = subprocess.run([OTHER_SDK_PYTHON, str(PROJECT_ROOT / "tests" / "sdk_matrix.py")], cwd=PROJECT_ROOT,
                          env=offline_environ(tmp_path_factory.mktemp("other-sdk")), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


CASES = sorted([*CONFIGS, *cases()])


def assert_the_sdks_json(major: int, sdk_json: str, project_json: str) -> None:
    """v2: the same bytes. v3: the same once the documented differences are taken out (and they
    are there: v3 does write differently)."""
    if major == 2:
        assert project_json == sdk_json
    else:
        assert project_json != sdk_json
        assert shared_form(project_json) == shared_form(sdk_json)


@pytest.mark.parametrize("case", CASES)
def test_the_compiler_writes_what_the_installed_sdk_compiles(here, case):
    assert_the_sdks_json(here["major"], here["sdk_json"][case], here["project_json"][case])


@pytest.mark.parametrize("case", CASES)
def test_the_compiler_writes_what_the_other_sdk_compiles(here, there, case):
    assert {here["major"], there["major"]} == {2, 3}, (here["sdk"], there["sdk"])
    assert there["project_json"][case] == here["project_json"][case]  # whichever SDK is installed
    assert_the_sdks_json(there["major"], there["sdk_json"][case], there["project_json"][case])


@pytest.fixture(scope="module")
def v3_json(here, request) -> dict:
    """{case: JSON} as SDK v3 compiles it: here, or in the other SDK's interpreter."""
    return (here if here["major"] == 3 else request.getfixturevalue("there"))["sdk_json"]


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_each_documented_difference_still_occurs(here, v3_json, name):
    """A difference a new SDK release removes must leave the list and the docs too."""
    assert any(shared_form(here["project_json"][c], skip=name) != shared_form(v3_json[c], skip=name) for c in CASES)


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_each_difference_is_documented_with_why_it_is_harmless(name):
    section = ARCHITECTURE.split("## SDK v2 and v3", 1)[1].split("\n## ", 1)[0]
    assert f"`{name}`" in section


# --- the local runner reads v3's JSON as well --------------------------------------------------


def _plan(definition: dict):
    from pipelines.local.plan import parse_definition, plan
    from pipelines.local.steps import IN_PROCESS

    return plan(parse_definition(json.dumps(definition)), in_process=IN_PROCESS, job_types=("Processing",))


def _processing(name: str, **extra) -> dict:
    return {"Name": name, "Type": "Processing", "Arguments": {}, **extra}


@pytest.mark.parametrize("mlflow", [None, {"MlflowResourceArn": "arn:aws:sagemaker:us-east-1:1:mlflow-tracking-server/t",
                                           "MlflowExperimentName": "purchase-intent"}])
def test_the_local_runner_plans_v3_json_with_mlflow_config_and_run_conditions(mlflow):
    steps = _plan({"Version": "2020-12-01", "MlflowConfig": mlflow, "Parameters": [], "Steps": [
        _processing("A"), _processing("B"),
        _processing("C", DependsOn=[{"Step": "A", "Trigger": "Completed"}, "B"])]})
    assert list(steps) == ["A", "B", "C"] and steps["C"].needs == {"A", "B"}


@pytest.mark.parametrize("trigger", ["Failed", "Stopped", "Any"])
def test_a_run_condition_the_local_runner_cannot_honour_is_refused_by_name(trigger):
    from pipelines.local.plan import RunError

    with pytest.raises(RunError, match=f"step B runs when A is {trigger}: the local runner runs a step only after"):
        _plan({"Steps": [_processing("A"), _processing("B", DependsOn=[{"Step": "A", "Trigger": trigger}])]})


@pytest.mark.parametrize("entry, reason", [({"Trigger": "Completed"}, "a DependsOn entry needs a Step name"),
                                           (7, "DependsOn entries are step names, got 7")])
def test_a_malformed_depends_on_entry_is_a_one_line_error(entry, reason):
    from pipelines.local.plan import RunError

    with pytest.raises(RunError, match=reason):
        _plan({"Steps": [_processing("A"), _processing("B", DependsOn=[entry])]})
