"""Two executions of the purchase-intent pipeline at once, as two `deploy.py run --local` processes
sharing one home: both complete, the registry gives them distinct consecutive versions, every cache
entry is whole JSON, and each execution's outputs are its own and intact.

The two runs differ only in SplitSeed, so neither can be served from the other's cache and their
outputs must differ. Registration under contention is also covered process by process in
tests/local/test_registry.py (test_two_processes_registering_at_once_get_distinct_versions).
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from types import SimpleNamespace

import pytest

from conftest import EXAMPLE_DEF, steps_of

from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.local import LocalHome, open_store

from .support import PROJECT_ROOT, REGION, registry_rows, subprocess_env

pytestmark = pytest.mark.reliability

SEEDS = (11, 12)
CACHEABLE = ("Preprocess", "Train", "Evaluate")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("concurrent")
    home = LocalHome(root / "home")
    data = write_csv(generate(1000, seed=5), root / "sessions.csv")
    processes = [subprocess.Popen(
        [sys.executable, "deploy.py", "run", "--definition", EXAMPLE_DEF, "--local", "--json", "--no-tuning", "--region", REGION,
         "--home", str(home.root), "--input-data", str(data), "-p", "QualityThreshold=0.6", "-p", f"SplitSeed={seed}"],
        cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for seed in SEEDS]
    finished = [process.communicate(timeout=600) for process in processes]
    for process, (out, err) in zip(processes, finished):
        assert process.returncode == 0, f"exit {process.returncode}\n{out[-2000:]}\n{err[-4000:]}"
    summaries = [json.loads(out) for out, _ in finished]
    return SimpleNamespace(home=home, store=open_store(None, root=home.s3), summaries=summaries,
                           records=[home.execution(s["execution_id"]) for s in summaries])


def outputs(record: dict) -> dict[str, str]:
    """Every output location the execution's jobs report, by step and output."""
    steps = steps_of(record)
    found = {"Train/model": steps["Train"]["response"]["ModelArtifacts"]["S3ModelArtifacts"]}
    for name in ("Preprocess", "Evaluate"):
        for output in steps[name]["response"]["ProcessingOutputConfig"]["Outputs"]:
            found[f"{name}/{output['OutputName']}"] = output["S3Output"]["S3Uri"]
    return found


def test_both_executions_complete(runs):
    assert [s["status"] for s in runs.summaries] == ["Succeeded", "Succeeded"]
    assert len({s["execution_id"] for s in runs.summaries}) == 2
    for record in runs.records:
        assert all(not steps_of(record)[name]["cache_hit"] for name in CACHEABLE)  # both really ran


def test_registry_versions_are_distinct_and_consecutive_each_with_its_own_metrics(runs):
    rows = registry_rows(runs.home)
    assert sorted(row["ModelPackageVersion"] for row in rows) == [1, 2]
    by_execution = {row["PipelineExecutionId"]: row for row in rows}
    assert by_execution.keys() == {s["execution_id"] for s in runs.summaries}
    for summary in runs.summaries:
        row = by_execution[summary["execution_id"]]
        assert row["Metrics"]["ModelQuality.Statistics"] == summary["metrics"]
        assert summary["registered_model"]["ModelPackageVersion"] == row["ModelPackageVersion"]


def test_every_cache_entry_is_whole_json_naming_one_of_the_executions(runs):
    entries = [json.loads(path.read_text()) for path in runs.home.cache.glob("*.json")]
    assert sorted((e["execution_id"], e["step_name"]) for e in entries) == sorted(
        (s["execution_id"], name) for s in runs.summaries for name in CACHEABLE)


def test_each_execution_has_its_own_intact_outputs(runs):
    first, second = (outputs(record) for record in runs.records)
    assert first.keys() == second.keys() and not set(first.values()) & set(second.values())
    splits = []
    for record, seed in zip(runs.records, SEEDS):
        where = outputs(record)
        profile = json.loads(runs.store.get_bytes(f"{where['Preprocess/profile']}/profile.json"))
        assert profile["seed"] == seed
        with tarfile.open(fileobj=io.BytesIO(runs.store.get_bytes(where["Train/model"]))) as model:
            assert "code/inference.py" in model.getnames()
        assert json.loads(runs.store.get_bytes(f"{where['Evaluate/evaluation']}/evaluation.json"))
        splits.append([runs.store.get_bytes(uri) for uri in sorted(runs.store.list(where["Preprocess/test"]))])
    assert splits[0] != splits[1]  # different seeds, different splits: nothing was shared or overwritten
