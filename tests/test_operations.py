"""Operating runs: stopping one (Ctrl-C, SIGTERM, `deploy.py stop`), resuming it, and running some
steps again from an earlier execution (`--from EXECUTION --steps ...`).

The fixture pipeline First -> Held -> Last (tests/fixtures/hold_pipeline.py) holds its middle step
until the test releases it, so a run can be stopped at a known point.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, steps_of

from pipelines import cli
from pipelines.local import LocalHome

from fixtures.steps import fixture_state, job_pid
from reliability.support import subprocess_env, wait_for

HOLD = "fixtures.hold_pipeline"


class Run:
    """`deploy.py run --local` of the hold pipeline in a subprocess, with its home and state folder."""

    def __init__(self, root, *extra: str):
        self.home = LocalHome(root / "home")
        self.state_uri, self.state = fixture_state(self.home.root)
        self.process = subprocess.Popen(
            [sys.executable, "deploy.py", "run", "--local", "--definition", HOLD, "--home", str(self.home.root),
             "-p", f"StateDir={self.state_uri}", *extra],
            cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(self.state / "Held.pid", timeout=90, alive=lambda: self.process.poll() is None)
        self.job = job_pid(self.state_uri, "Held")
        (self.execution_id,) = [p.name for p in self.home.runs.iterdir()]

    def finish(self) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=60)  # a stopped job does not hold the runner up
        return self.process.returncode, out, err

    def record(self) -> dict:
        return self.home.execution(self.execution_id)


def alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def ctrl_c(root) -> Run:
    """A run given Ctrl-C (SIGINT) while Held runs, and what it printed."""
    run = Run(root)
    run.process.send_signal(signal.SIGINT)
    run.code, _, run.err = run.finish()
    return run


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory) -> Run:
    """Stopped by Ctrl-C; the tests resume it and run steps of it again."""
    return ctrl_c(tmp_path_factory.mktemp("ctrl-c"))


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> Run:
    """Stopped by Ctrl-C and left so."""
    return ctrl_c(tmp_path_factory.mktemp("stopped"))


def test_ctrl_c_stops_the_running_job_and_records_the_execution_stopped(interrupted):
    assert interrupted.code == 1
    assert "Traceback" not in interrupted.err
    assert "Stopped" in interrupted.err and f"--resume {interrupted.execution_id}" in interrupted.err
    assert not alive(interrupted.job)
    record = interrupted.record()
    assert (record["status"], record["stop_reason"], record["stopped_steps"]) == ("Stopped", "Ctrl-C (SIGINT)", ["Held"])
    assert {n: s["status"] for n, s in steps_of(record).items()} == {
        "First": "Succeeded", "Held": "Stopped", "Last": "NotRun"}
    assert steps_of(record)["Held"]["attempts"][-1]["status"] == "Stopped"


def test_a_stopped_execution_resumes_to_the_end(interrupted, capsys):
    (interrupted.state / "Held.go").touch()
    code = cli.main(["run", "--local", "--home", str(interrupted.home.root), "--resume", interrupted.execution_id])
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"resuming execution {interrupted.execution_id} (Stopped) with its recorded definition and parameters" in err
    record = interrupted.record()
    assert record["status"] == "Succeeded" and "stop_reason" not in record
    assert (interrupted.state / "runs.log").read_text().split() == ["First", "Held", "Held", "Last"]


def test_sigterm_and_deploy_stop_from_another_terminal_stop_it_too(tmp_path, capsys):
    by_signal = Run(tmp_path / "term")
    by_signal.process.send_signal(signal.SIGTERM)
    assert by_signal.finish()[0] == 1
    assert by_signal.record()["stop_reason"] == "SIGTERM to the runner"

    by_command = Run(tmp_path / "command")
    assert cli.main(["stop", "--local", "--home", str(by_command.home.root), by_command.execution_id]) == 0
    assert "asked its runner" in capsys.readouterr().out
    code, _, err = by_command.finish()
    record = by_command.record()
    assert (code, record["status"], record["stopped_steps"]) == (1, "Stopped", ["Held"]), err
    assert record["stop_reason"].startswith("deploy.py stop at ")
    assert not alive(by_command.job)
    assert cli.main(["stop", "--local", "--home", str(by_command.home.root), by_command.execution_id]) == 2
    assert "is Stopped: only an executing run can be stopped" in capsys.readouterr().err


def test_stopping_an_execution_whose_runner_is_gone_records_it_stopped(tmp_path, capsys):
    home = LocalHome(tmp_path)
    run_dir = home.runs / "abc"
    run_dir.mkdir(parents=True)
    steps = [{"name": "A", "status": "Succeeded"}, {"name": "B", "status": "Executing"}, {"name": "C", "status": "NotRun"}]
    (run_dir / "execution.json").write_text(json.dumps({"execution_id": "abc", "status": "Executing",
                                                        "runner_pid": 2 ** 22 + 1, "steps": steps}))
    assert cli.main(["stop", "--local", "--home", str(home.root), "abc"]) == 0
    assert "already ended" in capsys.readouterr().out
    record = home.execution("abc")
    assert (record["status"], record["stopped_steps"]) == ("Stopped", ["B"])


# --- --resume keeps its meaning, and says so --------------------------------------------------------


@pytest.mark.parametrize("flags, named", [
    (["-p", "StateDir=/elsewhere"], "-p"),
    (["--input-data", "data.csv"], "--input-data"),
])
def test_resume_refuses_flags_it_would_ignore_and_points_to_from(tmp_path, capsys, flags, named):
    code = cli.main(["run", "--local", "--home", str(tmp_path), "--resume", "abc", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert f"so {named} would be ignored" in err and "--from abc --steps STEP[,STEP]" in err


def test_resume_refuses_settings_that_contradict_or_were_never_recorded(stopped, capsys):
    home, execution = str(stopped.home.root), stopped.execution_id
    code = cli.main(["run", "--local", "--home", home, "--resume", execution, "--definition", "fixtures.retry_pipeline"])
    assert code == 2
    assert f"--definition fixtures.retry_pipeline contradicts execution {execution}, which ran with --definition " \
           f"fixtures.hold_pipeline: --resume reruns it as it was recorded" in capsys.readouterr().err
    code = cli.main(["run", "--local", "--home", home, "--resume", execution, "-s", "label=y"])
    assert code == 2
    assert f"-s label=y would be ignored: --resume reruns execution {execution} as it was recorded" \
        in capsys.readouterr().err
    assert stopped.record()["status"] == "Stopped"  # nothing ran


# --- selective execution --------------------------------------------------------------------------


def test_selected_steps_run_with_todays_definition_on_the_source_outputs(interrupted, capsys):
    """Held and Last run again; First, which Held reads, is the source's."""
    home, source = interrupted.home, interrupted.execution_id
    (interrupted.state / "Held.go").touch()
    before = (interrupted.state / "runs.log").read_text().split()
    code = cli.main(["run", "--local", "--definition", HOLD, "--home", str(home.root), "--from", source,
                     "--steps", "Held,Last"])
    err = capsys.readouterr().err
    assert code == 0, err
    (new,) = [r for r in home.executions() if r.get("selective")]
    assert new["selective"] == {"source_execution": source, "selected_steps": ["Held", "Last"]}
    assert new["parameters"] == home.execution(source)["parameters"]  # the source's values, -p aside
    steps = steps_of(new)
    assert steps["First"]["reused_from"] == source
    assert steps["First"]["response"] == steps_of(home.execution(source))["First"]["response"]
    assert [steps[n]["status"] for n in ("Held", "Last")] == ["Succeeded"] * 2
    assert (interrupted.state / "runs.log").read_text().split() == before + ["Held", "Last"]
    assert "reused     from " + source in err


@pytest.mark.parametrize("steps, message", [
    ("Last", "step Last reads from Held, but execution {id} recorded it Stopped: add Held to --steps"),
    ("First,Last", "--steps First and Last leave out Held between them: select Held too"),
    ("Nope", "--steps Nope: the pipeline has no such step; its steps are First, Held, Last"),
])
def test_a_selection_the_source_cannot_feed_is_refused_before_anything_runs(stopped, capsys, steps, message):
    code = cli.main(["run", "--local", "--definition", HOLD, "--home", str(stopped.home.root),
                     "--from", stopped.execution_id, "--steps", steps])
    assert code == 2
    assert message.format(id=stopped.execution_id) in capsys.readouterr().err
    assert len(list(stopped.home.runs.iterdir())) == 1


# --- runs, logs and comparisons of local executions ------------------------------------------------


def deploy(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([*map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_runs_lists_the_local_executions_newest_first(stopped, capsys):
    code, out, _ = deploy(capsys, "runs", "--local", "--home", stopped.home.root, "--json")
    rows = json.loads(out)
    assert code == 0 and [r["execution_id"] for r in rows] == [stopped.execution_id]
    assert (rows[0]["status"], rows[0]["gate"], rows[0]["model_version"]) == ("Stopped", None, None)
    code, out, _ = deploy(capsys, "runs", "--local", "--home", stopped.home.root)
    assert out.splitlines()[1].split()[:3] == [stopped.execution_id, "local-fixture-hold", "Stopped"]


def test_logs_print_each_step_log_or_one_step_and_name_what_exists(stopped, capsys):
    home = str(stopped.home.root)
    code, out, _ = deploy(capsys, "logs", stopped.execution_id, "--local", "--home", home)
    headers = [line for line in out.splitlines() if line.startswith("==> ")]
    assert code == 0 and [h.split()[1] for h in headers] == ["First", "Held"]
    assert "First: wrote " in out
    code, out, _ = deploy(capsys, "logs", "latest", "Held", "--local", "--home", home)
    assert out.splitlines()[0].startswith("==> Held (Stopped): ")
    assert out.splitlines()[-1] == "[local runner] stopped: Ctrl-C (SIGINT)"
    code, _, err = deploy(capsys, "logs", stopped.execution_id, "Nope", "--local", "--home", home)
    assert code == 2 and "has no log of a step or job 'Nope' (steps with logs: First, Held)" in err


def test_compare_of_local_runs_shows_what_changed(interrupted, capsys):
    home = interrupted.home
    executions = [r["execution_id"] for r in home.executions()]
    code, out, _ = deploy(capsys, "compare", executions[0], "latest", "--local", "--home", home.root, "--json")
    result = json.loads(out)
    assert code == 0 and [r["execution_id"] for r in result["runs"]] == [executions[0], executions[-1]]
    assert [p["name"] for p in result["parameters"] if p["changed"]] == []
    assert result["code"] == [] and result["metrics"] == []


# --- runs that end without a word, and readers that go away ------------------------------------------


def test_a_closed_terminal_sighup_stops_the_run_as_ctrl_c_does(tmp_path):
    run = Run(tmp_path)
    run.process.send_signal(signal.SIGHUP)
    run.code, _, err = run.finish()
    record = run.record()
    assert run.code == 1 and "Traceback" not in err and not alive(run.job)
    assert (record["status"], record["stop_reason"], record["stopped_steps"]) == (
        "Stopped", "its terminal closed (SIGHUP)", ["Held"])
    assert steps_of(record)["Held"]["status"] == "Stopped"


def test_a_runner_killed_without_a_word_is_seen_dead_by_runs_logs_and_resume(tmp_path, capsys):
    run = Run(tmp_path)
    run.process.kill()  # SIGKILL: nothing is recorded, its jobs die with it
    run.process.communicate(timeout=60)
    assert run.record()["status"] == "Executing"  # as the runner left it
    flags = ["--local", "--home", str(run.home.root)]
    assert cli.main(["runs", *flags]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(run.execution_id))
    assert "Failed" in row and "its runner died" in row
    record = run.record()
    assert record["status"] == "Failed" and "ended without recording an end" in record["failure_reason"]
    assert steps_of(record)["Held"]["status"] == "Failed"
    assert cli.main(["logs", run.execution_id, "Held", "--follow", *flags]) == 0  # ends: nothing runs any more
    capsys.readouterr()
    (run.state / "Held.go").touch()
    assert cli.main(["run", "--resume", run.execution_id, *flags]) == 0, capsys.readouterr().err
    assert run.record()["status"] == "Succeeded"


def test_resume_refuses_an_execution_whose_runner_is_alive(tmp_path, capsys):
    run = Run(tmp_path)
    try:
        assert cli.main(["run", "--local", "--home", str(run.home.root), "--resume", run.execution_id]) == 2
        assert "is still running (its runner, pid" in capsys.readouterr().err
    finally:
        (run.state / "Held.go").touch()
        run.finish()


def test_a_reader_that_goes_away_neither_stops_a_run_nor_gets_a_traceback(tmp_path):
    """`run --local ... | head` and a closed terminal: stdout and stderr closed before the run writes a line."""
    home = tmp_path / "home"
    state_uri, state = fixture_state(home)
    (state / "Held.go").touch()  # Held runs through
    closed = subprocess.Popen([sys.executable, "deploy.py", "run", "--local", "--definition", HOLD, "--home", str(home),
                               "-p", f"StateDir={state_uri}"], cwd=PROJECT_ROOT, env=subprocess_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    closed.stdout.close()
    closed.stderr.close()
    assert closed.wait(timeout=120) == 0
    (record,) = LocalHome(home).executions()
    assert record["status"] == "Succeeded"
    assert not any("Traceback" in path.read_text() for path in (home / "runs").rglob("*.log"))
    listing = subprocess.Popen([sys.executable, "deploy.py", "runs", "--local", "--home", str(home)],
                               cwd=PROJECT_ROOT, env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listing.stdout.close()  # `runs --local | head -0`
    assert listing.wait(timeout=60) == 0
    assert b"Traceback" not in listing.stderr.read()
