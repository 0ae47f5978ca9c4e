"""SDK v2 and v3 compile the same definition JSON, apart from the differences documented in
docs/ARCHITECTURE.md ("SDK v2 and v3"), each listed here once.

v2 and v3 cannot share an environment, so the other SDK compiles in its own interpreter, named
by PIPELINES_OTHER_SDK_PYTHON (.ci/run makes that virtualenv and sets it).
"""
from __future__ import annotations

import copy
import json
import os
import subprocess

import pytest
from conftest import PROJECT_ROOT, offline_environ
from sdk_matrix import CONFIGS, compile_all, images

from pipelines.compiler import all_steps

OTHER_SDK_PYTHON = os.environ.get("PIPELINES_OTHER_SDK_PYTHON")
CASES = sorted([*CONFIGS, *images()])
ARCHITECTURE = (PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text()


# --- the documented differences: each takes a definition to the form both SDKs share --------


def _processing_io(doc):
    for step in all_steps(doc["Steps"]):
        if step["Type"] == "Processing":
            yield from step["Arguments"]["ProcessingInputs"]
            yield from step["Arguments"]["ProcessingOutputConfig"]["Outputs"]


def _training_jobs(doc):
    """Each training job's request: a Training step's arguments, a Tuning step's job definition."""
    for step in all_steps(doc["Steps"]):
        if step["Type"] == "Training":
            yield step["Arguments"]
        elif step["Type"] == "Tuning":
            yield step["Arguments"]["TrainingJobDefinition"]


def _registered_containers(doc):
    for step in all_steps(doc["Steps"]):
        if step["Type"] == "RegisterModel":
            yield from step["Arguments"]["InferenceSpecification"]["Containers"]


def mlflow_config(doc):
    if doc.get("MlflowConfig", "absent") is None:
        del doc["MlflowConfig"]


def app_managed(doc):
    for io in _processing_io(doc):
        if io.get("AppManaged") is False:
            del io["AppManaged"]


def empty_parameter_ranges(doc):
    for step in all_steps(doc["Steps"]):
        if step["Type"] == "Tuning":
            ranges = step["Arguments"]["HyperParameterTuningJobConfig"]["ParameterRanges"]
            for kind in [k for k, v in ranges.items() if v == []]:
                del ranges[kind]


def tuning_resource_config(doc):
    for step in all_steps(doc["Steps"]):
        if step["Type"] == "Tuning":
            job = step["Arguments"]["TrainingJobDefinition"]
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
    for container in _registered_containers(doc):
        env = container["Environment"]
        if env.get("SAGEMAKER_CONTAINER_LOG_LEVEL") == "20":
            del env["SAGEMAKER_CONTAINER_LOG_LEVEL"]
        if env.get("SAGEMAKER_REGION") == container["Image"].split(".")[3]:  # <account>.dkr.ecr.<region>...
            del env["SAGEMAKER_REGION"]


def framework_fields(doc):
    for container in _registered_containers(doc):
        container.pop("Framework", None)
        container.pop("FrameworkVersion", None)


# Keyed by what docs/ARCHITECTURE.md names each difference.
DIFFERENCES = {
    "MlflowConfig": mlflow_config,
    "AppManaged": app_managed,
    "CategoricalParameterRanges": empty_parameter_ranges,
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
    """The definition with every documented difference (but `skip`) taken out."""
    doc = copy.deepcopy(json.loads(definition))
    for name, difference in DIFFERENCES.items():
        if name != skip:
            difference(doc)
    return doc


# --- the comparison --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def by_sdk(tmp_path_factory) -> dict[int, dict]:
    """{major: {config name: definition}} from this interpreter's SDK and the other's."""
    if not OTHER_SDK_PYTHON:
        pytest.skip("PIPELINES_OTHER_SDK_PYTHON names no interpreter with the other SageMaker SDK "
                    "(.ci/run makes one and sets it)")
    here = compile_all()
    done = subprocess.run([OTHER_SDK_PYTHON, str(PROJECT_ROOT / "tests" / "sdk_matrix.py")], cwd=PROJECT_ROOT,
                          env=offline_environ(tmp_path_factory.mktemp("other-sdk")), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    there = json.loads(done.stdout)
    assert {here["major"], there["major"]} == {2, 3}, (here["sdk"], there["sdk"])
    return {here["major"]: here["definitions"], there["major"]: there["definitions"]}


@pytest.mark.parametrize("config", CASES)
def test_v2_and_v3_compile_the_same_json_apart_from_the_documented_differences(by_sdk, config):
    v2, v3 = by_sdk[2][config], by_sdk[3][config]
    assert v2 != v3  # the differences are real ...
    assert shared_form(v2) == shared_form(v3)  # ... and they are all there is


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_each_documented_difference_still_occurs(by_sdk, name):
    """A difference a new SDK release removes must leave the list and the docs too."""
    assert any(shared_form(by_sdk[2][c], skip=name) != shared_form(by_sdk[3][c], skip=name) for c in CASES)


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_each_difference_is_documented_with_why_it_is_harmless(name):
    section = ARCHITECTURE.split("## SDK v2 and v3", 1)[1].split("\n## ", 1)[0]
    assert f"`{name}`" in section


# --- the local runner reads v3's JSON as well --------------------------------------------------


def _plan(definition: dict):
    from pipelines.local.plan import plan
    from pipelines.local.steps import IN_PROCESS

    return plan(definition, in_process=IN_PROCESS, job_types=("Processing",))


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
