"""Crashes: a job killed mid-step, the runner itself killed mid-execution, and writes interrupted
half-way. Each leaves whole files only (records, cache entries, objects), and the execution either
retries or resumes to the end without redoing finished work.

The fixture pipeline First -> Held -> Last (tests/fixtures/hold_pipeline.py) holds its middle step
until the test releases it, so a process can be killed at a known point. Elsewhere: a script that
SIGKILLs itself is retried and one that exits 1 is not (test_local_pipeline.py,
test_a_transient_failure_is_retried_by_the_retry_policy and test_a_permanent_failure_is_not_retried).
"""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import steps_of

from pipelines import cli, files
from pipelines.local import LocalHome, open_store, run_pipeline, storage

from fixtures.steps import fixture_state, job_pid

from .support import PROJECT_ROOT, compile_module, local_store, registry_rows, subprocess_env, wait_for

pytestmark = pytest.mark.reliability

TRANSIENT = "SageMaker.JOB_INTERNAL_ERROR"


@pytest.fixture(scope="module")
def compiled():
    return compile_module("fixtures.hold_pipeline")


class Held:
    """The Held step of one execution: its state (an S3 prefix of the home's store, `fixture_state`),
    its announced process, its release."""

    def __init__(self, home: LocalHome):
        self.uri, self.state = fixture_state(home.root)

    def kill(self, alive=lambda: True) -> int:
        """SIGKILL the job's process group once it announces itself (as the OOM killer or an operator would)."""
        pid_file = self.state / "Held.pid"
        wait_for(pid_file, timeout=90, alive=alive)
        pid = job_pid(self.uri, "Held")
        pid_file.unlink()
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        return pid

    def release(self) -> None:
        (self.state / "Held.go").touch()

    def runs(self) -> list[str]:
        return (self.state / "runs.log").read_text().split()


def run(compiled, home: LocalHome, held: Held, **options) -> dict:
    return run_pipeline(compiled.definition, pipeline_name=compiled.name, home=home,
                        store=local_store(home, compiled), parameters={"StateDir": held.uri}, **options)


def objects(home: LocalHome, execution_id: str, step: str) -> list[str]:
    """What the store shows of a step's outputs."""
    return open_store(None, root=home.s3).list(f"s3://ml-pipelines-dev/local-fixture-hold/runs/{execution_id}/{step}/")


def debris(home: LocalHome) -> list[Path]:
    """Half-written files anywhere in the home: in-flight objects and temporary records or cache entries."""
    return [p for p in home.root.rglob("*") if p.name.startswith(storage._TMP_MARK) or p.name.endswith(".tmp")]


# --- a job killed mid-step -----------------------------------------------------------------------


def test_a_job_killed_mid_step_is_retried_with_backoff_until_it_succeeds(compiled, tmp_path):
    home, sleeps = LocalHome(tmp_path / "home"), []
    held = Held(home)
    with ThreadPoolExecutor(1) as pool:
        execution = pool.submit(run, compiled, home, held, sleep=sleeps.append)
        alive = lambda: not execution.done()  # noqa: E731
        held.kill(alive)  # attempt 1
        held.kill(alive)  # attempt 2
        held.release()  # attempt 3 goes through
        record = execution.result(timeout=120)
    assert record["status"] == "Succeeded", record["failure_reason"]
    attempts = steps_of(record)["Held"]["attempts"]
    assert [(a["status"], a["error_type"]) for a in attempts] == [("Failed", TRANSIENT)] * 2 + [("Succeeded", None)]
    assert all("killed by SIGKILL" in a["failure_reason"] for a in attempts[:2])
    assert len({a["job_name"] for a in attempts}) == 3
    assert sleeps == [1.0, 2.0]  # IntervalSeconds 1, BackoffRate 2
    assert held.runs() == ["First", "Held", "Held", "Held", "Last"]
    assert len(objects(home, record["execution_id"], "Held")) == 1  # the killed attempts uploaded nothing


# --- the runner killed mid-execution, then resumed ------------------------------------------------


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> SimpleNamespace:
    """`deploy.py run --local` SIGKILLed while Held runs; the home as the kill left it."""
    root = tmp_path_factory.mktemp("runner-killed")
    home = LocalHome(root / "home")
    held = Held(home)
    runner = subprocess.Popen(
        [sys.executable, "deploy.py", "run", "--local", "--json", "--definition", "fixtures.hold_pipeline",
         "--home", str(home.root), "-p", f"StateDir={held.uri}"],
        cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(held.state / "Held.pid", timeout=90, alive=lambda: runner.poll() is None)
        job = job_pid(held.uri, "Held")
        runner.kill()
        runner.wait(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    (execution_id,) = [p.name for p in home.runs.iterdir()]
    return SimpleNamespace(home=home, held=held, execution_id=execution_id, job=job)


def running(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting for its new parent to reap it is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_the_job_of_a_killed_runner_dies_with_it(interrupted):
    deadline = time.monotonic() + 10
    while running(interrupted.job) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = running(interrupted.job)
    if alive:
        os.kill(interrupted.job, signal.SIGKILL)  # stop it as an operator would, so later tests stay valid
    assert not alive, "the Held job outlived its SIGKILLed runner"


def test_a_killed_runner_leaves_whole_files_and_nothing_of_the_unfinished_step(interrupted):
    home, execution_id = interrupted.home, interrupted.execution_id
    record = home.execution(execution_id)  # parses: written whole, every time
    json.loads((home.runs / execution_id / "definition.json").read_text())
    assert record["status"] == "Executing"
    assert {n: s["status"] for n, s in steps_of(record).items()} == {
        "First": "Succeeded", "Held": "Executing", "Last": "NotRun"}
    entries = [json.loads(p.read_text()) for p in home.cache.glob("*.json")]
    assert [(e["execution_id"], e["step_name"]) for e in entries] == [(execution_id, "First")]
    assert registry_rows(home) == []
    assert objects(home, execution_id, "First") and not objects(home, execution_id, "Held")
    assert debris(home) == []


def test_resume_finishes_the_killed_execution_without_redoing_finished_steps(interrupted, capsys):
    home, held = interrupted.home, interrupted.held
    before = steps_of(home.execution(interrupted.execution_id))
    held.release()
    code = cli.main(["run", "--local", "--json", "--home", str(home.root), "--resume", interrupted.execution_id])
    summary = json.loads(capsys.readouterr().out)
    assert (code, summary["status"]) == (0, "Succeeded"), summary["failure_reason"]
    after = steps_of(home.execution(interrupted.execution_id))
    assert after["First"] == before["First"]
    assert held.runs() == ["First", "Held", "Held", "Last"]
    assert objects(home, interrupted.execution_id, "Last")
    assert debris(home) == []


# --- writes interrupted half-way -------------------------------------------------------------------


def fail_when(monkeypatch, module, broken) -> None:
    """`module`'s os.replace raises "no space left" for the renames `broken(source, target)` picks."""
    replace = os.replace

    def flaky(src, dst):
        if broken(Path(src), Path(dst)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        replace(src, dst)

    monkeypatch.setattr(module.os, "replace", flaky)


def test_an_upload_cut_off_leaves_no_object_and_the_execution_resumes(compiled, tmp_path, monkeypatch):
    home = LocalHome(tmp_path / "home")
    held = Held(home)
    held.release()
    fail_when(monkeypatch, storage, lambda src, dst: "/Held/" in dst.as_posix())
    record = run(compiled, home, held)
    assert (record["status"], record["failed_step"]) == ("Failed", "Held")
    assert "No space left on device" in record["failure_reason"]
    assert [a["status"] for a in steps_of(record)["Held"]["attempts"]] == ["Failed"]
    assert steps_of(record)["Last"]["status"] == "NotRun"
    assert objects(home, record["execution_id"], "Held") == [] and debris(home) == []

    monkeypatch.undo()
    resumed = run_pipeline(None, home=home, resume=record["execution_id"])
    assert resumed["status"] == "Succeeded", resumed["failure_reason"]
    assert len(objects(home, record["execution_id"], "Held")) == 1


def test_a_record_write_cut_off_keeps_the_last_whole_record_and_the_execution_resumes(compiled, tmp_path,
                                                                                     monkeypatch):
    home = LocalHome(tmp_path / "home")
    held = Held(home)
    held.release()

    def first_done(src: Path, dst: Path) -> bool:  # from the save that records First's success on, the disk is full
        return dst.name == "execution.json" and steps_of(json.loads(src.read_text()))["First"]["status"] == "Succeeded"

    fail_when(monkeypatch, files, first_done)  # the records are written by pipelines.files
    with pytest.raises(OSError, match="No space left"):
        run(compiled, home, held, execution_id="cut-off")
    record = home.execution("cut-off")
    assert steps_of(record)["First"]["status"] == "Executing" and debris(home) == []

    monkeypatch.undo()
    resumed = run_pipeline(None, home=home, resume="cut-off")
    assert resumed["status"] == "Succeeded", resumed["failure_reason"]
    assert steps_of(resumed)["First"]["cache_hit"] is True  # its finished job was not lost, nor run again
    assert held.runs() == ["First", "Held", "Last"]


def test_a_damaged_cache_entry_is_a_miss_the_step_runs_again_and_the_entry_is_rewritten(compiled, tmp_path):
    home = LocalHome(tmp_path / "home")
    held = Held(home)
    held.release()
    assert run(compiled, home, held)["status"] == "Succeeded"
    (entry,) = home.cache.glob("*.json")
    entry.write_bytes(entry.read_bytes()[:40])  # cut short outside the runner (a copy, a full disk elsewhere)
    record = run(compiled, home, held)
    assert record["status"] == "Succeeded", record["failure_reason"]
    assert steps_of(record)["First"]["cache_hit"] is False
    assert json.loads(entry.read_text())["execution_id"] == record["execution_id"]
