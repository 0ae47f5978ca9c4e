"""`deploy.py init NAME`: what it writes compiles, runs locally and passes its own test without edits."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import PROJECT_ROOT, offline_environ

from pipelines import cli, definitions
from pipelines.config import load_config


def deploy(cwd, env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PROJECT_ROOT / "deploy.py"), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("template, steps", [
    ("tabular", ["Prepare", "Tune", "Evaluate", "QualityGate", "Register-RegisterModel", "Fail"]),
    ("minimal", ["Prepare", "Train", "Evaluate", "Register-RegisterModel"]),
])
def test_a_scaffolded_pipeline_compiles_runs_and_passes_its_own_test(tmp_path, template, steps):
    env = offline_environ(tmp_path)
    made = deploy(tmp_path, env, "init", "churn", "--template", template)
    assert made.returncode == 0, made.stderr
    assert made.stdout.split() == [str(p) for p in ("churn/pipeline.py", "churn/processing/prepare.py",
                                                    "churn/processing/evaluate.py", "churn/model/train.py",
                                                    "churn/model/inference.py", "churn/test_pipeline.py",
                                                    "ml-pipelines.toml")]  # the project's settings, made
    declared = definitions.load(str(tmp_path / "churn/pipeline.py")).Settings
    settings = load_config("dev", tmp_path / "ml-pipelines.toml", pipeline="churn", declared=declared)
    assert settings.settings.label == "label" and settings.s3_root == "s3://ml-pipelines-dev/churn"

    compiled = deploy(tmp_path, env, "compile", "--definition", "churn/pipeline.py")
    assert compiled.returncode == 0, compiled.stderr
    definition = json.loads(compiled.stdout)
    names = [s["Name"] for s in definition["Steps"]]
    names += [s["Name"] for s in definition["Steps"] if s["Type"] == "Condition" for s in
              s["Arguments"]["IfSteps"] + s["Arguments"]["ElseSteps"]]
    assert sorted(names) == sorted(steps)

    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "churn/test_pipeline.py"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert tested.returncode == 0, tested.stdout[-3000:]  # it runs the pipeline locally: registers and predicts
    assert "1 passed" in tested.stdout


def test_init_overwrites_nothing_and_refuses_a_bad_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text("[dev]\n\n[pipeline.taken]\nlabel = \"y\"\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.py").write_text("# a user's file\n")
    for args, message in [
        (["busy"], "busy already exists and is not empty: choose another --dir or remove it"),
        (["taken"], f"{config} already has a [pipeline.taken] table: choose another name or remove it"),
        (["no spaces"], "pipeline name 'no spaces': use 1 to 64 letters, digits, '-' or '_'"),
    ]:
        assert cli.main(["init", *args, "--config", str(config)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err
    assert (tmp_path / "busy" / "mine.py").read_text() == "# a user's file\n"
    assert config.read_text() == "[dev]\n\n[pipeline.taken]\nlabel = \"y\"\n"
    assert not (tmp_path / "taken").exists()


def test_a_fixed_evaluation_script_reaches_a_selective_rerun_that_reuses_the_tuning(tmp_path, monkeypatch, capsys):
    """The user's day: Evaluate crashes, the script is fixed, and only Evaluate and what follows run
    again, with today's script, on the tuning job's model from the failed execution."""
    monkeypatch.chdir(tmp_path)
    config, home = tmp_path / "settings.toml", tmp_path / "home"
    assert cli.main(["init", "churn", "--config", str(config)]) == 0
    capsys.readouterr()
    script = tmp_path / "churn/processing/evaluate.py"
    fixed = script.read_text()
    script.write_text("raise SystemExit('evaluate.py: a bug')\n")
    flags = ["--definition", "churn/pipeline.py", "--config", str(config), "--home", str(home)]
    assert cli.main(["run", "--local", "--json", *flags]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert (failed["failed_step"], failed["failure_log"]) == ("Evaluate", str(home / "runs" / failed["execution_id"]
                                                                               / "logs/Evaluate.log"))
    script.write_text(fixed)
    steps = "Evaluate,QualityGate,Register-RegisterModel"
    assert cli.main(["run", "--local", "--json", *flags, "--from", failed["execution_id"], "--steps", steps]) == 0
    rerun = json.loads(capsys.readouterr().out)
    by_name = {s["name"]: s for s in rerun["steps"]}
    assert by_name["Tune"]["reused_from"] == by_name["Prepare"]["reused_from"] == failed["execution_id"]
    assert [by_name[n]["status"] for n in steps.split(",")] == ["Succeeded"] * 3
    assert rerun["registered_model"]["ModelPackageVersion"] == 1 and rerun["gate"]["passed"] is True
