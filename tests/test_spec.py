"""The definition document's model (`pipelines.spec`): the one reader and writer of the JSON."""
from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest
from sdk_matrix import cases

from pipelines import spec
from pipelines.compiler import compile_pipeline


def get(target: str) -> dict:
    return {"Get": target}


def processing(name: str, **extra) -> dict:
    return {"Name": name, "Type": "Processing", "Arguments": {}, **extra}


def document(*steps, **extra) -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": [], "Steps": list(steps), **extra})


# --- reading and writing -----------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(cases()))
def test_what_the_compiler_writes_reads_back_to_the_same_model_and_bytes(case):
    pipeline, cfg = cases()[case]
    text = compile_pipeline(pipeline, cfg).definition
    model = spec.read(text)
    assert spec.write(model) == text
    assert spec.read(spec.write(model)) == model


def test_purchase_intent_reads_back_to_the_same_bytes(compile_with):
    for compiled in (compile_with(), compile_with(tuning=False, batch_transform=True)):
        assert spec.write(spec.read(compiled.definition)) == compiled.definition


def test_condition_branches_are_flattened_with_their_branch_and_what_each_step_waits_for():
    gate = {"Name": "Gate", "Type": "Condition", "DependsOn": ["B"], "Arguments": {
        "Conditions": [{"Type": "Equals", "RightValue": 1,
                        "LeftValue": get("Steps.A.ProcessingOutputConfig.Outputs['x'].S3Output.S3Uri")}],
        "IfSteps": [processing("Yes", DependsOn=[{"Step": "B", "Trigger": "Completed"}])],
        "ElseSteps": [{"Name": "No", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}}
    model = spec.read(document(processing("A"), processing("B"), gate))
    flat = {placed.name: placed for placed in model.flat}
    assert list(flat) == ["A", "B", "Gate", "Yes", "No"]
    assert flat["Gate"].needs == {"A", "B"} and flat["Gate"].branch is None
    assert flat["Yes"].needs == {"B", "Gate"} and flat["Yes"].branch == ("Gate", "True")
    assert flat["No"].branch == spec.Branch("Gate", "False") and flat["No"].needs == {"Gate"}
    assert "IfSteps" not in flat["Gate"].step.arguments
    assert flat["Yes"].step.depends_on == (spec.Dependency("B", "Completed"),)
    assert spec.read(spec.write(model)) == model  # the run condition is written as it was read


def test_what_only_sdk_v3_writes_is_kept_and_written_where_v3_writes_it():
    text = document(processing("A"), MlflowConfig=None)
    model = spec.read(text)
    assert model.extra == {"MlflowConfig": None}
    assert list(json.loads(spec.write(model))) == ["Version", "Metadata", "Parameters", "MlflowConfig", "Steps"]


def test_reads_finds_every_step_an_expression_reads():
    tree = {
        "A": get("Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"),
        "B": [{"Std:Join": {"On": "/", "Values": [get("Steps.Tune-Step.TrainingJobSummaries[0].TrainingJobName")]}}],
        "C": spec.json_get("Evaluate", "EvaluationReport", "metrics.auc.value"),
        "D": get("Parameters.Threshold"),
        "E": "Steps.NotAReference.X",
        "F": {"a": [1, "b", None]},
    }
    assert spec.reads(tree) == {"Preprocess", "Tune-Step", "Evaluate"}


# --- what the reader refuses ---------------------------------------------------------------------


@pytest.mark.parametrize("text, reason", [
    ("{not json", "the definition is not valid JSON"),
    ("[]", "the definition must be a JSON object"),
    (json.dumps({"Steps": {}}), "a definition's Steps must be a list"),
    (document({"Name": "E"}), "a step needs a Name and a Type"),
    (document(processing("A", Arguments=[])), "step A: Arguments must be an object"),
    (document({"Name": "G", "Type": "Condition", "Arguments": {"IfSteps": {}}}), "step G: IfSteps must be a list"),
    (document(processing("A"), processing("A")), r"duplicate step name\(s\): A"),
    (document(processing("A", Arguments={"X": get("Steps.Ghost.ModelName")})),
     r"step A refers to unknown step\(s\): Ghost"),
    (document(processing("A", DependsOn=["Ghost"])), r"step A refers to unknown step\(s\): Ghost"),
    (document(processing("A", Arguments={"X": get("Steps.Only")})), "step A: .* is not a step reference"),
    (document(processing("A"), processing("B", DependsOn=[{"Trigger": "Completed"}])),
     "step B: a DependsOn entry needs a Step name"),
    (document(processing("A"), processing("B", DependsOn=[7])), "step B: DependsOn entries are step names, got 7"),
    (document(processing("A", RetryPolicies=[{"MaxAttempts": 1}])),
     "step A: a retry policy needs an ExceptionType list"),
    (document(processing("A", PropertyFiles=[{"PropertyFileName": "R"}])),
     "step A: a property file needs PropertyFileName, OutputName, FilePath"),
    (json.dumps({"Parameters": [{"Name": "X", "Type": "Text"}], "Steps": []}),
     "parameter X has type 'Text'; expected one of String, Integer, Float, Boolean"),
])
def test_a_document_that_is_no_pipeline_definition_is_refused_by_name(text, reason):
    with pytest.raises(spec.SpecError, match=reason):
        spec.read(text)


def test_the_model_imports_the_standard_library_only():
    """So every layer may import it: the local runner never pays for (or depends on) the compiler or the SDK."""
    tree = ast.parse(Path(spec.__file__).read_text())
    nodes = list(ast.walk(tree))
    imported = {alias.name.split(".")[0] for node in nodes if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in nodes if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= sys.stdlib_module_names | {"__future__"}
