"""`deploy.py prune --local`: what a home may lose and what it must keep, and the losing tuning trials
that go when their tuning step ends."""
from __future__ import annotations

import contextlib
import io
import json

import pytest
from fixtures.steps import fixture_state
from fixtures.tables import numbers_only

from pipelines import cli
from pipelines.local import LocalHome

from test_operations import Run


def deploy(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*map(str, args)])
    return code, out.getvalue(), err.getvalue()


TUNING = ("-p", "MaxTuningJobs=2", "-p", "MaxParallelTuningJobs=1")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home with: A, a tuned run whose version is pending; B, one whose version was rejected; C and D,
    cheap runs of a fixture pipeline; a batch transform's folder; and E, a run that is going on."""
    root = tmp_path_factory.mktemp("prune")
    table = root / "sensors.csv"
    numbers_only(600).frame.to_csv(table, index=False)
    home = root / "home"
    flags = ["--local", "--home", str(home)]
    runs = {}
    for name, seed in (("A", 1), ("B", 2)):
        code, out, err = deploy("run", *flags, "--input-data", table, "--label", "failed", *TUNING,
                                "-p", f"SplitSeed={seed}", "--json")
        assert code == 0, err
        runs[name] = json.loads(out)
    assert deploy("reject", "2", "--group", "tabular-failed-binary", *flags)[0] == 0
    assert deploy("approve", "1", "--group", "tabular-failed-binary", *flags)[0] == 0
    code, _, err = deploy("batch-transform", "--group", "tabular-failed-binary", "--input", table, *flags)
    assert code == 0, err
    state_uri, state = fixture_state(home)
    (state / "Held.go").touch()
    for name in ("C", "D"):
        code, out, err = deploy("run", *flags, "--definition", "fixtures.hold_pipeline", "-p", f"StateDir={state_uri}",
                                "--json")
        assert code == 0, err
        runs[name] = json.loads(out)
    (state / "Held.go").unlink()
    going = Run(root / "going")  # its own home: E holds until released
    yield {"root": root, "home": LocalHome(home), "runs": runs, "going": going, "table": table}
    (going.state / "Held.go").touch()
    going.finish()


def ids(home) -> set[str]:
    return {p.name for p in home.runs.iterdir()}


def test_losing_trials_folders_go_when_their_tuning_step_ends(home):
    record = home["home"].execution(home["runs"]["A"]["execution_id"])
    tune = next(s for s in record["steps"] if s["type"] == "Tuning")
    best = tune["response"]["BestTrainingJob"]["TrainingJobName"]
    trials = home["home"].runs / record["execution_id"] / "jobs" / tune["job_name"]
    assert sorted(p.name for p in trials.iterdir() if p.is_dir()) == [best]
    assert len(tune["response"]["TrainingJobSummaries"]) == 2


def test_keep_trials_keeps_them(tmp_path, home):
    code, out, err = deploy("run", "--local", "--home", tmp_path, "--input-data", home["table"], "--label", "failed",
                            *TUNING, "--keep-trials", "--json")
    assert code == 0, err
    record = LocalHome(tmp_path).execution(json.loads(out)["execution_id"])
    tune = next(s for s in record["steps"] if s["type"] == "Tuning")
    assert len([p for p in (tmp_path / "runs" / record["execution_id"] / "jobs" / tune["job_name"]).iterdir()
                if p.is_dir()]) == 2


def test_a_dry_run_lists_what_may_go_and_deletes_nothing(home):
    before = ids(home["home"])
    code, out, err = deploy("prune", "--local", "--home", home["home"].root, "--keep", "1", "--dry-run")
    assert code == 0, err
    runs = home["runs"]
    assert f"execution {runs['B']['execution_id']}" in out and f"execution {runs['C']['execution_id']}" in out
    assert runs["A"]["execution_id"] not in out.split("kept:")[0]
    assert "transform" in out and "would free" in out
    assert ids(home["home"]) == before


def test_older_than_spares_what_is_newer(home):
    code, out, _ = deploy("prune", "--local", "--home", home["home"].root, "--keep", "0", "--older-than", "1d")
    assert code == 0 and "freed 0 B" in out


def test_prune_frees_what_it_may_and_keeps_what_it_must(home):
    runs, local = home["runs"], home["home"]
    b = local.execution(runs["B"]["execution_id"])
    b_outputs = [o["S3Output"]["S3Uri"] for s in b["steps"] if s["name"] == "Preprocess"
                 for o in s["response"]["ProcessingOutputConfig"]["Outputs"]]
    code, out, err = deploy("prune", "--local", "--home", local.root, "--keep", "1")
    assert code == 0, err
    assert ids(local) == {runs["A"]["execution_id"], runs["D"]["execution_id"]}  # A: its version; D: the newest
    store = home["home"].s3
    assert not any((store / uri.removeprefix("s3://")).exists() for uri in b_outputs)
    assert not any(json.loads(p.read_text())["execution_id"] == b["execution_id"] for p in local.cache.glob("*.json"))
    transforms = list((local.root / "transforms").iterdir())
    assert transforms and all(p.name.endswith(".log") for t in transforms for p in t.iterdir())
    # A's model still serves: a batch transform with it runs
    code, _, err = deploy("batch-transform", "--group", "tabular-failed-binary", "--input", home["table"],
                          "--local", "--home", local.root)
    assert code == 0, err


def test_a_run_that_is_going_on_is_never_touched(home):
    going = home["going"]
    code, out, err = deploy("prune", "--local", "--home", going.home.root, "--keep", "0")
    assert code == 0, err
    assert going.execution_id in ids(going.home) and f"{going.execution_id}: going on" in out

