"""The expression evaluator: every form the definition JSON uses, and every way it refuses."""
from __future__ import annotations

from datetime import datetime

import pytest

from pipelines.local.expressions import ExpressionError, Scope, evaluate, evaluate_condition, resolve

PREPROCESS = {
    "ProcessingOutputConfig": {
        "Outputs": [
            {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/e1/train"}},
            {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/e1/test"}},
        ]
    },
    "Environment": {"MODE": "fast"},
}
TUNE = {
    "TrainingJobSummaries": [{"TrainingJobName": "tune-001"}, {"TrainingJobName": "tune-002"}],
    "BestTrainingJob": {"FinalMetricDataList": [{"MetricName": "validation:auc", "Value": 0.91}]},
}
REPORT = {"metrics": {"auc": {"value": 0.93}}, "curve": [{"x": 0.5}]}


def read_json(uri: str):
    """Like reading through a Store: FileNotFoundError for an object that is not there."""
    if uri != "s3://b/doc.json":
        raise FileNotFoundError(f"no such object: {uri}")
    return {"a": {"b": [1, 2]}}


SCOPE = Scope(
    parameters={"Threshold": 0.9, "Name": "purchase", "Count": 3, "Flag": True},
    execution={
        "PipelineExecutionId": "abc123",
        "PipelineName": "purchase-intent",
        "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/purchase-intent/execution/abc123",
        "StartDateTime": "2026-01-02T03:04:05.000+00:00",
    },
    steps={
        "Preprocess": {"response": PREPROCESS, "property_files": {}},
        "Tune": {"response": TUNE, "property_files": {}},
        "Evaluate": {"response": {}, "property_files": {"Report": REPORT}},
    },
    read_json=read_json,
)


def get(target: str) -> dict:
    return {"Get": target}


def json_get(path: str, source: dict | None = None) -> dict:
    return {"Std:JsonGet": {**(source or {"PropertyFile": get("Steps.Evaluate.PropertyFiles.Report")}), "Path": path}}


def compare(kind: str, left, right) -> dict:
    return {"Type": kind, "LeftValue": left, "RightValue": right}


def fails(expr, reason: str, *, condition: bool = False) -> None:
    with pytest.raises(ExpressionError, match=reason):
        (evaluate_condition if condition else evaluate)(expr, SCOPE)


# --- Get -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target, value",
    [
        ("Parameters.Threshold", 0.9),
        ("Parameters.Name", "purchase"),
        ("Execution.PipelineExecutionId", "abc123"),
        ("Execution.PipelineName", "purchase-intent"),
        ("Execution.PipelineExecutionArn", SCOPE.execution["PipelineExecutionArn"]),
        ("Execution.StartDateTime", "2026-01-02T03:04:05.000+00:00"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri", "s3://b/e1/test"),
        ('Steps.Preprocess.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri', "s3://b/e1/train"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs[1].OutputName", "test"),
        ("Steps.Preprocess.Environment['MODE']", "fast"),
        ("Steps.Tune.TrainingJobSummaries[0].TrainingJobName", "tune-001"),
        ("Steps.Tune.BestTrainingJob.FinalMetricDataList['validation:auc'].Value", 0.91),
        ("Steps.Evaluate.PropertyFiles.Report", REPORT),
    ],
)
def test_get(target, value):
    assert evaluate(get(target), SCOPE) == value


def test_current_date_time_is_now():
    value = evaluate(get("Execution.CurrentDateTime"), SCOPE)
    assert abs((datetime.fromisoformat(value) - datetime.now().astimezone()).total_seconds()) < 5


@pytest.mark.parametrize(
    "target, reason",
    [
        ("Parameters.Missing", "unknown parameter 'Missing'.*known: Threshold"),
        ("Execution.Nope", "unknown execution variable 'Nope'"),
        ("Other.X", "unknown root 'Other'"),
        ("Steps.Ghost.Outcome", "step 'Ghost' has no result"),
        ("Steps.Preprocess", "expected 'Steps.<name>.<path>'"),
        ("Steps.Preprocess.Nothing", r"Steps.Preprocess has no 'Nothing' \(it has: ProcessingOutputConfig"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs['valid'].S3Output", "no item named 'valid' .names: train, test"),
        ("Steps.Tune.TrainingJobSummaries[5]", r"has 2 item\(s\), no \[5\]"),
        ("Steps.Preprocess.Environment[0]", "is object, not a list"),
        ("Steps.Preprocess.ProcessingOutputConfig.Outputs.train", "is list, it has no 'train'"),
        ("Steps.Preprocess.Environment..MODE", "malformed path"),
        ("Steps.Evaluate.PropertyFiles.Missing", "PropertyFiles has no 'Missing' .it has: Report"),
    ],
)
def test_get_errors_name_the_problem(target, reason):
    fails(get(target), reason)


def test_get_needs_a_string():
    fails({"Get": 3}, "Get needs a string")


def test_errors_name_the_expression():
    with pytest.raises(ExpressionError) as error:
        evaluate(get("Parameters.Missing"), SCOPE)
    assert '{"Get": "Parameters.Missing"}' in str(error.value)


# --- Std:Join and Std:JsonGet -----------------------------------------------------------


def test_join_renders_numbers_booleans_and_nested_expressions():
    expr = {"Std:Join": {"On": "/", "Values": ["s3:/", get("Parameters.Name"), get("Parameters.Count"),
                                                get("Parameters.Threshold"), get("Parameters.Flag"),
                                                {"Std:Join": {"On": "-", "Values": ["a", "b"]}}]}}
    assert evaluate(expr, SCOPE) == "s3://purchase/3/0.9/true/a-b"


def test_join_without_on_joins_with_nothing():
    assert evaluate({"Std:Join": {"Values": ["a", "b"]}}, SCOPE) == "ab"


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"On": "/", "Values": "ab"}, "'Values' must be a list"),
        ({"On": 1, "Values": []}, "Std:Join needs"),
        ({"On": "/", "Values": [get("Steps.Evaluate.PropertyFiles.Report")]}, "cannot join object"),
        ({"On": "/", "Values": [None]}, "cannot join null"),
    ],
)
def test_join_errors(body, reason):
    fails({"Std:Join": body}, reason)


@pytest.mark.parametrize("path, value", [("metrics.auc.value", 0.93), ("curve[0].x", 0.5), ("metrics['auc'].value", 0.93)])
def test_json_get_reads_a_property_file(path, value):
    assert evaluate(json_get(path), SCOPE) == value


def test_json_get_reads_json_at_an_s3_uri():
    assert evaluate(json_get("a.b[1]", {"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", "doc.json"]}}}), SCOPE) == 2


@pytest.mark.parametrize(
    "expr, reason",
    [
        (json_get("metrics.roc.value"), "property file.metrics has no 'roc' .it has: auc"),
        (json_get("curve[3].x"), r"has 1 item\(s\)"),
        (json_get("a", {"S3Uri": "s3://b/missing.json"}), "cannot read JSON at s3://b/missing.json"),
        (json_get("a", {"Other": 1}), "needs a 'PropertyFile' or an 'S3Uri'"),
        ({"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.Report")}}, "needs a 'Path' string"),
        (json_get("metrics.auc.value", {"PropertyFile": get("Steps.Ghost.PropertyFiles.Report")}), "step 'Ghost'"),
    ],
)
def test_json_get_errors(expr, reason):
    fails(expr, reason)


def test_json_get_over_s3_needs_a_store():
    with pytest.raises(ExpressionError, match="no store"):
        evaluate(json_get("a", {"S3Uri": "s3://b/doc.json"}), Scope(parameters={}, execution={}))


@pytest.mark.parametrize(
    "expr",
    [{"Std:Split": {"On": ","}}, {"Get": "Parameters.Name", "Extra": 1}, {"Get": "x", "Std:Join": {}}],
)
def test_unknown_expression_forms_are_errors(expr):
    fails(expr, "unknown expression form")


def test_evaluate_refuses_plain_objects():
    fails({"Type": "Equals"}, "not an expression")


def test_resolve_replaces_every_expression_in_a_tree():
    tree = {"Inputs": [{"S3Uri": get("Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri")}],
            "Count": get("Parameters.Count"), "Fixed": ["a", 1, None], "Nested": {"Name": get("Parameters.Name")}}
    assert resolve(tree, SCOPE) == {"Inputs": [{"S3Uri": "s3://b/e1/train"}], "Count": 3, "Fixed": ["a", 1, None],
                                    "Nested": {"Name": "purchase"}}


# --- conditions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, left, right, expected",
    [
        ("Equals", 1, 1.0, True),
        ("Equals", "a", "b", False),
        ("Equals", True, True, True),
        ("GreaterThan", 0.93, 0.9, True),
        ("GreaterThan", 0.9, 0.9, False),
        ("GreaterThanOrEqualTo", 0.9, 0.9, True),
        ("GreaterThanOrEqualTo", 0.8, 0.9, False),
        ("LessThan", 1, 2, True),
        ("LessThan", 2, 2, False),
        ("LessThanOrEqualTo", 2, 2, True),
        ("LessThanOrEqualTo", 3, 2, False),
        ("LessThan", "a", "b", True),
    ],
)
def test_comparisons(kind, left, right, expected):
    assert evaluate_condition(compare(kind, left, right), SCOPE) is expected


def test_comparison_of_expressions():
    assert evaluate_condition(compare("GreaterThanOrEqualTo", json_get("metrics.auc.value"), get("Parameters.Threshold")), SCOPE)


@pytest.mark.parametrize(
    "kind, left, right",
    [
        ("GreaterThan", "0.95", 0.9),
        ("Equals", "3", 3),
        ("Equals", True, 1),
        ("LessThan", True, False),
        ("Equals", None, None),
        ("Equals", [1], [1]),
    ],
)
def test_comparing_unlike_values_is_an_error(kind, left, right):
    fails(compare(kind, left, right), f"{kind} cannot compare", condition=True)


def test_in():
    assert evaluate_condition({"Type": "In", "QueryValue": get("Parameters.Name"), "Values": ["x", "purchase"]}, SCOPE)
    assert not evaluate_condition({"Type": "In", "QueryValue": 3, "Values": [1, 2]}, SCOPE)


def test_in_with_unlike_values_is_an_error():
    fails({"Type": "In", "QueryValue": "3", "Values": [3]}, "Equals cannot compare string", condition=True)


def test_not_uses_the_condition_key_as_sagemaker_does():
    assert evaluate_condition({"Type": "Not", "Condition": compare("Equals", 1, 2)}, SCOPE) is True
    fails({"Type": "Not", "Expression": compare("Equals", 1, 2)}, "missing 'Condition'", condition=True)


def test_or():
    assert evaluate_condition({"Type": "Or", "Conditions": [compare("Equals", 1, 2), compare("Equals", 2, 2)]}, SCOPE)
    assert not evaluate_condition({"Type": "Or", "Conditions": [compare("Equals", 1, 2)]}, SCOPE)


def test_or_does_not_hide_a_broken_operand_behind_a_true_one():
    broken = compare("GreaterThan", get("Parameters.Missing"), 1)
    fails({"Type": "Or", "Conditions": [compare("Equals", 1, 1), broken]}, "unknown parameter", condition=True)


@pytest.mark.parametrize(
    "cond, reason",
    [
        ({"Type": "Between", "LeftValue": 1}, "unknown condition type 'Between'"),
        ("Equals", "unknown condition type None"),
        ({"Type": "Equals", "LeftValue": 1}, "missing 'RightValue'"),
        ({"Type": "Or", "Conditions": {}}, "'Conditions' must be a list"),
        ({"Type": "In", "QueryValue": 1, "Values": 1}, "'Values' must be a list"),
    ],
)
def test_malformed_conditions(cond, reason):
    fails(cond, reason, condition=True)
