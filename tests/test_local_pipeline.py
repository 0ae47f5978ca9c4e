"""End to end: whole pipelines through the command line, on the local runner.

The purchase-intent pipeline runs as a user runs it (`python deploy.py run
--local ...` in a subprocess) on 1,500 generated sessions with two tuning jobs;
one successful run is shared by the tests that only read it. The fixture
pipelines of tests/fixtures (resume, retries, hard-coded /opt/ml paths) run
in process through `pipelines.cli.main`, which is the same code path minus the
interpreter start. ShardedByS3Key is covered job by job in tests/local/test_jobs.py.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import EXAMPLE, EXAMPLE_DEF, PROJECT_ROOT, example, example_config, offline_environ, run_cli, steps_of

from pipelines import cli
from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.local import LocalHome, Registry, open_store
from pipelines.testing import run_locally

from fixtures.steps import fixture_state

GROUP = "purchase-intent-revenue-binary"
# Small and quick: two tuning jobs, both at once. The gate is lowered from 0.80 so that an
# unlucky random draw of hyperparameters on 1,500 rows cannot turn this into the Fail branch.
SMALL = ["-p", "MaxTuningJobs=2", "-p", "MaxParallelTuningJobs=2"]
PASSING_GATE = ["-p", "QualityThreshold=0.6"]
STEP_TYPES = {
    "Preprocess": "Processing", "Tune": "Tuning", "Evaluate": "Processing", "QualityGate": "Condition",
    "Register-RegisterModel": "RegisterModel", "Fail": "Fail",
}
CACHEABLE = ("Preprocess", "Tune", "Evaluate")


# --- helpers ---------------------------------------------------------------------------------


def deploy(ws, *args: str) -> subprocess.CompletedProcess:
    """`python deploy.py ARGS` from the project root, offline, as a user would type it."""
    return subprocess.run([sys.executable, "deploy.py", *map(str, args)], cwd=PROJECT_ROOT, env=ws.env,
                          capture_output=True, text=True, timeout=900)


def run_json(ws, *args: str, home: Path | None = None) -> SimpleNamespace:
    """`deploy.py run --local --json` on the small data set; its exit code, summary and record."""
    home = home or ws.home
    proc = deploy(ws, "run", "--local", "--json", "--definition", EXAMPLE_DEF, "--home", home, "--input-data", ws.data,
                  *SMALL, *args)
    try:
        summary = json.loads(proc.stdout)  # exactly one JSON document, nothing else on stdout
    except ValueError:
        pytest.fail(f"run --local --json printed no single JSON document (exit {proc.returncode}):\n"
                    f"stdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-4000:]}")
    record = LocalHome(home).execution(summary["execution_id"])
    return SimpleNamespace(code=proc.returncode, stderr=proc.stderr, summary=summary, record=record)


def output_json(home: Path, step: dict, output: str, filename: str):
    """A file a processing step wrote to output `output`, read back from the local S3 store."""
    (uri,) = [o["S3Output"]["S3Uri"] for o in step["response"]["ProcessingOutputConfig"]["Outputs"]
              if o["OutputName"] == output]
    return json.loads(open_store(None, root=LocalHome(home).s3).get_bytes(f"{uri.rstrip('/')}/{filename}"))


def versions(home: Path) -> list[dict]:
    registry_path = LocalHome(home).registry
    return Registry(registry_path).list_versions(GROUP) if registry_path.exists() else []


# --- the purchase-intent pipeline, through deploy.py ---------------------------------------------


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("local-pipeline")
    data = write_csv(generate(1500, seed=3), root / "sessions.csv")
    return SimpleNamespace(home=root / "home", data=data, env=offline_environ(root))


@pytest.fixture(scope="module")
def first_run(ws) -> SimpleNamespace:
    run = run_json(ws, *PASSING_GATE)
    assert run.code == 0, f"run failed: {run.summary['failure_reason']}\n{run.stderr[-4000:]}"
    return run


@pytest.fixture(scope="module")
def gate_run(ws, first_run) -> SimpleNamespace:
    """The same data with a gate no model can pass; registry versions before and after."""
    before = versions(ws.home)
    run = run_json(ws, "-p", "QualityThreshold=1.01")
    return SimpleNamespace(**vars(run), versions_before=before, versions_after=versions(ws.home))


@pytest.fixture(scope="module")
def second_run(ws, first_run) -> SimpleNamespace:
    return run_json(ws, *PASSING_GATE)


def test_the_pipeline_reaches_register_and_exits_0(first_run):
    summary, steps = first_run.summary, steps_of(first_run.record)
    assert (summary["status"], summary["failure_reason"]) == ("Succeeded", None)
    assert first_run.record["status"] == "Succeeded"
    assert {name: s["status"] for name, s in steps.items()} == {
        "Preprocess": "Succeeded", "Tune": "Succeeded", "Evaluate": "Succeeded", "QualityGate": "Succeeded",
        "Register-RegisterModel": "Succeeded", "Fail": "NotRun"}
    assert len(steps["Tune"]["response"]["TrainingJobSummaries"]) == 2  # -p MaxTuningJobs=2 was honoured
    assert summary["registered_model"]["ModelApprovalStatus"] == "PendingManualApproval"


def test_json_summary_describes_every_step_and_carries_evaluation_json(first_run, ws):
    summary = first_run.summary
    assert {"execution_id", "status", "failure_reason", "steps", "metrics"} <= summary.keys()
    assert summary["execution_id"] == first_run.record["execution_id"]
    assert [s["name"] for s in summary["steps"]] == [s["name"] for s in first_run.record["steps"]]
    assert {s["name"]: s["type"] for s in summary["steps"]} == STEP_TYPES
    for step in summary["steps"]:
        assert {"name", "type", "status", "cache_hit", "seconds"} <= step.keys(), step
        assert step["cache_hit"] is False, step  # a fresh home has no cache
        if step["status"] == "NotRun":
            assert step["seconds"] is None, step
        else:
            assert isinstance(step["seconds"], (int, float)) and step["seconds"] >= 0, step
    evaluation = output_json(ws.home, steps_of(first_run.record)["Evaluate"], "evaluation", "evaluation.json")
    assert summary["metrics"] == evaluation
    assert 0.5 < evaluation["binary_classification_metrics"]["roc_auc"]["value"] <= 1


def test_models_lists_the_registered_version(first_run, ws):
    proc = deploy(ws, "models", "--local", "--home", ws.home)
    assert proc.returncode == 0, proc.stderr
    version = first_run.summary["registered_model"]["ModelPackageVersion"]
    lines = proc.stdout.splitlines()
    assert f"{GROUP}  (binary model of 'Revenue')" in lines  # each group says what its model predicts
    (line,) = [line for line in lines if line.split()[:1] == [f"v{version}"]]
    assert "PendingManualApproval" in line and "roc_auc=" in line
    (registered,) = [v for v in versions(ws.home) if v["ModelPackageVersion"] == version]
    assert registered["PipelineExecutionId"] == first_run.summary["execution_id"]


def test_a_gate_no_model_passes_ends_in_fail_with_the_gate_message(gate_run):
    summary, steps = gate_run.summary, steps_of(gate_run.record)
    assert gate_run.code != 0
    assert summary["status"] == "Failed" and gate_run.record["failed_step"] == "Fail"
    assert {name: s["status"] for name, s in steps.items() if name in ("QualityGate", "Fail", "Register-RegisterModel")} \
        == {"QualityGate": "Succeeded", "Fail": "Failed", "Register-RegisterModel": "NotRun"}
    reason = summary["failure_reason"]
    assert reason == steps["Fail"]["failure_reason"]
    value = re.search(r"roc_auc\D*?([0-9]+\.[0-9]+(?:e-?\d+)?)", reason)  # names the metric, then its value
    assert value, reason
    assert float(value.group(1)) == pytest.approx(summary["gate"]["value"], abs=1e-3)
    assert "1.01" in reason.split(value.group(1), 1)[1]  # ... and the threshold after it


def test_a_failed_gate_registers_nothing(gate_run):
    assert gate_run.summary["registered_model"] is None
    assert gate_run.versions_after == gate_run.versions_before
    assert gate_run.summary["execution_id"] not in {v["PipelineExecutionId"] for v in gate_run.versions_after}


def test_an_identical_second_run_is_served_from_the_cache_and_registers(second_run, first_run):
    assert second_run.code == 0, second_run.summary["failure_reason"]
    steps, first = steps_of(second_run.record), steps_of(first_run.record)
    assert {name: steps[name]["cache_hit"] for name in CACHEABLE} == dict.fromkeys(CACHEABLE, True)
    for name in CACHEABLE:  # the earlier jobs' results, not new jobs
        assert steps[name]["job_name"] == first[name]["job_name"]
        assert steps[name]["response"] == first[name]["response"]
    assert second_run.summary["metrics"] == first_run.summary["metrics"]
    assert steps["Register-RegisterModel"]["status"] == "Succeeded"
    registered = second_run.summary["registered_model"]
    assert registered["ModelPackageVersion"] > first_run.summary["registered_model"]["ModelPackageVersion"]


def test_a_rerun_in_a_fresh_home_tries_the_same_hyperparameters_and_reproduces_the_model(ws, first_run, tmp_path):
    rerun = run_json(ws, *PASSING_GATE, home=tmp_path / "home")  # no cache to hit: every job runs again
    assert rerun.code == 0, rerun.summary["failure_reason"]
    assert rerun.summary["execution_id"] != first_run.summary["execution_id"]

    def trials(run):
        summaries = steps_of(run.record)["Tune"]["response"]["TrainingJobSummaries"]
        return sorted(json.dumps(t["TunedHyperParameters"], sort_keys=True) for t in summaries)

    assert len(trials(first_run)) == 2 and trials(rerun) == trials(first_run)  # RandomSeed fixes the search
    auc = "binary_classification_metrics.roc_auc.value"
    assert rerun.summary["gate"] == first_run.summary["gate"] and rerun.summary["gate"]["metric"] == auc


# --- fixture pipelines, through pipelines.cli.main ----------------------------------------------


@pytest.fixture(scope="module")
def fixture_home(tmp_path_factory) -> Path:
    """One home for the fixture pipelines' runs (each has its own execution id and state folder)."""
    return tmp_path_factory.mktemp("fixture-pipelines") / "home"


def test_resume_reruns_the_failed_step_and_what_follows_only(fixture_home):
    home = fixture_home
    state_uri, state = fixture_state(home)
    (state / "Flaky.fail").touch()
    failed = run_locally("fixtures.resume_pipeline", home=home, parameters={"StateDir": state_uri})
    assert failed.status == "Failed" and failed.failed_step == "Flaky"
    assert "Flaky: failing on purpose" in failed.failure_reason
    assert {n: s.status for n, s in failed.steps.items()} == {"First": "Succeeded", "Flaky": "Failed",
                                                              "Last": "NotRun"}
    before = steps_of(failed.record)

    (state / "Flaky.fail").unlink()
    resumed = run_locally("fixtures.resume_pipeline", home=home, resume=failed.execution_id)
    assert resumed.succeeded, resumed.failure_reason
    assert resumed.execution_id == failed.execution_id and resumed.record["resumes"] == 1
    after = steps_of(resumed.record)
    assert after["First"] == before["First"]  # same job, same times: not run again
    assert after["Flaky"]["job_name"] != before["Flaky"]["job_name"]
    assert after["Flaky"]["started"] > before["Flaky"]["started"]
    assert all(resumed.steps[name].status == "Succeeded" for name in ("Flaky", "Last"))
    assert (state / "runs.log").read_text().split() == ["First", "Flaky", "Flaky", "Last"]
    assert resumed.read_json("Last", "data", "Last.json")["lineage"] == ["First", "Flaky", "Last"]


def test_a_resume_that_cannot_start_is_an_error_message_not_a_traceback(tmp_path, capsys):
    code = cli.main(["run", "--local", "--home", str(tmp_path / "home"), "--resume", "no-such-execution"])
    assert code == 2
    assert "no-such-execution" in capsys.readouterr().err


@pytest.fixture(scope="module")
def retry_run(fixture_home) -> SimpleNamespace:
    home = fixture_home
    state_uri, state = fixture_state(home)
    code, summary = run_cli("run", "--local", "--definition", "fixtures.retry_pipeline", "--home", home,
                            "-p", f"StateDir={state_uri}")
    record = LocalHome(home).execution(summary["execution_id"])
    return SimpleNamespace(code=code, summary=summary, steps=steps_of(record),
                           runs=(state / "runs.log").read_text().split())


def test_a_transient_failure_is_retried_by_the_retry_policy(retry_run):
    step = retry_run.steps["Transient"]
    assert step["status"] == "Succeeded"
    assert [(a["attempt"], a["status"]) for a in step["attempts"]] == [(1, "Failed"), (2, "Succeeded")]
    killed = step["attempts"][0]
    assert killed["error_type"] == "SageMaker.JOB_INTERNAL_ERROR" and "SIGKILL" in killed["failure_reason"]
    assert step["attempts"][0]["job_name"] != step["attempts"][1]["job_name"]
    assert retry_run.runs.count("Transient") == 2


def test_a_permanent_failure_is_not_retried(retry_run):
    step = retry_run.steps["Permanent"]
    assert retry_run.code != 0 and retry_run.summary["status"] == "Failed"
    assert step["status"] == "Failed"
    assert [(a["attempt"], a["error_type"]) for a in step["attempts"]] == [(1, "AlgorithmError")]
    assert retry_run.runs.count("Permanent") == 1
    assert retry_run.summary["failure_reason"] == step["failure_reason"]
    assert "Permanent: failing on purpose" in step["failure_reason"]


def _namespace_unavailable() -> str | None:
    from pipelines.local.container import namespace_unavailable_reason

    return namespace_unavailable_reason()


@pytest.mark.skipif(_namespace_unavailable() is not None,
                    reason=f"mount-namespace isolation unavailable: {_namespace_unavailable()}")
def test_a_script_with_hard_coded_opt_ml_paths_runs_in_the_pipeline(fixture_home):
    home = fixture_home
    state_uri, _ = fixture_state(home)
    code, summary = run_cli("run", "--local", "--definition", "fixtures.hardcoded_pipeline", "--home", home,
                            "-p", f"StateDir={state_uri}")
    assert code == 0, summary["failure_reason"]
    steps = steps_of(LocalHome(home).execution(summary["execution_id"]))
    written = output_json(home, steps["HardCoded"], "data", "HardCoded.json")
    assert written["job"] == steps["HardCoded"]["job_name"] and written["host"] == "algo-1"
    assert steps["HardCoded"]["response"]["ExitMessage"] == "hard-coded paths ok"
    assert output_json(home, steps["Sink"], "data", "Sink.json")["lineage"] == ["Source", "HardCoded", "Sink"]


def test_the_purchase_pipeline_runs_without_a_mount_namespace(tmp_path):
    """Where unshare is unavailable the runner maps /opt/ml paths in arguments: the scripts get theirs spelled out."""
    from pipelines.compiler import compile_pipeline
    from pipelines.local import run_pipeline
    cfg = example_config(tuning=False)
    compiled = compile_pipeline(example().definition(cfg), cfg)
    home = LocalHome(tmp_path / "home")
    store = open_store(None, root=home.s3)
    for uri, code in compiled.assets.items():
        store.put_bytes(uri, code)
    store.put_file("s3://bucket/sessions.csv", write_csv(generate(900, seed=1), tmp_path / "s.csv"))
    record = run_pipeline(compiled.definition, pipeline_name=compiled.name, home=home, store=store, isolation="paths",
                          parameters={"InputData": "s3://bucket/sessions.csv", "QualityThreshold": "0.5"})
    assert record["status"] == "Succeeded", record["failure_reason"]
    assert "isolation=paths" in Path(next(s["log"] for s in record["steps"] if s["name"] == "Preprocess")).read_text()


@pytest.mark.parametrize("problem_type, label, threshold, section", [
    ("multiclass", "VisitorType", 0.5, "multiclass_classification_metrics"),
    ("regression", "ProductRelated_Duration", 0.3, "regression_metrics"),
])
def test_other_problem_types_run_end_to_end_through_flags_alone(tmp_path, problem_type, label, threshold, section):
    """A raw feature column as the label: the model must not need it as an input, nor leak it."""
    csv = write_csv(generate(1200, seed=5), tmp_path / "sessions.csv")
    run = run_locally(EXAMPLE, home=tmp_path / "home", input_data=csv, tuning=False,
                      problem_type=problem_type, label=label, parameters={"QualityThreshold": threshold})
    assert run.succeeded, run.failure_reason
    assert run.registered["ModelPackageVersion"] == 1
    assert run.registered["CustomerMetadataProperties"] == {"problem_type": problem_type, "label": label}
    assert set(run.metrics) >= {section} and run.gate["value"] >= threshold
    assert run.gate["metric"] == f"{section}.{'accuracy' if problem_type == 'multiclass' else 'r2'}.value"


@pytest.mark.skipif(_namespace_unavailable() is not None,
                    reason=f"hosts reach each other by name in a mount namespace only: {_namespace_unavailable()}")
def test_two_instances_per_job_share_the_work_and_train_one_model(tmp_path):
    sessions, frame = tmp_path / "sessions", generate(1500, seed=3)
    for i in range(3):  # three objects: the processing instances divide them
        write_csv(frame.iloc[i::3], sessions / f"part-{i}.csv")
    home = tmp_path / "home"
    code, summary = run_cli("run", "--definition", EXAMPLE_DEF, "--local", "--home", home, "--input-data", sessions, *PASSING_GATE,
                            "-p", "MaxTuningJobs=1", "-p", "ProcessingInstanceCount=2", "-p", "TrainingInstanceCount=2")
    assert code == 0, summary["failure_reason"]
    steps = steps_of(LocalHome(home).execution(summary["execution_id"]))
    profile = output_json(home, steps["Preprocess"], "profile", "profile.json")
    assert profile["hosts"] == 2 and profile["rows_read"] == 1500 and len(profile["input_files"]) == 3
    (train_uri,) = [o["S3Output"]["S3Uri"] for o in steps["Preprocess"]["response"]["ProcessingOutputConfig"]["Outputs"]
                    if o["OutputName"] == "train"]
    parts = open_store(None, root=LocalHome(home).s3).list(train_uri)
    assert {p.rsplit("/", 1)[1].split("-")[2] for p in parts} == {"1", "2"}  # part-algo-N-k: both wrote theirs
    log = Path(steps["Tune"]["log"]).read_text()
    assert "Task 1 got rank 1" in log and re.search(r"\[[^]]*/algo-1\] validation:auc=", log)
    assert summary["gate"]["value"] > 0.8
