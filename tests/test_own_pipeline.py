"""A user's own pipeline, first class: the diabetes regression of tests/fixtures/diabetes, passed by
file path, with its own scripts, scikit-learn image, metric regexes and model code folder.

It runs through `pipelines.testing` (the public testing API) and through `deploy.py` as a user
types it: it runs locally, registers into its own group, is approved and served, is upserted to
SageMaker (moto), and nothing of purchase-intent shows up in its JSON, records, store paths or registry.
"""
from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
import tarfile

import pytest

from conftest import BUCKET, FAKE_ROLE, PROJECT_ROOT, offline_environ
from fixtures.servers import serving

from pipelines import cli
from pipelines.testing import run_locally

DEFINITION = "tests/fixtures/diabetes/pipeline.py"
GROUP = "diabetes-progression"
ROWS = "age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n59,2,32.1,101,157,93.2,38,4,4.8598,87\n48,1,21.6,87,183,103.2,70,3,3.8918,69\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One run of the pipeline in a fresh home, shared by the tests that only read it."""
    return run_locally(PROJECT_ROOT / DEFINITION, home=tmp_path_factory.mktemp("diabetes") / "home")


def test_it_runs_locally_on_its_example_data_and_registers(run):
    assert run.succeeded, run.failure_reason
    assert {n: (s.type, s.status) for n, s in run.steps.items()} == {
        "Prepare": ("Processing", "Succeeded"), "Tune": ("Tuning", "Succeeded"),
        "Evaluate": ("Processing", "Succeeded"), "Gate": ("Condition", "Succeeded"),
        "Register-RegisterModel": ("RegisterModel", "Succeeded"), "TooHigh": ("Fail", "NotRun")}
    assert run.registered["ModelPackageGroupName"] == GROUP
    assert run.registered["ModelApprovalStatus"] == "PendingManualApproval"
    assert [v["ModelPackageVersion"] for v in run.registry.list_versions(GROUP)] == [1]


def test_it_trains_in_the_scikit_learn_image_with_its_own_metric_regexes(run):
    tune = run.steps["Tune"]
    definition = tune.arguments["TrainingJobDefinition"]
    assert "sagemaker-scikit-learn:1.2-1" in definition["AlgorithmSpecification"]["TrainingImage"]
    assert {m["Name"]: m["Regex"] for m in definition["AlgorithmSpecification"]["MetricDefinitions"]} == {
        "validation:rmse": r"validation rmse: ([0-9.]+)", "validation:r2": r"r2 = (-?[0-9.]+)"}
    best = tune.response["BestTrainingJob"]
    objective = best["FinalHyperParameterTuningJobObjectiveMetric"]
    assert objective["MetricName"] == "validation:rmse" and 30 < objective["Value"] < 90  # read from its own print
    assert set(best["TunedHyperParameters"]) == {"alpha"}
    # What the script was given: its own hyperparameters as written, plus the one the tuner adds.
    static = {k: json.loads(v) for k, v in definition["StaticHyperParameters"].items() if not k.startswith("sagemaker_")}
    assert static == {"target": "progression", "fit-intercept": "true"}


def test_its_gate_and_report_are_its_own(run):
    assert run.gate["metric"] == "regression_metrics.rmse.value"
    assert run.gate["value"] == run.metrics["regression_metrics"]["rmse"]["value"] < 70
    assert (run.gate["operator"], run.gate["threshold"], run.gate["outcome"]) == ("≤", 70.0, "True")
    html = run.report.read_text()
    assert "Disease progression one year after baseline" in html  # its own description
    assert 'id="plot-predicted_vs_actual"' in html and 'id="plot-importance"' in html  # what evaluation.json holds


def test_its_model_is_served_from_its_own_code_folder(run):
    container = run.registered["InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    submit = container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"]
    assert submit.startswith("s3://") and submit.endswith("/sourcedir.tar.gz")
    assert "sagemaker-scikit-learn:1.2-1" in container["Image"]
    archive = run.workspace.target.store.get_bytes(container["ModelDataUrl"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        assert tar.getnames() == ["model.joblib"]  # no inference code copied into the model
    predictions = run.predict(ROWS).decode().split()
    assert len(predictions) == 2 and all(25 < float(p) < 346 for p in predictions)  # the data set's range


def test_nothing_of_the_worked_example_reaches_its_records_logs_report_store_or_registry(run):
    home = run.home
    run_dir = home.runs / run.execution_id
    texts = [(run_dir / "definition.json").read_text(), (run_dir / "execution.json").read_text(),
             *(p.read_text() for p in run_dir.rglob("*") if p.suffix in (".log", ".html", ".md"))]
    with sqlite3.connect(home.registry) as db:
        texts += [repr(row) for table in ("model_package_groups", "model_packages")
                  for row in db.execute(f"SELECT * FROM {table}")]  # fixed table names
    texts += [p.relative_to(home.s3).as_posix() for p in home.s3.rglob("*")]
    assert not [t[:200] for t in texts if "purchase" in t.lower() or "shopper" in t.lower() or "Revenue" in t]
    assert all(t.startswith("ml-pipelines-dev/diabetes/") for t in texts[-3:])


def test_deploy_py_runs_approves_and_serves_it_by_path(tmp_path):
    env, home = offline_environ(tmp_path), tmp_path / "home"

    def deploy(*args):
        return subprocess.run([sys.executable, "deploy.py", *args, "--definition", DEFINITION, "--home", str(home)],
                              cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)

    ran = deploy("run", "--local", "--json", "-p", "MaxRmse=75")
    assert ran.returncode == 0, ran.stderr[-3000:]
    summary = json.loads(ran.stdout)
    assert summary["gate"]["metric"] == "regression_metrics.rmse.value" and summary["gate"]["value"] < 75
    approved = deploy("approve", "latest", "--local")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip().endswith(f"model-package/{GROUP}/1: Approved")
    listed = deploy("models", "--local")
    assert listed.stdout.splitlines()[0] == f"{GROUP}  (regression model of 'progression')"
    assert "Approved" in listed.stdout
    rows = tmp_path / "rows.csv"
    rows.write_text(ROWS)
    with serving(lambda port: [sys.executable, "deploy.py", "serve", "--local", "--definition", DEFINITION,
                               "--home", str(home), "--port", str(port)],
                 "/ping", tmp_path / "serve.log", cwd=PROJECT_ROOT, env=env) as url:
        predicted = subprocess.run([sys.executable, "deploy.py", "predict", "--local", "--url", url],
                                   input=ROWS, cwd=PROJECT_ROOT, env={**env, "NO_PROXY": "127.0.0.1"},
                                   capture_output=True, text=True, timeout=60)
    assert predicted.returncode == 0, predicted.stderr
    assert len(predicted.stdout.split()) == 2


def test_it_is_upserted_to_sagemaker_by_path_under_its_own_name_and_prefix(dev_aws, capsys):
    sm, s3 = dev_aws
    assert cli.main(["upsert", "--definition", DEFINITION, "--role-arn", FAKE_ROLE]) == 0
    assert capsys.readouterr().out.strip().endswith(":pipeline/diabetes")
    deployed = sm.describe_pipeline(PipelineName="diabetes")
    assert deployed["PipelineDisplayName"] == "Diabetes progression"
    assert deployed["PipelineDescription"].startswith("Disease progression one year after baseline")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert keys and all(k.startswith("diabetes/code/") for k in keys)  # prepare.py, evaluate.py, model/ bundle
    assert "purchase" not in deployed["PipelineDefinition"].lower()
    assert cli.main(["diff", "--definition", DEFINITION]) == 0
