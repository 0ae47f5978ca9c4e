"""Score a model archive on the test split (SageMaker XGBoost image as a ScriptProcessor).

The model is loaded through the archive's own code/inference.py, so what is
measured is exactly what an endpoint would serve. Writes evaluation.json in
SageMaker's model-quality layout, every metric as {"value": x, "baseline": b}
where b is what a constant predictor scores (the training prior or majority
class, or the training mean), plus the quality gate's threshold, curves,
feature importance, unseen category values and the test size.

The gate's threshold is a number, or `baseline+N%`: N% of the way from the
baseline to a perfect score (1 for metrics to maximise, 0 for errors), so a
gate that a constant predictor would pass cannot be the default.

The test split is read in batches (Parquet row groups, CSV chunks) and only
labels and predictions are kept, so memory follows the batch, not the test set.
"""
import argparse
import importlib.util
import json
import os
import re
import resource
import sys
import tarfile
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.metrics import (accuracy_score, average_precision_score, brier_score_loss, confusion_matrix, f1_score,
                             log_loss, mean_absolute_error, precision_recall_curve, precision_score, r2_score,
                             recall_score, roc_auc_score, roc_curve)

BATCH_ROWS = 200_000  # rows scored at once: a few hundred MB of features at most
MAX_POINTS = 101
BINS = 10
FLOOR_SAMPLES = 2_000_000  # outcome draws x rows for the calibration floor: ~0.1 s whatever the test size
TOP_FEATURES = 30
_EPS = 1e-15
RELATIVE = re.compile(r"baseline\s*\+\s*([0-9]+(?:\.[0-9]*)?)\s*%")
DIRECTIONS = ("Maximize", "Minimize")


class EvaluationError(ValueError):
    """Unusable inputs; the message tells the user what to fix."""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", default="/opt/ml/processing/input/model")
    p.add_argument("--test-dir", default="/opt/ml/processing/input/test")
    p.add_argument("--output-dir", default="/opt/ml/processing/output/evaluation")
    p.add_argument("--problem-type", choices=("binary", "multiclass", "regression"),
                   help="default: the model's metadata; if given, it must agree")
    p.add_argument("--label", help="default: the model's metadata; if given, it must agree")
    p.add_argument("--gate-metric", help="the metric the quality gate reads (default: none, no gate section)")
    p.add_argument("--gate-direction", choices=DIRECTIONS, default="Maximize",
                   help="Maximize: the gate passes at or above the threshold; Minimize: at or below")
    p.add_argument("--quality-threshold", default="baseline+10%",
                   help="a number, or baseline+N%%: N%% of the way from the baseline to a perfect score")
    p.add_argument("--failure-file", default="/opt/ml/output/message")
    return p.parse_args(_attached(sys.argv[1:] if argv is None else argv, "--quality-threshold"))


def _attached(argv, flag):
    """`flag VALUE` as `flag=VALUE`: a threshold such as -1e3 would otherwise read as an option."""
    argv = list(argv)
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            argv[i:i + 2] = [f"{flag}={argv[i + 1]}"]
            break
    return argv


def extract_model(model_dir, dest):
    archive = Path(model_dir) / "model.tar.gz"
    if not archive.is_file():
        found = ", ".join(sorted(p.name for p in Path(model_dir).glob("*"))) or "nothing"
        raise EvaluationError(f"no model.tar.gz in {model_dir} (found: {found}); feed the training step's "
                              f"model artifact to this input")
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # refuse path tricks where supported
    with tarfile.open(archive) as tar:
        tar.extractall(dest, **safe)
    return Path(dest)


def load_inference(model_root):
    """The archive's own code/inference.py as a module."""
    path = Path(model_root) / "code" / "inference.py"
    if not path.is_file():
        raise EvaluationError("the model archive has no code/inference.py; train it with training_scripts/train.py")
    spec = importlib.util.spec_from_file_location("model_inference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_batches(test_dir, label, rows=None):
    """(raw columns, labels) of the test split, `rows` at a time, from its Parquet parts or CSV files."""
    files = sorted(p for p in Path(test_dir).rglob("*") if p.is_file() and p.name.endswith((".parquet", ".csv", ".csv.gz")))
    if not files:
        raise EvaluationError(f"no Parquet or CSV files in {test_dir}; feed preprocess's test output to this input")
    for f in files:
        rows = rows or BATCH_ROWS
        batches = ((b.to_pandas() for b in pq.ParquetFile(f).iter_batches(batch_size=rows))
                   if f.name.endswith(".parquet") else pd.read_csv(f, dtype=str, chunksize=rows))
        for df in batches:  # read by the model's schema
            if label not in df.columns:
                raise EvaluationError(f"test data in {f} has no label column {label!r} (columns: "
                                      f"{', '.join(df.columns)})")
            yield df.drop(columns=label), pd.to_numeric(df[label]).to_numpy()


def score(inference, model, batches):
    """(labels, predictions, unseen category counts) over every batch; a multiclass model's rows stacked."""
    labels, predicted, unseen = [], [], Counter()
    for x, y in batches:
        labels.append(y)
        predicted.append(np.asarray(inference.predict_fn(x, model)))
        unseen.update(model["features"].transform(x)[1])
    return np.concatenate(labels), np.concatenate(predicted), unseen


def agree(given, from_model, flag):
    if given is not None and given != from_model:
        raise EvaluationError(f"{flag} {given!r} disagrees with the model, which was trained as {from_model!r}")
    return from_model


def downsample(*arrays):
    """Arrays thinned to at most MAX_POINTS evenly spaced points, keeping both ends."""
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).round().astype(int))
    return [np.asarray(a)[idx].tolist() for a in arrays]


def _bins(p):
    return np.minimum((np.asarray(p) * BINS).astype(int), BINS - 1)


def calibration_curve(y, p):
    """Per non-empty equal-width bin: mean predicted probability, fraction positive, count."""
    b = _bins(p)
    return [{"bin": k, "mean_predicted": float(p[b == k].mean()), "fraction_positive": float(y[b == k].mean()),
             "count": int((b == k).sum())} for k in range(BINS) if (b == k).any()]


def expected_calibration_error(y, p):
    """Weighted mean |fraction positive - mean predicted| over BINS equal-width bins."""
    return float(sum(c["count"] * abs(c["fraction_positive"] - c["mean_predicted"])
                     for c in calibration_curve(y, p)) / len(p))


def calibration_error_floor(p, seed=0):
    """Mean calibration error that exact probabilities `p` would score on a test set of this size.

    Outcomes drawn from `p` itself: what remains is sampling noise, so a model's error is read against
    this rather than against 0 (on ~1,800 rows it is about 0.015). Large test sets get fewer draws;
    their floor is small and varies little from draw to draw."""
    p = np.asarray(p, dtype="float64")
    draws = int(np.clip(FLOOR_SAMPLES // max(len(p), 1), 20, 1000))
    outcomes = np.random.default_rng(seed).random((draws, len(p))) < p
    # Per bin, count x |fraction positive - mean predicted| = |positives - sum of p|; p's sums are shared.
    b = _bins(p)
    expected = np.bincount(b, weights=p, minlength=BINS)
    positives = np.stack([np.bincount(b, weights=drawn, minlength=BINS) for drawn in outcomes])
    return float(np.mean(np.abs(positives - expected).sum(axis=1)) / len(p))


def lift_by_decile(y, p):
    """Positive rate of each score decile (highest scores first) relative to the overall rate."""
    ranked = y[np.argsort(-p, kind="stable")]
    base = y.mean()
    return [{"decile": i + 1, "positive_rate": float(d.mean()), "lift": float(d.mean() / base)}
            for i, d in enumerate(np.array_split(ranked, BINS))]


def confusion(y, predicted, labels, names=None):
    """{actual: {predicted: count}} by class name, as SageMaker's model-quality reports nest it."""
    cm = confusion_matrix(y, predicted, labels=labels)
    names = [str(n) for n in (names or labels)]
    return {a: {b: int(cm[i, j]) for j, b in enumerate(names)} for i, a in enumerate(names)}


def _values(metrics):
    return {k: v if k == "confusion_matrix" else {"value": float(v)} for k, v in metrics.items()}


def binary_report(y, p, threshold, names=None):
    predicted = (p >= threshold).astype(int)
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    metrics = {
        "roc_auc": roc_auc_score(y, p),
        "pr_auc": average_precision_score(y, p),
        "accuracy": accuracy_score(y, predicted),
        "precision": precision_score(y, predicted, zero_division=0),
        "recall": recall_score(y, predicted, zero_division=0),
        "f1": f1_score(y, predicted, zero_division=0),
        "brier_score": brier_score_loss(y, p),
        "expected_calibration_error": expected_calibration_error(y, p),
        "calibration_error_floor": calibration_error_floor(p),
        "log_loss": log_loss(y, np.clip(p, _EPS, 1 - _EPS), labels=[0, 1]),
        "threshold": threshold,
        "confusion_matrix": confusion(y, predicted, [0, 1], names),
    }
    roc_fpr, roc_tpr = downsample(fpr, tpr)
    pr_precision, pr_recall = downsample(precision, recall)
    curves = {
        "roc": {"fpr": roc_fpr, "tpr": roc_tpr},
        "pr": {"precision": pr_precision, "recall": pr_recall},
        "calibration": calibration_curve(y, p),
        "lift": lift_by_decile(y, p),
    }
    return {"binary_classification_metrics": _values(metrics)}, curves


def multiclass_report(y, proba, names=None):
    proba = np.asarray(proba, dtype="float64")
    proba = proba / proba.sum(axis=1, keepdims=True)  # float32 rows may miss 1 by more than log_loss tolerates
    labels = list(range(proba.shape[1]))
    predicted = proba.argmax(axis=1)
    metrics = {
        "accuracy": accuracy_score(y, predicted),
        "macro_f1": f1_score(y, predicted, average="macro", labels=labels, zero_division=0),
        "weighted_f1": f1_score(y, predicted, average="weighted", labels=labels, zero_division=0),
        "log_loss": log_loss(y, proba, labels=labels),
        "confusion_matrix": confusion(y, predicted, labels, names),
    }
    return {"multiclass_classification_metrics": _values(metrics)}, {}


def regression_report(y, predicted):
    metrics = {
        "rmse": np.sqrt(np.mean((y - predicted) ** 2)),
        "mae": mean_absolute_error(y, predicted),
        "r2": r2_score(y, predicted),
    }
    return {"regression_metrics": _values(metrics)}, {"predicted_vs_actual": sample_points(y, predicted)}


def sample_points(y, predicted, limit=2000):
    """(actual, predicted) pairs for the report's predicted-vs-actual and residual plots: every test row,
    or `limit` of them evenly spaced, so the report stays small whatever the test set's size."""
    rows = np.unique(np.linspace(0, len(y) - 1, num=min(limit, len(y))).astype(int))
    return {"actual": [float(v) for v in np.asarray(y)[rows]], "predicted": [float(v) for v in np.asarray(predicted)[rows]]}


def baselines(problem_type, y, stats):
    """Each metric of a constant predictor: the training prior (its majority class where a class is
    predicted), or the training mean. Decision thresholds and sampling floors have no baseline."""
    n = len(y)
    if problem_type == "binary":
        section = binary_report(y, np.full(n, stats["prior"][1]), 0.5)[0]
    elif problem_type == "multiclass":
        section = multiclass_report(y, np.tile(stats["prior"], (n, 1)))[0]
    else:
        section = regression_report(y, np.full(n, stats["mean"]))[0]
    metrics = next(iter(section.values()))
    return {k: v["value"] for k, v in metrics.items() if k not in ("threshold", "calibration_error_floor",
                                                                    "confusion_matrix")}


def with_baselines(report, baseline):
    for name, metric in next(iter(report.values())).items():
        if name in baseline:
            metric["baseline"] = float(baseline[name])
    return report


def gate_threshold(rule, baseline, direction):
    """The number a rule means: itself, or baseline+N% of the way to a perfect score (1, or 0 for errors)."""
    relative = RELATIVE.fullmatch(str(rule).strip())
    if relative:
        share = float(relative.group(1)) / 100
        perfect = 1.0 if direction == "Maximize" else 0.0
        return baseline + share * (perfect - baseline)
    try:
        return float(rule)
    except ValueError:
        raise EvaluationError(f"QualityThreshold {rule!r} is neither a number nor baseline+N% "
                              f"(e.g. 0.8 or baseline+10%)") from None


def gate(report, metric, direction, rule):
    """The quality gate's inputs, side by side: the metric, its baseline and the threshold it must reach."""
    section = next(iter(report.values()))
    if metric not in section or "value" not in section[metric]:
        raise EvaluationError(f"the gate reads metric {metric!r}, which this evaluation does not write "
                              f"(it writes: {', '.join(k for k in section if k != 'confusion_matrix')})")
    value, baseline = section[metric]["value"], section[metric].get("baseline")
    if baseline is None and RELATIVE.fullmatch(str(rule).strip()):
        raise EvaluationError(f"metric {metric!r} has no baseline: give QualityThreshold as a number")
    threshold = gate_threshold(rule, baseline, direction)
    passed = value >= threshold if direction == "Maximize" else value <= threshold
    return {"metric": metric, "direction": direction, "value": value, "baseline": baseline, "rule": str(rule),
            "threshold": threshold, "passed": bool(passed)}


def feature_importance(booster):
    gain = booster.get_score(importance_type="gain")
    ranked = sorted(gain.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_FEATURES]
    return [{"feature": name, "gain": float(value)} for name, value in ranked]


def _atomic_write(path, text):
    """Write via a temporary sibling and os.replace, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def evaluate(args):
    with tempfile.TemporaryDirectory() as tmp:
        root = extract_model(args.model_dir, tmp)
        inference = load_inference(root)
        model = inference.model_fn(str(root))
        meta = model["metadata"]
        problem_type = agree(args.problem_type, meta["problem_type"], "--problem-type")
        label = agree(args.label, meta["label"], "--label")
        y, predicted, unseen = score(inference, model, test_batches(args.test_dir, label))
    names = meta.get("classes")
    if problem_type == "binary":
        threshold = 0.5 if meta.get("threshold") is None else meta["threshold"]
        report, curves = binary_report(y.astype(int), predicted, threshold, names)
    elif problem_type == "multiclass":
        report, curves = multiclass_report(y.astype(int), predicted, names)
    else:
        report, curves = regression_report(y.astype(float), predicted)
    if meta.get("label_stats"):
        with_baselines(report, baselines(problem_type, y.astype(int if names else float), meta["label_stats"]))
    if args.gate_metric:
        report["gate"] = gate(report, args.gate_metric, args.gate_direction, args.quality_threshold)
    report.update(curves=curves, feature_importance=feature_importance(model["ensemble"]),
                  features={"count": len(meta["feature_names"]), "feature_set": meta.get("feature_set")},
                  ensemble=[{k: e[k] for k in ("family", "weight", "validation", "seconds")}
                            for e in meta.get("ensemble", [])],
                  unseen_categories=unseen, classes=names, n_test=int(len(y)))
    _atomic_write(Path(args.output_dir) / "evaluation.json", json.dumps(report, indent=2))
    headline = {k: v["value"] for k, v in next(iter(report.values())).items() if k != "confusion_matrix"}
    print(json.dumps(headline))
    print(f"{len(y)} test rows, peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    if "gate" in report:
        g = report["gate"]
        print(f"gate: {g['metric']} = {g['value']:.6g} {'>=' if g['direction'] == 'Maximize' else '<='} "
              f"{g['threshold']:.6g} ({g['rule']}, baseline {g['baseline']}): {'pass' if g['passed'] else 'fail'}")
    return report


def write_failure(path, message):
    """SageMaker shows this file as the job's failure reason; losing it must not hide the real error."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(message)
    except OSError:
        pass


def main(argv=None):
    args = parse_args(argv)
    try:
        evaluate(args)
    except Exception as e:
        traceback.print_exc()
        reason = str(e) if isinstance(e, EvaluationError) else f"{type(e).__name__}: {e}"
        write_failure(args.failure_file, "Evaluation failed: " + " ".join(reason.split()))
        sys.exit(1)


if __name__ == "__main__":
    main()
