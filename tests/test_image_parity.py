"""The project's own pipeline passes in its images' package versions, not only in the host's.

Preprocess runs in sagemaker-scikit-learn:1.4-2's versions, the tuning jobs and Evaluate in
sagemaker-xgboost:3.0-5's (pipelines/local/images.py), from the per-user environment cache.
"""
from __future__ import annotations

from pathlib import Path

from conftest import EXAMPLE_DEF, run_cli, steps_of
from examples.purchase_intent.shoppers_data import generate, write_csv
from pipelines.local import LocalHome

EXPECTED = {  # the first versions line of each job's log
    "Preprocess": ["scikit-learn==1.4.2", "pandas==2.3.2", "numpy==2.1.0"],
    "Evaluate": ["xgboost==3.0.5", "scikit-learn==1.5.2", "pandas==2.2.3", "numpy==2.1.0"],
    "Tune": ["xgboost==3.0.5", "scikit-learn==1.5.2", "pandas==2.2.3", "numpy==2.1.0"],
}


def test_the_project_pipeline_passes_in_the_images_versions(tmp_path):
    csv = write_csv(generate(1500, seed=3), tmp_path / "sessions.csv")
    code, summary = run_cli("run", "--definition", EXAMPLE_DEF, "--local", "--job-env", "image", "--home", tmp_path / "home", "--input-data", csv,
                            "-p", "MaxTuningJobs=2", "-p", "MaxParallelTuningJobs=2", "-p", "QualityThreshold=0.6")
    assert code == 0, summary["failure_reason"]
    steps = steps_of(LocalHome(tmp_path / "home").execution(summary["execution_id"]))
    for name, versions in EXPECTED.items():
        log = Path(steps[name]["log"]).read_text()
        lines = [line for line in log.splitlines() if "[local runner] scikit-learn==" in line or
                 "[local runner] xgboost==" in line]
        assert lines, f"{name}: no versions line in its log"
        assert all(all(v in line.split() for v in versions) for line in lines), (name, lines)
