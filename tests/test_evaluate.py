import json
import tarfile

import numpy as np
import pytest
from scipy import stats

from examples.purchase_intent import shoppers_data as data
from test_preprocess import read_split, run_preprocess
from test_train import train_model, with_other_labels

import evaluate


def model_archive(tmp_path, df, label="Revenue", problem_type="binary"):
    """preprocess -> train -> model.tar.gz, as the pipeline wires them; returns (archive dir, splits dir)."""
    splits = run_preprocess(tmp_path, df, "--label", label, "--problem-type", problem_type)
    model_dir = train_model(tmp_path, splits, "--label", label, "--problem_type", problem_type)
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "model.tar.gz", "w:gz") as tar:
        for item in model_dir.iterdir():
            tar.add(item, arcname=item.name)
    return archive_dir, splits


def run_evaluate(tmp_path, archive_dir, splits, *extra):
    out = tmp_path / "evaluation"
    evaluate.main(["--model-dir", str(archive_dir), "--test-dir", str(splits / "test"), "--output-dir", str(out),
                   "--failure-file", str(tmp_path / "eval-failure"), *extra])
    return json.loads((out / "evaluation.json").read_text())


def test_binary_report_layout(tmp_path, monkeypatch):
    archive_dir, splits = model_archive(tmp_path, data.generate(1500, seed=0))
    report = run_evaluate(tmp_path, archive_dir, splits, "--problem-type", "binary", "--label", "Revenue")
    monkeypatch.setattr(evaluate, "BATCH_ROWS", 37)  # streamed a few rows at a time: the same report
    assert run_evaluate(tmp_path / "batches", archive_dir, splits, "--problem-type", "binary") == report
    n_test = len(read_split(splits, "test"))
    assert set(report) == {"binary_classification_metrics", "curves", "feature_importance", "unseen_categories",
                           "classes", "features", "n_test", "ensemble"}
    assert [e["family"] for e in report["ensemble"]] == ["xgboost"] and report["ensemble"][0]["weight"] == 1.0
    assert report["features"] == {"count": 17, "feature_set": {"name": None, "applied": False,
                                                               "reason": "no feature set chosen"}}
    assert report["n_test"] == n_test and report["classes"] == ["FALSE", "TRUE"] and report["unseen_categories"] == {}
    metrics = report["binary_classification_metrics"]
    assert set(metrics) == {"roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier_score",
                            "expected_calibration_error", "calibration_error_floor", "log_loss", "threshold",
                            "confusion_matrix"}
    assert 0.75 < metrics["roc_auc"]["value"] <= 1
    for name in ("pr_auc", "accuracy", "precision", "recall", "f1", "brier_score", "expected_calibration_error",
                 "calibration_error_floor"):
        assert 0 <= metrics[name]["value"] <= 1, name
    meta = json.loads((tmp_path / "model" / "metadata.json").read_text())
    assert metrics["threshold"]["value"] == meta["threshold"]  # chosen on validation by train.py
    cm = metrics["confusion_matrix"]
    assert set(cm) == {"FALSE", "TRUE"} and sum(cm[a][b] for a in cm for b in cm[a]) == n_test
    # next to each metric, what a constant predictor (the training prior) scores on the same rows
    assert metrics["roc_auc"]["baseline"] == 0.5 and metrics["f1"]["baseline"] == 0  # it never predicts a buyer
    positives = read_split(splits, "test")["Revenue"].mean()
    assert metrics["pr_auc"]["baseline"] == pytest.approx(positives)
    assert metrics["accuracy"]["baseline"] == pytest.approx(1 - positives)
    assert "baseline" not in metrics["threshold"] and "baseline" not in metrics["calibration_error_floor"]
    assert metrics["log_loss"]["value"] < metrics["log_loss"]["baseline"]

    curves = report["curves"]
    assert set(curves) == {"roc", "pr", "calibration", "lift"}
    assert 2 <= len(curves["roc"]["fpr"]) == len(curves["roc"]["tpr"]) <= 101
    assert curves["roc"]["fpr"][0] == 0 and curves["roc"]["tpr"][-1] == 1
    assert len(curves["pr"]["precision"]) == len(curves["pr"]["recall"]) <= 101
    assert sum(b["count"] for b in curves["calibration"]) == n_test
    assert [d["decile"] for d in curves["lift"]] == list(range(1, 11)) and curves["lift"][0]["lift"] > 1
    gains = [f["gain"] for f in report["feature_importance"]]
    assert 0 < len(gains) <= 30 and gains == sorted(gains, reverse=True)


def test_multiclass_and_regression_layouts(tmp_path):
    df = with_other_labels(data.generate(900, seed=1))

    archive_dir, splits = model_archive(tmp_path / "m", df, "Segment", "multiclass")
    report = run_evaluate(tmp_path / "m", archive_dir, splits)
    metrics = report["multiclass_classification_metrics"]
    assert set(metrics) == {"accuracy", "macro_f1", "weighted_f1", "log_loss", "confusion_matrix"}
    assert metrics["accuracy"]["value"] > 0.6
    cm = metrics["confusion_matrix"]
    assert set(cm) == {"few", "many", "some"} and sum(sum(row.values()) for row in cm.values()) == report["n_test"]
    test_labels = read_split(splits, "test")["Segment"]
    assert metrics["accuracy"]["baseline"] == pytest.approx((test_labels == 2).mean())  # "some" is the majority

    archive_dir, splits = model_archive(tmp_path / "r", df, "BasketValue", "regression")
    report = run_evaluate(tmp_path / "r", archive_dir, splits, "--problem-type", "regression")
    metrics = report["regression_metrics"]
    assert set(metrics) == {"rmse", "mae", "r2"}
    assert metrics["r2"]["value"] > 0.5 and metrics["rmse"]["value"] >= metrics["mae"]["value"] > 0
    assert report["feature_importance"] and report["classes"] is None
    points = report["curves"]["predicted_vs_actual"]  # every test row (fewer than the sample's limit)
    assert points["actual"] == pytest.approx(read_split(splits, "test")["BasketValue"].tolist())
    rmse = np.sqrt(np.mean((np.array(points["actual"]) - np.array(points["predicted"])) ** 2))
    assert rmse == pytest.approx(metrics["rmse"]["value"])
    assert metrics["r2"]["baseline"] == pytest.approx(0, abs=0.05)  # the training mean explains nothing
    assert metrics["rmse"]["baseline"] > metrics["rmse"]["value"]


def test_failures_name_the_problem(tmp_path):
    archive_dir, splits = model_archive(tmp_path, data.generate(600, seed=2))
    with pytest.raises(SystemExit):
        run_evaluate(tmp_path, archive_dir, splits, "--problem-type", "regression")
    assert "disagrees with the model" in (tmp_path / "eval-failure").read_text()
    with pytest.raises(SystemExit):
        run_evaluate(tmp_path, splits, splits)
    assert "no model.tar.gz" in (tmp_path / "eval-failure").read_text()
    assert not (tmp_path / "evaluation" / "evaluation.json").exists()


def test_expected_calibration_error_by_hand():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.05, 0.05, 0.95, 0.95, 0.55])
    # bins: [0,.1) has 3 rows, 1/3 positive at .05; [.5,.6) 1 row, 0 at .55; [.9,1] 2 rows, all positive at .95
    expected = (3 * abs(1 / 3 - 0.05) + 1 * 0.55 + 2 * 0.05) / 6
    assert evaluate.expected_calibration_error(y, p) == pytest.approx(expected)
    assert evaluate.expected_calibration_error(np.array([1]), np.array([1.0])) == 0  # p=1 falls in the last bin


def test_the_calibration_error_floor_is_the_sampling_noise_of_exact_probabilities():
    # All rows at 0.5 fall in one bin: the floor is E|k/n - 0.5| for k ~ Binomial(n, 0.5), exactly.
    for n in (100, 400):
        k = np.arange(n + 1)
        exact = float(np.sum(stats.binom.pmf(k, n, 0.5) * np.abs(k / n - 0.5)))
        assert evaluate.calibration_error_floor(np.full(n, 0.5)) == pytest.approx(exact, rel=0.05)
    assert evaluate.calibration_error_floor(np.full(50, 0.0)) == 0  # certain outcomes: no noise
    p = np.random.default_rng(3).beta(0.5, 3, 2000)
    assert evaluate.calibration_error_floor(p) == evaluate.calibration_error_floor(p)  # seeded: reproducible


def test_downsample_keeps_ends_and_lift_deciles():
    first, last = evaluate.downsample(np.arange(1000), np.arange(1000) * 2)
    assert len(first) == 101 and first[0] == 0 and first[-1] == 999 and last[-1] == 1998
    assert evaluate.downsample(np.arange(5))[0] == [0, 1, 2, 3, 4]
    y = np.r_[np.ones(10), np.zeros(90)]
    lift = evaluate.lift_by_decile(y, np.linspace(1, 0, 100))
    assert lift[0]["lift"] == 10 and lift[0]["positive_rate"] == 1 and all(d["lift"] == 0 for d in lift[1:])


def _scalar_paths(report: dict) -> set[str]:
    return {f"{section}.{name}.value" for section, metrics in report.items()
            for name, metric in metrics.items() if "value" in metric}


def test_the_problems_table_names_exactly_what_evaluate_writes():
    """The quality gate may only read paths evaluate.py writes; pipelines/problems.py is that list."""
    from pipelines.tabular.problems import GATE_PATHS, PROBLEMS

    rng = np.random.default_rng(0)
    y2, p2 = rng.integers(0, 2, 200), rng.random(200)
    proba = rng.dirichlet([1, 1, 1], 200)
    written = {
        "binary": evaluate.binary_report(y2, p2, 0.5)[0],
        "multiclass": evaluate.multiclass_report(rng.integers(0, 3, 200), proba)[0],
        "regression": evaluate.regression_report(rng.normal(size=200), rng.normal(size=200))[0],
    }
    for problem_type, report in written.items():
        assert _scalar_paths(report) == PROBLEMS[problem_type].metric_paths - GATE_PATHS, problem_type
        assert PROBLEMS[problem_type].gate_path in _scalar_paths(report)


@pytest.mark.parametrize("rule, direction, baseline, threshold", [
    ("baseline+10%", "Maximize", 0.5, 0.55),
    ("baseline + 20 %", "Maximize", 0.8, 0.84),
    ("baseline+10%", "Minimize", 2.0, 1.8),  # errors: 10% of the way down to 0
    ("0.72", "Maximize", 0.5, 0.72),  # an explicit number wins
    ("-0.5", "Maximize", 0.0, -0.5),
])
def test_the_gate_threshold_is_a_number_or_relative_to_the_baseline(rule, direction, baseline, threshold):
    assert evaluate.gate_threshold(rule, baseline, direction) == pytest.approx(threshold)


def test_a_gate_a_constant_predictor_passes_is_not_the_default(tmp_path):
    archive_dir, splits = model_archive(tmp_path, data.generate(600, seed=2))
    report = run_evaluate(tmp_path, archive_dir, splits, "--gate-metric", "accuracy")
    gate, accuracy = report["gate"], report["binary_classification_metrics"]["accuracy"]
    assert gate["rule"] == "baseline+10%" and gate["baseline"] == accuracy["baseline"] > 0.5
    assert gate["threshold"] == pytest.approx(gate["baseline"] + 0.1 * (1 - gate["baseline"]))
    assert gate["value"] == accuracy["value"] and gate["passed"] == (gate["value"] >= gate["threshold"])
    explicit = run_evaluate(tmp_path, archive_dir, splits, "--gate-metric", "accuracy", "--quality-threshold", "0.5")
    assert explicit["gate"]["threshold"] == 0.5 and explicit["gate"]["passed"]
    negative = run_evaluate(tmp_path, archive_dir, splits, "--gate-metric", "accuracy", "--quality-threshold", "-1e3")
    assert negative["gate"]["threshold"] == -1000  # a value that looks like an option is still the value


def test_gate_mistakes_are_named(tmp_path):
    archive_dir, splits = model_archive(tmp_path, data.generate(600, seed=2))
    for extra, expected in ((["--gate-metric", "r2"], "reads metric 'r2', which this evaluation does not write"),
                            (["--gate-metric", "roc_auc", "--quality-threshold", "high"], "neither a number nor"),
                            (["--gate-metric", "threshold"], "has no baseline: give QualityThreshold as a number")):
        with pytest.raises(SystemExit):
            run_evaluate(tmp_path, archive_dir, splits, *extra)
        assert expected in (tmp_path / "eval-failure").read_text()


def test_regression_points_are_an_even_sample_of_a_large_test_set():
    y = np.arange(10_000, dtype=float)
    points = evaluate.sample_points(y, y * 2, limit=100)
    assert len(points["actual"]) == 100 and points["actual"][0] == 0 and points["actual"][-1] == 9_999
    assert points["predicted"] == [2 * a for a in points["actual"]]
