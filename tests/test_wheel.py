"""The product installed from its wheel, in a fresh virtualenv, used from an empty folder outside the
checkout: `init`, `run --local` (a scaffolded pipeline and the tabular one, whose job scripts and
templates come from the wheel) and `report` (`pytest -m wheel`; a few minutes, mostly installing)."""
from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from conftest import PROJECT_ROOT, offline_environ
from fixtures.tables import numbers_only

pytestmark = pytest.mark.wheel


def sh(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    root = tmp_path_factory.mktemp("wheel")
    sh(sys.executable, "-m", "uv", "build", "--wheel", "--out-dir", root / "dist", PROJECT_ROOT)
    (wheel,) = (root / "dist").glob("ml_pipelines-*.whl")
    sh(sys.executable, "-m", "uv", "venv", "--quiet", "--python", sys.executable, root / "venv")
    sh(sys.executable, "-m", "uv", "pip", "install", "--quiet", "--python", root / "venv/bin/python",
       f"{wheel}[sdk-v2]")
    return root, wheel


def test_the_wheel_ships_the_job_scripts_templates_and_defaults_but_no_example(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"processing_scripts/preprocess.py", "processing_scripts/evaluate.py", "training_scripts/train.py",
            "training_scripts/feature_sets/__init__.py", "templates/report.html.j2", "templates/model_card.md.j2",
            "templates/init/pipeline.py.j2", "pipelines/config.toml", "pipelines/tabular/__init__.py"} <= names
    assert not any(name.startswith(("examples/", "tests/")) for name in names)


def test_init_run_and_report_work_from_an_empty_folder_outside_the_checkout(installed, tmp_path):
    root, _ = installed
    command = root / "venv/bin/ml-pipelines"
    work = tmp_path / "empty"
    work.mkdir()
    env = {**offline_environ(tmp_path), "PIPELINES_JOB_ENV": "host", "PIPELINES_COMPILE_CACHE": str(tmp_path / "c")}
    env.pop("PYTHONPATH", None)
    sh(command, "init", "churn", "--template", "minimal", cwd=work, env=env)
    assert (work / "ml-pipelines.toml").is_file() and (work / "churn/pipeline.py").is_file()
    ran = sh(command, "run", "--local", "--definition", "churn", cwd=work, env=env)
    assert "of churn: Succeeded" in ran.stderr and "ml-pipelines approve 1 --group churn --local" in ran.stderr
    numbers_only(300).frame.to_csv(work / "sensors.csv", index=False)
    tabular = sh(command, "run", "--local", "--input-data", "sensors.csv", "--label", "failed", "--no-tuning",
                 cwd=work, env=env)
    assert "of tabular: Succeeded" in tabular.stderr
    report = sh(command, "report", "latest", cwd=work, env=env).stdout.strip()
    assert report.startswith(str(work / ".local-pipelines/runs/")) and "failed" in open(report).read()
