"""Train an XGBoost model on raw columns (SageMaker XGBoost framework container, script mode).

Reads the train and validation channels (CSV, header, label first), engineers
features with features.py, early-stops on validation, calibrates binary
probabilities on validation, and writes a self-serving model directory:
the booster, calibrator.json, metadata.json and code/ (inference + features).

Defaults were chosen on validation splits of the UCI data over 20 seeds:
shallower, slower trees than XGBoost's defaults gain ~0.001 ROC-AUC, and
sigmoid calibration beats isotonic (isotonic's flat steps make ties that cost
~0.002 ROC-AUC, for no better calibration error).
"""
import argparse
import json
import os
import shutil
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, log_loss, precision_recall_curve, roc_auc_score

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import features  # noqa: E402
import inference  # noqa: E402  (calibration is applied by the serving code, so train reuses it)

# problem type -> (objective, eval metric used for early stopping)
OBJECTIVES = {
    "binary": ("binary:logistic", "auc"),
    "multiclass": ("multi:softprob", "mlogloss"),
    "regression": ("reg:squarederror", "rmse"),
}
BOOSTER_PARAMS = ("eta", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "gamma", "alpha", "lambda")
SERVING_CODE = ("inference.py", "features.py")


class TrainingError(ValueError):
    """Unusable input or settings; the message tells the user what to fix."""


def decoded(cast):
    """argparse type accepting JSON-encoded values too: SageMaker may pass '"0.1"' as well as '0.1'."""
    def convert(text):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        return cast(value)
    convert.__name__ = cast.__name__  # for argparse's "invalid <type> value" message
    return convert


def integer(value):
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def pos_weight(value):
    """'auto' or a positive number."""
    return "auto" if str(value) == "auto" else float(value)


def parse_args(argv=None, env=os.environ):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--problem_type", type=decoded(str), default="binary", choices=tuple(OBJECTIVES))
    p.add_argument("--label", type=decoded(str), default="Revenue")
    p.add_argument("--num_round", type=decoded(integer), default=500)
    p.add_argument("--early_stopping_rounds", type=decoded(integer), default=30)
    p.add_argument("--eta", type=decoded(float), default=0.05)
    p.add_argument("--max_depth", type=decoded(integer), default=4)
    p.add_argument("--min_child_weight", type=decoded(float), default=5.0)
    p.add_argument("--subsample", type=decoded(float), default=0.8)
    p.add_argument("--colsample_bytree", type=decoded(float), default=0.8)
    p.add_argument("--gamma", type=decoded(float), default=0.0)
    p.add_argument("--alpha", type=decoded(float), default=0.0)
    p.add_argument("--lambda", type=decoded(float), default=1.0)
    # "auto" means 1.0 (no reweighting): neg/pos weighting measured no better in ROC-AUC and
    # skews raw probabilities, which the calibrator would then have to undo.
    p.add_argument("--scale_pos_weight", type=decoded(pos_weight), default="auto")
    p.add_argument("--calibration", type=decoded(str), default="sigmoid", choices=("isotonic", "sigmoid", "none"))
    p.add_argument("--seed", type=decoded(integer), default=0)
    # Threads: SageMaker sets SM_NUM_CPUS to the whole instance; a local runner sharing the cores between
    # concurrent jobs sets it lower, since oversubscribed OpenMP threads make training 10-20x slower. 0 = all.
    p.add_argument("--nthread", type=decoded(integer), default=int(env.get("SM_NUM_CPUS", 0)))
    p.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    p.add_argument("--model-dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--output-data-dir", default=env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    p.add_argument("--failure-file", default="/opt/ml/output/failure")
    # A tuning job adds hyperparameters of its own (e.g. _tuning_objective_metric): ignore, do not fail.
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {' '.join(unknown)}")
    return args


def read_channel(path, label, channel):
    """(raw columns, label) from every CSV under a channel directory."""
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name.endswith((".csv", ".csv.gz")))
    if not files:
        raise TrainingError(f"no CSV files in the {channel} channel ({path}); check its S3 input")
    df = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    if label not in df.columns:
        raise TrainingError(f"the {channel} channel has no label column {label!r} (columns: "
                            f"{', '.join(df.columns)}); pass --label")
    missing = features.missing_columns(df)
    if missing:
        raise TrainingError(f"the {channel} channel ({files[0]}) lacks column(s) {', '.join(missing)}")
    return df.drop(columns=label), df[label]


def check_labels(y_train, y_val, problem_type):
    """Numeric labels as preprocess writes them; returns the classes (None for regression)."""
    ys = [pd.to_numeric(y, errors="coerce") for y in (y_train, y_val)]
    if any(y.isna().any() for y in ys):
        raise TrainingError("labels must be numbers (preprocess.py encodes classes as 0..k-1)")
    if problem_type == "regression":
        return None
    classes = sorted(set(ys[0]) | set(ys[1]))
    expected = [0, 1] if problem_type == "binary" else list(range(len(classes)))
    if classes != expected or set(ys[0]) != set(classes):
        raise TrainingError(f"{problem_type} labels must be the codes {expected} and all occur in train; got "
                            f"train {sorted(set(ys[0]))}, validation {sorted(set(ys[1]))}")
    return [int(c) for c in classes]


def booster_params(args, classes):
    objective, metric = OBJECTIVES[args.problem_type]
    params = {"objective": objective, "eval_metric": metric, "tree_method": "hist", "seed": args.seed,
              "nthread": args.nthread}
    params.update({name: vars(args)[name] for name in BOOSTER_PARAMS})
    if args.problem_type == "binary":
        params["scale_pos_weight"] = 1.0 if args.scale_pos_weight == "auto" else args.scale_pos_weight
    if args.problem_type == "multiclass":
        params["num_class"] = len(classes)
    return params


def fit_calibrator(method, p, y):
    """A JSON-able calibrator mapping raw validation probabilities to calibrated ones."""
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return {"method": method, "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method == "sigmoid":
        lr = LogisticRegression(C=np.inf).fit(inference.logit(p)[:, None], y)
        return {"method": method, "slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
    return {"method": "none"}


def best_f1_threshold(y, q):
    """Probability threshold maximising F1 on validation, stored for evaluation and serving."""
    precision, recall, thresholds = precision_recall_curve(y, q)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def metrics(problem_type, y, p):
    """Final metrics per problem type, named as printed for the tuner's regexes."""
    if problem_type == "binary":
        return {"auc": roc_auc_score(y, p)}
    if problem_type == "multiclass":
        return {"mlogloss": log_loss(y, p, labels=list(range(p.shape[1]))),
                "accuracy": accuracy_score(y, p.argmax(axis=1))}
    return {"rmse": float(np.sqrt(np.mean((np.asarray(y) - p) ** 2)))}


def train(args):
    started = time.time()
    x_train, y_train = read_channel(args.train, args.label, "train")
    x_val, y_val = read_channel(args.validation, args.label, "validation")
    classes = check_labels(y_train, y_val, args.problem_type)
    dtrain = xgb.DMatrix(features.engineer(x_train), label=y_train.astype("float64"))
    dval = xgb.DMatrix(features.engineer(x_val), label=y_val.astype("float64"))

    params = booster_params(args, classes)
    history = {}
    booster = xgb.train(params, dtrain, num_boost_round=args.num_round,
                        evals=[(dtrain, "train"), (dval, "validation")],
                        early_stopping_rounds=args.early_stopping_rounds, evals_result=history, verbose_eval=50)
    best_iteration = booster.best_iteration
    booster = booster[: best_iteration + 1]  # keep only the trees that serve
    p_train, p_val = booster.predict(dtrain), booster.predict(dval)

    # Booster metrics: calibration is monotone, and an isotonic fit on validation would flatter its own AUC.
    results = {"train": metrics(args.problem_type, y_train, p_train),
               "validation": metrics(args.problem_type, y_val, p_val)}
    calibrator = fit_calibrator(args.calibration if args.problem_type == "binary" else "none", p_val, y_val)
    threshold = (best_f1_threshold(y_val, inference.calibrate(calibrator, p_val))
                 if args.problem_type == "binary" else None)

    model_dir = Path(args.model_dir)
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "xgboost-model.json"))
    (model_dir / "calibrator.json").write_text(json.dumps(calibrator))
    metadata = {
        "problem_type": args.problem_type,
        "label": args.label,
        "raw_columns": list(features.SCHEMA),
        "feature_names": list(features.FEATURES),
        "classes": classes,
        "best_iteration": best_iteration,
        "threshold": threshold,
        "calibration": calibrator["method"],
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("train", "validation", "model_dir",
                                                                              "output_data_dir", "failure_file")},
        "xgboost_params": params,
        "xgboost_version": xgb.__version__,
        "rows": {"train": len(y_train), "validation": len(y_val)},
        "metrics": results,
        "training_seconds": round(time.time() - started, 3),
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    for name in SERVING_CODE:
        shutil.copy2(HERE / name, model_dir / "code" / name)

    out = Path(args.output_data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"metrics": results, "history": history}))
    for split in ("train", "validation"):
        for name, value in results[split].items():
            print(f"{split}:{name}={value:.6f};")
    return metadata


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
        train(args)
    except Exception as e:
        traceback.print_exc()
        reason = str(e) if isinstance(e, TrainingError) else f"{type(e).__name__}: {e}"
        write_failure(args.failure_file, "Training failed: " + " ".join(reason.split()))
        sys.exit(1)


if __name__ == "__main__":
    main()
