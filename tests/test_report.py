"""Run report and model card: rendering from fake records and store contents, the wiring of
`run --local`, the registry's model card, and `deploy.py report` on a real small local run."""
from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from conftest import EXAMPLE_DEF, run_cli

from pipelines import cli, report, spec
from pipelines.local import LocalHome
from pipelines.local.registry import Registry
from pipelines.local.storage import LocalStore
from pipelines.report.gather import SECTIONS

import evaluate  # (the real report layout, so these fakes follow evaluate.py)

RUN = "s3://bkt/p/runs/e1"
MODEL = "s3://bkt/p/models/Tune/Tune-1-001/output/model.tar.gz"
ARN = "arn:aws:sagemaker:us-east-1:000000000000:model-package/purchase-intent/3"
PNG = "data:image/png;base64,"


# --- fakes ------------------------------------------------------------------------------------


def trial(number: int, eta: str, value: float | None) -> dict:
    summary = {"TrainingJobName": f"Tune-1-{number:03d}-0123abcd", "TunedHyperParameters": {"eta": eta, "max_depth": "4"},
               "CreationTime": f"2024-05-01T12:00:0{number}+00:00",
               "TrainingJobStatus": "Completed" if value is not None else "Failed"}
    if value is None:
        return {**summary, "FailureReason": "AlgorithmError: out of memory"}
    return {**summary, "FinalHyperParameterTuningJobObjectiveMetric": {"MetricName": "validation:auc", "Value": value,
                                                                       "Type": "Maximize"}}


TRIALS = [trial(1, "0.3", 0.87), trial(2, "0.125", 0.91), trial(3, "0.01", None)]


def evaluation(problem: str, *, points: bool = False) -> dict:
    """An evaluation.json made by evaluate.py's own functions on random predictions."""
    rng = np.random.default_rng(0)
    if problem == "binary":
        y = rng.integers(0, 2, 400)
        section, curves = evaluate.binary_report(y, np.clip(0.35 * y + 0.65 * rng.random(400), 0, 1), 0.5)
    elif problem == "multiclass":
        y = rng.integers(0, 3, 300)
        proba = rng.dirichlet(np.ones(3), 300)
        proba[np.arange(300), y] += 1
        section, curves = evaluate.multiclass_report(y, proba / proba.sum(axis=1, keepdims=True))
    else:
        y = rng.normal(50, 10, 300)
        predicted = y + rng.normal(0, 4, 300)
        section, curves = evaluate.regression_report(y, predicted)
        if not points:  # an evaluate.py from before it recorded them
            del curves["predicted_vs_actual"]
    importance = [{"feature": f"feature_{i}", "gain": 10.0 - i} for i in range(6)]
    first = next(iter(section))
    ensemble = [{"family": family, "weight": weight, "validation": {first: score}, "seconds": 2.5}
                for family, weight, score in (("xgboost", 0.6, 0.91), ("extratrees", 0.4, 0.8765), ("linear", 0.0, 0.85))]
    return {**section, "curves": curves, "feature_importance": importance, "n_test": 300, "ensemble": ensemble}


def profile(problem: str) -> dict:
    classes = {"binary": ["FALSE", "TRUE"], "multiclass": ["bronze", "gold", "silver"], "regression": None}[problem]
    balance = ({"mean": 50.0, "std": 10.0, "min": 12.5, "max": 88.0} if problem == "regression"
               else {str(i): 100 * (i + 1) for i in range(len(classes))})
    return {
        "problem_type": problem, "label": "Target", "classes": classes, "input_files": ["/opt/ml/x.csv"],
        "rows_read": 1234, "duplicates_dropped": 7, "label_missing_dropped": 1,
        "rows": {"train": 800, "validation": 213, "test": 213}, "seed": 42,
        "label_balance": {"all": balance, "train": balance, "validation": balance, "test": balance},
        "columns": {
            "PageValues": {"kind": "number", "count": 1200, "missing": 26, "typical": 0.5, "unique": 400,
                           "mean": 5.25, "std": 18.5, "min": 0.0, "max": 361.75},
            "Month": {"kind": "category", "count": 1226, "missing": 0, "typical": "May",
                      "unique": 3, "top": {"May": 600, "Nov": 400, "Mar": 226}},
            "SessionId": {"kind": "dropped", "count": 1226, "missing": 0, "unique": 1226, "typical": "s1",
                          "top": {"s1": 1}, "reason": "identifier: a different value in every row"},
        },
    }


GATES = {"binary": "binary_classification_metrics.roc_auc", "multiclass": "multiclass_classification_metrics.accuracy",
         "regression": "regression_metrics.r2"}


def definition(problem: str = "binary", **extra) -> spec.Definition:
    """The definition of the fake run, read as the report reads the recorded one; `extra` adds keys to steps."""
    doc = definition_json(problem)
    for name, fields in extra.items():
        next(s for s in doc["Steps"] if s["Name"] == name).update(fields)
    return spec.read(json.dumps(doc))


def definition_json(problem: str) -> dict:
    get = lambda path: {"Get": path}  # noqa: E731
    outputs = lambda *names: {"Outputs": [{"OutputName": n, "S3Output": {"S3Uri": f"{RUN}/x/{n}"}} for n in names]}  # noqa: E731
    gate = {"Std:JsonGet": {"PropertyFile": get("Steps.Evaluate.PropertyFiles.EvaluationReport"),
                            "Path": f"{GATES[problem]}.value"}}
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "MaxTuningJobs", "Type": "Integer", "DefaultValue": 4},
                       {"Name": "QualityThreshold", "Type": "Float", "DefaultValue": 0.8}],
        "Steps": [
            {"Name": "Preprocess", "Type": "Processing",
             "Arguments": {"ProcessingOutputConfig": outputs("train", "test", "profile")}},
            {"Name": "Tune", "Type": "Tuning",
             "Arguments": {"Train": get("Steps.Preprocess.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri")}},
            {"Name": "Evaluate", "Type": "Processing",
             "Arguments": {"Model": get("Steps.Tune.BestTrainingJob.TrainingJobName"),
                           "Test": get("Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"),
                           "ProcessingOutputConfig": outputs("evaluation")},
             "PropertyFiles": [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation",
                                "FilePath": "evaluation.json"}]},
            {"Name": "QualityGate", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": gate,
                                "RightValue": get("Parameters.QualityThreshold")}],
                "IfSteps": [{"Name": "Register-RegisterModel", "Type": "RegisterModel",
                             "Arguments": {"Model": get("Steps.Tune.BestTrainingJob.TrainingJobName")}}],
                "ElseSteps": [{"Name": "Fail", "Type": "Fail", "Arguments": {"ErrorMessage": "too weak"}}]}},
        ],
    }


def step(name, type_, status="Succeeded", **fields) -> dict:
    return {"name": name, "type": type_, "status": status, "cache_hit": False, "started": None, "ended": None,
            "seconds": 1.25 if status != "NotRun" else None, "attempts": [{"attempt": 1, "status": status}]
            if type_ in ("Processing", "Tuning") and status != "NotRun" else [], "job_name": None, "arguments": None,
            "response": None, "property_files": {}, "failure_reason": None, "log": None, **fields}


def processing_response(*names) -> dict:
    return {"ProcessingOutputConfig": {"Outputs": [{"OutputName": n, "S3Output": {"S3Uri": f"{RUN}/x/{n}"}}
                                                   for n in names]}}


def fake_run(tmp_path, problem="binary", *, outcome="True", failed_at=None, points=False):
    """(execution record, definition, store) of a run that got as far as the arguments say."""
    store = LocalStore(tmp_path / "s3")
    store.put_bytes(f"{RUN}/x/profile/profile.json", json.dumps(profile(problem)).encode())
    report_doc = evaluation(problem, points=points)
    section = next(k for k in SECTIONS if k in report_doc)
    value = report_doc[section][GATES[problem].split(".")[1]]["value"]
    steps = [
        step("Preprocess", "Processing", response=processing_response("train", "test", "profile")),
        step("Tune", "Tuning", arguments={"TrainingJobDefinition": {"StaticHyperParameters": {
            "label": '"Target"', "sagemaker_program": '"train.py"'}}}, response={
            "BestTrainingJob": TRIALS[1],
            "TrainingJobSummaries": [TRIALS[1], TRIALS[0], TRIALS[2]],  # best first, failed last, as DescribeHyper...
            "TrainingJobStatusCounters": {"Completed": 2}}),
        step("Evaluate", "Processing", response=processing_response("evaluation"),
             property_files={"EvaluationReport": report_doc}),
        step("QualityGate", "Condition", arguments={"Conditions": [{"Type": "GreaterThanOrEqualTo",
                                                                    "LeftValue": value, "RightValue": 0.8}]},
             response={"Outcome": outcome}),
        step("Register-RegisterModel", "RegisterModel", response={
            "ModelPackageGroupName": "purchase-intent", "ModelPackageVersion": 3, "ModelPackageArn": ARN,
            "ModelApprovalStatus": "PendingManualApproval",
            "CustomerMetadataProperties": {"problem_type": problem, "label": "Target"},
            "InferenceSpecification": {"Containers": [{"Image": "x/sagemaker-xgboost:3.0-5", "ModelDataUrl": MODEL,
                                                       "Framework": "XGBOOST", "FrameworkVersion": "3.0-5"}],
                                       "SupportedContentTypes": ["text/csv", "application/json"],
                                       "SupportedResponseMIMETypes": ["text/csv", "application/json"]}})
        if outcome == "True" else step("Register-RegisterModel", "RegisterModel", "NotRun"),
        step("Fail", "Fail", "NotRun") if outcome == "True" else
        step("Fail", "Fail", "Failed", failure_reason="Quality gate failed: too weak"),
    ]
    status, reason = ("Succeeded", None) if outcome == "True" else ("Failed", "Quality gate failed: too weak")
    if failed_at:
        index = [s["name"] for s in steps].index(failed_at)
        reason, status = "AlgorithmError: training crashed", "Failed"
        steps[index] = step(failed_at, steps[index]["type"], "Failed", failure_reason=reason)
        steps[index + 1:] = [step(s["name"], s["type"], "NotRun") for s in steps[index + 1:]]
    execution = {
        "execution_id": "e1", "pipeline_name": "purchase-intent", "status": status, "failure_reason": reason,
        "failed_step": failed_at or (None if outcome == "True" else "Fail"), "started": "2024-05-01T12:00:00+00:00",
        "ended": "2024-05-01T12:01:05+00:00", "seconds": 65.0, "resumes": 0,
        "execution_arn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/purchase-intent/execution/e1",
        "parameters": {"MaxTuningJobs": 2, "QualityThreshold": 0.8,
                       "InputData": "s3://bkt/p/data/online_shoppers_synthetic.csv"},
        "steps": steps,
    }
    return execution, definition(problem), store, report_doc


def render(tmp_path, **kwargs) -> tuple[str, dict]:
    execution, definition_, store, doc = fake_run(tmp_path, **kwargs)
    path = report.render_report(execution, definition_, store, out_path=tmp_path / "out" / "report.html")
    return path.read_text(), doc


def assert_self_contained(html: str) -> None:
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["'](https?:)?//""", html), "an external asset"
    assert "<svg" in html


# --- the HTML report ----------------------------------------------------------------------------


def test_binary_report_shows_steps_metrics_gate_profile_and_plots(tmp_path):
    html, doc = render(tmp_path)
    assert_self_contained(html)
    for name in ("Preprocess", "Tune", "Evaluate", "QualityGate", "Register-RegisterModel", "Fail"):
        assert f">{name}<" in html
    assert html.count("badge ok") >= 5 and "not run" in html
    metrics = doc["binary_classification_metrics"]
    for name in ("roc_auc", "pr_auc", "brier_score", "expected_calibration_error"):
        assert f"{metrics[name]['value']:.4f}" in html
    assert f"roc_auc {metrics['roc_auc']['value']:.4f} ≥ 0.8000" in html and "passed" in html
    assert "purchase-intent v3" in html and "PendingManualApproval" in html
    assert ids(html) == {"roc", "pr", "calibration", "confusion", "lift", "trials", "importance"}
    assert html.count(PNG) == 7
    assert "1,234" in html and "FALSE (0)" in html and "361.8" in html and "<code>May</code>" in html
    assert "Not in this report" not in html
    assert '<span class="pill">set</span> <span class="long" title="2"><strong>2</strong>' in html  # MaxTuningJobs (default 4)


def ids(html: str) -> set[str]:
    return set(re.findall(r'id="plot-([a-z_]+)"', html))


def test_multiclass_report_has_a_confusion_matrix_with_class_names_and_no_binary_curves(tmp_path):
    html, doc = render(tmp_path, problem="multiclass")
    assert_self_contained(html)
    assert ids(html) == {"confusion", "trials", "importance"}
    metrics = doc["multiclass_classification_metrics"]
    assert f"{metrics['accuracy']['value']:.4f}" in html and f"{metrics['macro_f1']['value']:.4f}" in html
    assert "multiclass classification" in html and "gold (1)" in html
    assert f"accuracy {metrics['accuracy']['value']:.4f} ≥ 0.8000" in html
    assert "ROC curve" not in html


@pytest.mark.parametrize("points", [False, True])
def test_regression_report_draws_predicted_vs_actual_only_when_evaluate_records_points(tmp_path, points):
    html, doc = render(tmp_path, problem="regression", points=points)
    assert_self_contained(html)
    assert ids(html) == ({"predicted_vs_actual", "residuals", "trials", "importance"} if points else {"trials", "importance"})
    assert ("records no points" in html) is not points
    for name in ("rmse", "mae", "r2"):
        assert f"{doc['regression_metrics'][name]['value']:.4f}" in html
    assert "Label distribution" in html and "88" in html  # the label's statistics per split
    assert f"r2 {doc['regression_metrics']['r2']['value']:.4f} ≥ 0.8000" in html


def test_a_run_that_failed_in_training_shows_what_exists_and_says_what_is_missing(tmp_path):
    html, _ = render(tmp_path, failed_at="Tune")
    assert_self_contained(html)
    assert "The execution failed at step Tune" in html and "AlgorithmError: training crashed" in html
    missing = html[html.index("Not in this report"):html.index('id="graph"')]
    assert "Evaluation (metrics and plots): step Evaluate did not run" in missing
    assert "Hyperparameters of the best model: step Tune failed." in missing
    assert "AlgorithmError" not in missing  # the reason is in the banner and the step table, not repeated here
    assert "Registered model: none" in missing
    assert PNG not in html and "No metrics" in html
    assert "1,234" in html  # the profile of the step that did run
    assert html.count("not run") >= 4 and "badge bad" in html


def test_a_failed_quality_gate_is_shown_as_such(tmp_path):
    html, doc = render(tmp_path, outcome="False")
    assert "failed" in html and "Quality gate failed: too weak" in html
    assert "the quality gate QualityGate was not met" in html
    assert html.count(PNG) == 7  # the evaluation and the trials still exist
    assert "none" in html[html.index("Registered model"):][:200]


def test_without_a_definition_the_report_still_lists_the_recorded_steps(tmp_path):
    execution, _, store, _ = fake_run(tmp_path)
    html = report.render_report(execution, None, store, out_path=tmp_path / "r.html").read_text()
    assert all(f">{s['name']}<" in html for s in execution["steps"])
    assert html.count(PNG) == 7


def test_the_graph_is_layered_left_to_right_with_branches_after_their_condition(tmp_path):
    execution, definition_, _, _ = fake_run(tmp_path)
    dag = report.dag_layout(definition_, execution)
    x = {n["name"]: n["x"] for n in dag["nodes"]}
    assert x["Preprocess"] < x["Tune"] < x["Evaluate"] < x["QualityGate"] < x["Register-RegisterModel"]
    assert x["Register-RegisterModel"] == x["Fail"]
    edges = {(e["source"], e["target"]): e["kind"] for e in dag["edges"]}
    assert edges[("QualityGate", "Register-RegisterModel")] == "taken"
    assert edges[("QualityGate", "Fail")] == "untaken"
    assert edges[("Preprocess", "Tune")] == "data" and edges[("Preprocess", "Evaluate")] == "implied"
    assert {g["label"] for g in dag["groups"]} == {"if QualityGate is true", "if QualityGate is false"}
    status = {n["name"]: n["status"] for n in dag["nodes"]}
    assert status["Fail"] == "NotRun" and status["Tune"] == "Succeeded"


def test_a_run_condition_in_depends_on_is_an_edge_of_the_graph(tmp_path):
    """SDK v3 writes a DependsOn entry as {"Step": name, "Trigger": "Completed"}, which the runner
    accepts; the report reads it as the dependency it is (it used to raise TypeError: unhashable dict,
    and the run ended with only "report not written")."""
    home = LocalHome(tmp_path / "home")
    execution, _, store, _ = fake_run(tmp_path, outcome="False")  # nothing registered, so no model card
    with_condition = definition(QualityGate={"DependsOn": [{"Step": "Preprocess", "Trigger": "Completed"}, "Tune"]})
    run_dir = home.runs / "e1"
    run_dir.mkdir(parents=True)
    (run_dir / "definition.json").write_text(spec.write(with_condition))
    warnings = []
    record = report.publish_local_run(execution, home=home, store=store, warn=warnings.append)
    assert warnings == [] and Path(record["report"]).is_file()
    edges = {(e["source"], e["target"]) for e in report.dag_layout(report.read_definition(run_dir), execution)["edges"]}
    assert {("Preprocess", "QualityGate"), ("Tune", "QualityGate"), ("Evaluate", "QualityGate")} <= edges


def test_the_report_is_written_atomically(tmp_path):
    execution, definition_, store, _ = fake_run(tmp_path)
    out = tmp_path / "reports" / "report.html"
    report.render_report(execution, definition_, store, out_path=out)
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
    assert out.stat().st_mode & 0o777 == 0o644


# --- the model card -----------------------------------------------------------------------------


@pytest.mark.parametrize("problem", ["binary", "multiclass", "regression"])
def test_model_card_has_the_package_metrics_gate_and_an_example_request(tmp_path, problem):
    execution, definition_, store, doc = fake_run(tmp_path, problem)
    card = report.render_model_card(execution, definition_, store, description="Will this session buy?")
    assert card.startswith("# Model card: purchase-intent version 3\n")
    assert ARN in card and MODEL in card and "XGBoost 3.0-5" in card and "Will this session buy?" in card
    section = next(k for k in SECTIONS if k in doc)
    for name, metric in doc[section].items():
        if name != "confusion_matrix":
            assert f"| {metric['value']:.4f} |" in card
    assert "**Quality gate** `QualityGate`" in card and "0.8000" in card
    assert "| `eta` | 0.125 | tuned |" in card and "| `label` | Target | fixed |" in card
    assert "```csv\nPageValues,Month\n0.5,May\n```" in card
    assert "text/csv, application/json" in card
    assert "**Synthetic data.**" in card  # the InputData name says so
    if problem == "binary":
        assert "Brier score" in card and "expected calibration error" in card
        floor = doc[section]["calibration_error_floor"]["value"]
        assert f"even exact probabilities would score about {floor:.4f} from sampling noise alone" in card
    else:
        assert "Not measured for" in card


# --- wiring: run --local and the registry ---------------------------------------------------------


def test_publish_writes_the_report_and_the_model_card_beside_the_model_and_in_the_registry(tmp_path):
    home = LocalHome(tmp_path / "home")
    execution, definition_, _, _ = fake_run(tmp_path)
    store = LocalStore(home.s3)
    fake_store_contents = LocalStore(tmp_path / "s3")
    for uri in fake_store_contents.list("s3://bkt/"):
        store.put_bytes(uri, fake_store_contents.get_bytes(uri))
    run_dir = home.runs / "e1"
    run_dir.mkdir(parents=True)
    (run_dir / "definition.json").write_text(spec.write(definition_))
    (run_dir / "execution.json").write_text(json.dumps(execution))
    registry = Registry(home.registry)
    for _ in range(3):  # version 3, as the fake record says
        registry.register({"ModelPackageGroupName": "purchase-intent"}, execution_id="e1")

    record = report.publish_local_run(execution, home=home, store=store)
    assert record["report"] == str(run_dir / "report.html") and Path(record["report"]).is_file()
    card_uri = MODEL.rsplit("/", 1)[0] + "/model_card.md"
    assert record["model_card"] == card_uri and ARN in store.get_bytes(card_uri).decode()
    assert card_uri in Path(record["report"]).read_text()
    card = registry.get("purchase-intent", 3)["ModelCard"]
    assert card["ModelCardStatus"] == "Draft" and ARN in card["ModelCardContent"]
    assert "ModelCard" not in registry.get("purchase-intent", 2)
    assert json.loads((run_dir / "execution.json").read_text())["report"] == record["report"]


def test_publish_turns_a_rendering_problem_into_a_warning(tmp_path, monkeypatch):
    home = LocalHome(tmp_path / "home")
    execution, _, store, _ = fake_run(tmp_path, outcome="False")
    (home.runs / "e1").mkdir(parents=True)

    def broken(*args, **kwargs):
        raise RuntimeError("no template")

    monkeypatch.setattr(report, "render_report", broken)
    warnings = []
    record = report.publish_local_run(execution, home=home, store=store, warn=warnings.append)
    assert record["status"] == "Failed" and "report" not in record
    assert warnings == ["report not written: RuntimeError: no template"]


def test_the_registry_adds_the_model_card_column_to_an_older_database(tmp_path):
    path = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript("""
            CREATE TABLE model_package_groups (name TEXT PRIMARY KEY, created TEXT NOT NULL);
            CREATE TABLE model_packages (group_name TEXT NOT NULL, version INTEGER NOT NULL, status TEXT NOT NULL,
                request TEXT NOT NULL, metrics TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL,
                execution_id TEXT, PRIMARY KEY (group_name, version));
            INSERT INTO model_package_groups VALUES ('g', 't');
            INSERT INTO model_packages VALUES ('g', 1, 'Approved', '{}', '{}', 't', 't', 'e0');
        """)
    registry = Registry(path)
    assert registry.get("g", 1)["ModelApprovalStatus"] == "Approved"
    assert registry.register({"ModelPackageGroupName": "g"}, execution_id="e1")["ModelPackageVersion"] == 2
    assert registry.set_model_card("g", 1, "# card")["ModelCard"]["ModelCardContent"] == "# card"
    Registry(path)  # opening it again finds the column in place
    with pytest.raises(LookupError):
        registry.set_model_card("g", 9, "# card")


# --- end to end: a real small local run, then `deploy.py report` ----------------------------------


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """One real local run on 1,500 generated rows (one tuning job); returns (home, summary)."""
    from examples.purchase_intent.shoppers_data import generate, write_csv

    tmp = tmp_path_factory.mktemp("report-run")
    csv = write_csv(generate(1500, seed=3), tmp / "sessions.csv")
    code, summary = run_cli("run", "--definition", EXAMPLE_DEF, "--local", "--home", tmp / "home", "--input-data", csv,
                            "-p", "MaxTuningJobs=1", "-p", "QualityThreshold=0.5")
    assert code == 0, summary
    return LocalHome(tmp / "home"), summary


def test_run_local_renders_the_report_and_the_model_card(local_run):
    home, summary = local_run
    html = Path(summary["report"]).read_text()
    assert summary["report"] == str(home.runs / summary["execution_id"] / "report.html")
    assert ids(html) == {"roc", "pr", "calibration", "confusion", "lift", "importance"}
    assert "1,500" in html and summary["registered_model"]["ModelPackageArn"] in html
    card = LocalStore(home.s3).get_bytes(summary["model_card"]).decode()
    assert summary["registered_model"]["ModelPackageArn"] in card and "| `max_depth` |" in card
    assert home.execution(summary["execution_id"])["report"] == summary["report"]


def test_the_report_command_writes_the_report_of_a_local_run(local_run, tmp_path, capsys):
    home, summary = local_run
    out = tmp_path / "copy.html"
    assert cli.main(["report", summary["execution_id"], "--home", str(home.root), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert summary["execution_id"] in html and html.count(PNG) == 6
    assert f"{summary['gate']['value']:.4f}" in html


def test_the_report_command_names_an_unknown_execution(tmp_path, capsys):
    assert cli.main(["report", "nope", "--home", str(tmp_path)]) == 2
    assert "no local execution 'nope'" in capsys.readouterr().err


def test_the_report_command_still_writes_a_report_when_the_recorded_definition_is_lost(local_run, tmp_path, capsys):
    home, summary = local_run
    copy = LocalHome(tmp_path / "home")
    shutil.copytree(home.root, copy.root)
    (copy.runs / summary["execution_id"] / "definition.json").write_text("{not json")
    out = tmp_path / "without-definition.html"
    assert cli.main(["report", summary["execution_id"], "--home", str(copy.root), "--output", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert summary["execution_id"] in html and f"{summary['gate']['value']:.4f}" in html


# --- tuning, logs, fitting the page, rendering again ------------------------------------------------


def test_the_report_shows_each_model_familys_validation_score_and_weight(tmp_path):
    html, _ = render(tmp_path)
    table = html[html.index('<table class="families"'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td class=\"n\">([0-9.]+)</td>\s*<td class=\"n\">([0-9.]+)</td>",
                      table)
    assert rows == [("xgboost", "0.9100", "0.6"), ("extratrees", "0.8765", "0.4"), ("linear", "0.8500", "0")]


def test_the_report_lists_every_tuning_trial_in_order_with_the_chosen_one_and_failures(tmp_path):
    html, _ = render(tmp_path)
    table = html[html.index('<table class="trials">'):]
    table = table[:table.index("</table>")]
    rows = re.findall(r"<tr class=\"(best)?\"><td class=\"n\">(\d)</td>", table)
    assert [(number, best) for best, number in rows] == [("1", ""), ("2", "best"), ("3", "")]
    assert "<strong>0.9100</strong>" in table and '<span class="pill">chosen</span>' in table
    assert 'title="AlgorithmError: out of memory">failed' in table


def test_each_step_links_to_its_log_relative_to_the_report(tmp_path):
    execution, definition_, store, _ = fake_run(tmp_path)
    for step in execution["steps"]:
        step["log"] = str(tmp_path / "runs" / "e1" / "logs" / f"{step['name']}.log")
    html = report.render_report(execution, definition_, store, out_path=tmp_path / "runs" / "e1" / "report.html").read_text()
    assert '<a class="log" href="logs/Evaluate.log"' in html
    assert '<a href="logs/Tune.log">' in html  # the step in the graph


def test_long_parameter_values_wrap_in_their_cell_with_the_whole_value_in_a_tooltip(tmp_path):
    execution, definition_, store, _ = fake_run(tmp_path)
    long = "s3://a-bucket-with-a-long-name/" + "deeply/nested/" * 12 + "sessions.csv"
    execution["parameters"]["InputData"] = long
    html = report.render_report(execution, definition_, store, out_path=tmp_path / "r.html").read_text()
    assert re.search(f'<span class="long" title="{long}">(<strong>)?{long}', html)
    assert "table-layout: fixed" in html and "overflow-wrap: anywhere" in html


def test_a_later_render_shows_the_approval_status_now_and_the_recorded_subtitle(tmp_path):
    execution, definition_, store, _ = fake_run(tmp_path)
    home = LocalHome(tmp_path / "home")
    registry = Registry.of(home)
    registry.register({"ModelPackageGroupName": "purchase-intent", "ModelApprovalStatus": "PendingManualApproval",
                       "InferenceSpecification": {"Containers": [{"Image": "x", "ModelDataUrl": MODEL}]}},
                      execution_id="e1")
    registry.register({"ModelPackageGroupName": "purchase-intent", "ModelApprovalStatus": "PendingManualApproval",
                       "InferenceSpecification": {"Containers": [{"Image": "x", "ModelDataUrl": MODEL}]}},
                      execution_id="e1")
    registry.register({"ModelPackageGroupName": "purchase-intent", "ModelApprovalStatus": "PendingManualApproval",
                       "InferenceSpecification": {"Containers": [{"Image": "x", "ModelDataUrl": MODEL}]}},
                      execution_id="e1")  # version 3, as the record says
    registry.set_status("purchase-intent", 3, "Approved")
    execution["description"] = "Will this session buy?"
    html = report.render_report(execution, definition_, store, out_path=tmp_path / "r.html", home=home).read_text()
    assert "purchase-intent v3 <small>· Approved</small>" in html and "PendingManualApproval" not in html
    assert '<div class="sub">Will this session buy?</div>' in html


def test_plots_drawn_once_are_reused_for_the_same_data(tmp_path, monkeypatch):
    execution, definition_, store, _ = fake_run(tmp_path)
    home = LocalHome(tmp_path / "home")
    first = report.render_report(execution, definition_, store, out_path=tmp_path / "a.html", home=home).read_text()
    monkeypatch.setattr(report.plots, "_png", lambda figure: pytest.fail("a plot was drawn again"))
    second = report.render_report(execution, definition_, store, out_path=tmp_path / "b.html", home=home).read_text()
    assert re.findall(r'src="(data:[^"]+)"', first) == re.findall(r'src="(data:[^"]+)"', second)
    execution["steps"][2]["property_files"]["EvaluationReport"]["n_test"] = 299  # other data: drawn anew
    monkeypatch.undo()
    calls = []
    monkeypatch.setattr(report.plots, "_png", lambda figure: calls.append(figure) or PNG)
    report.render_report(execution, definition_, store, out_path=tmp_path / "c.html", home=home)
    assert len(calls) == 7
