"""A new user's first steps, end to end, as README tells them: the worked example, then a table of their
own of another problem type, then `approve latest`, `serve` and `predict` without naming a group (they act
on what was made last, and say so), then `--from` on that run without repeating its flags. And the
mistakes a new user makes first: a misspelt label, a flag spelt wrong, a contradicting flag."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time

import pytest
from conftest import EXAMPLE_DEF, PROJECT_ROOT
from fixtures.servers import serving
from fixtures.tables import string_label

from pipelines import cli
from pipelines.local import LocalHome

from reliability.support import subprocess_env


def deploy(*args) -> tuple[int, str, str]:
    """deploy.py ARGS in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([*map(str, args)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def first_steps(tmp_path_factory):
    root = tmp_path_factory.mktemp("first-steps")
    home = root / "home"
    tiers = root / "tiers.csv"
    string_label(600, seed=4).frame.to_csv(tiers, index=False)
    example = deploy("run", "--local", "--definition", EXAMPLE_DEF, "--home", home, "--no-tuning", "--json")
    own = deploy("run", "--local", "--home", home, "--input-data", tiers, "--label", "tier",
                 "--problem-type", "multiclass", "--no-tuning", "--json")
    return {"root": root, "home": home, "tiers": tiers, "example": example, "own": own}


def test_the_worked_example_then_another_table_of_another_problem_type(first_steps):
    (code_a, out_a, _), (code_b, out_b, _) = first_steps["example"], first_steps["own"]
    example, own = json.loads(out_a), json.loads(out_b)
    assert (code_a, code_b) == (0, 0), (example["failure_reason"], own["failure_reason"])
    assert example["registered_model"]["ModelPackageGroupName"] == "purchase-intent-revenue-binary"
    assert (own["pipeline_name"], own["registered_model"]["ModelPackageGroupName"]) == (
        "tabular", "tabular-tier-multiclass")
    flags = f"--local --home {first_steps['home']}"
    assert own["next"] == [  # the exact follow-up commands of this run
        f"python deploy.py approve 1 --group tabular-tier-multiclass {flags}",
        f"python deploy.py serve --group tabular-tier-multiclass --model-package 1 {flags} &",
        "python deploy.py predict --local < rows.csv",
        f"python deploy.py batch-transform --group tabular-tier-multiclass --model-package 1 --input rows.csv {flags}"]


def test_approve_serve_and_predict_act_on_the_last_run_and_say_so(first_steps):
    home = first_steps["home"]
    code, out, err = deploy("approve", "latest", "--local", "--home", home)
    assert code == 0, err
    assert out.strip().endswith("model-package/tabular-tier-multiclass/1: Approved")
    assert "model package group tabular-tier-multiclass: of the latest run" in err
    rows = string_label(5, seed=7).frame.drop(columns="tier").to_csv(index=False)

    def command(port: int) -> list[str]:
        return [sys.executable, "deploy.py", "serve", "--local", "--home", str(home), "--port", str(port)]

    log = first_steps["root"] / "serve.log"
    with serving(command, "/ping", log, cwd=PROJECT_ROOT, env=subprocess_env()) as url:
        predicted = subprocess.run([sys.executable, "deploy.py", "predict", "--local", "--url", url],
                                   input=rows, capture_output=True, text=True, cwd=PROJECT_ROOT, env=subprocess_env())
    assert predicted.returncode == 0, predicted.stderr
    assert {line.split(",")[0] for line in predicted.stdout.splitlines()} <= {"bronze", "silver", "gold"}
    said = log.read_text()
    assert "model package group tabular-tier-multiclass: of the latest run" in said
    assert "serving arn:aws:sagemaker:us-east-1:000000000000:model-package/tabular-tier-multiclass/1" in said


def test_from_reruns_evaluate_with_the_settings_the_run_recorded(first_steps):
    home = first_steps["home"]
    own = json.loads(first_steps["own"][1])
    code, out, err = deploy("run", "--local", "--home", home, "--from", own["execution_id"], "--steps", "Evaluate",
                            "--json")
    rerun = json.loads(out)
    assert code == 0, err
    assert rerun["pipeline_name"] == "tabular"
    assert {s["name"]: s["status"] for s in rerun["steps"]}["Evaluate"] == "Succeeded"
    assert rerun["metrics"]["multiclass_classification_metrics"]  # tier, multiclass: the recorded settings
    record = LocalHome(home).execution(rerun["execution_id"])
    assert (record["origin"]["settings"]["label"], record["origin"]["settings"]["problem_type"]) == (
        "tier", "multiclass")


def test_a_flag_that_contradicts_the_recorded_settings_is_refused_naming_both(first_steps):
    own = json.loads(first_steps["own"][1])
    code, _, err = deploy("run", "--local", "--home", first_steps["home"], "--from", own["execution_id"],
                          "--steps", "Evaluate", "--problem-type", "binary")
    assert code == 2
    assert f"--problem-type binary contradicts execution {own['execution_id']}, which ran with --problem-type " \
           f"multiclass" in err


def test_runs_shows_the_pipeline_and_gate_of_every_run(first_steps):
    code, out, _ = deploy("runs", "--local", "--home", first_steps["home"])
    rows = out.splitlines()
    assert code == 0 and rows[0].split()[:3] == ["EXECUTION", "PIPELINE", "STATUS"]
    assert any("purchase-intent" in row and "roc_auc" in row and "pass" in row for row in rows[1:])
    assert any(" tabular " in row and "accuracy" in row and "pass" in row for row in rows[1:])


def test_compare_says_when_two_runs_do_not_measure_the_same_thing(first_steps):
    example, own = (json.loads(first_steps[k][1]) for k in ("example", "own"))
    code, out, _ = deploy("compare", example["execution_id"], own["execution_id"], "--local", "--home",
                          first_steps["home"], "--json")
    warnings = json.loads(out)["warnings"]
    assert code == 0
    assert warnings[0] == "different pipelines: A ran purchase-intent, B ran tabular"
    assert warnings[1].startswith("different input data: A read s3://")


def test_a_misspelt_label_fails_in_under_a_second_with_no_execution_recorded(tmp_path):
    tiers = tmp_path / "tiers.csv"
    string_label(600, seed=4).frame.to_csv(tiers, index=False)
    began = time.monotonic()
    done = subprocess.run([sys.executable, "deploy.py", "run", "--local", "--home", str(tmp_path / "home"),
                           "--input-data", str(tiers), "--label", "teir", "--problem-type", "multiclass"],
                          capture_output=True, text=True, cwd=PROJECT_ROOT, env=subprocess_env())
    took = time.monotonic() - began
    assert done.returncode == 2
    assert done.stderr == f"error: {tiers} has no column 'teir': did you mean --label tier? (its columns: " \
                          f"spend, visits, channel, tier)\n"
    assert not (tmp_path / "home" / "runs").exists()
    assert took < 1.0 + _python_startup(), f"{took:.2f} s"


def _python_startup() -> float:
    """What starting an interpreter costs on this machine now (its load varies): not the check's time."""
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return time.monotonic() - began


@pytest.mark.parametrize("label, problem_type, message", [
    ("tier", "regression", "but one of 3 classes in the first rows: use --problem-type multiclass"),
    ("tier", "binary", "the label 'tier' has 3 distinct values in the first 600 rows, not 2: use --problem-type "
                       "multiclass"),
    ("spend", "multiclass", "distinct numbers in the first 600 rows: it is a quantity, not classes; use "
                            "--problem-type regression"),
])
def test_a_label_that_cannot_be_the_problem_type_is_refused_with_the_type_it_can_be(tmp_path, label, problem_type,
                                                                                   message):
    tiers = tmp_path / "tiers.csv"
    string_label(600, seed=4).frame.to_csv(tiers, index=False)
    code, _, err = deploy("run", "--local", "--home", tmp_path / "home", "--input-data", tiers, "--label", label,
                          "--problem-type", problem_type)
    assert code == 2 and message in err and str(tiers) in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "home" / "runs").exists()


def test_an_empty_file_is_refused_before_anything_runs(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = deploy("run", "--local", "--home", tmp_path / "home", "--input-data", empty, "--label", "y")
    assert code == 2 and err == f"error: {empty} is empty: give a CSV file with a header row and data rows\n"


def test_a_table_too_small_to_split_gets_one_line_saying_so(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("a,b,c,y\n1,2,3,1\n")
    code, out, err = deploy("run", "--local", "--home", tmp_path / "home", "--input-data", one, "--label", "y",
                            "--no-tuning", "--json")
    summary = json.loads(out)
    assert code == 1
    assert summary["failure_reason"].endswith(f"{one} has 1 row(s) with a 'y' value; splitting into train, "
                                              f"validation and test needs at least 4")  # the user's path, not /opt/ml's


def test_a_mistyped_flag_gets_did_you_mean(capsys):
    with pytest.raises(SystemExit) as refused:
        cli.main(["run", "--local", "--lable", "y"])
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --lable (did you mean --label?)" in err and err.startswith("usage: ")
    assert "run" in err.splitlines()[0]  # the command's usage, not the top level's


def test_a_definitions_flags_show_in_help_and_its_settings_take_s(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    shown = capsys.readouterr().out
    assert "--label LABEL" in shown and "--problem-type {binary,multiclass,regression}" in shown
    assert cli.main(["compile", "-s", "label=churned", "-s", "tuning=false"]) == 0
    steps = [s["Name"] for s in json.loads(capsys.readouterr().out)["Steps"]]
    assert "Train" in steps and "Tune" not in steps
    assert cli.main(["compile", "-s", "lable=x"]) == 2
    assert "unknown setting 'lable' (-s lable): did you mean label?" in capsys.readouterr().err

