"""The built-in XGBoost algorithm: what the XGBoost image runs when a training job names no script.

AWS's own templates (the abalone pipeline, the SageMaker Projects model-build
seed) train this way: an Estimator on the XGBoost image with hyperparameters
only. This file is that job's process, with the container's contract
(aws/sagemaker-xgboost-container, ``algorithm_mode/train.py``):

- hyperparameters are validated against the algorithm's list and ranges, and a
  bad one fails the job with the container's kind of message;
- channels ``train`` (required) and ``validation`` hold CSV (label first, no
  header; ``csv_weights=1``: weights second), libsvm (the default) or Parquet
  (label first), by the channel's ContentType;
- every round prints ``[i]<TAB>train-<metric>:<v><TAB>validation-<metric>:<v>``,
  the lines the built-in's metric definitions (``#011validation-rmse``...) read;
- ``/opt/ml/model/xgboost-model`` is a pickled Booster for images before 1.3-1
  (AWS's evaluation scripts ``pickle.load`` it) and ``Booster.save_model``'s
  file from 1.3-1 on.

It runs inside the job's environment, so it imports only the standard library
and what the image has (numpy, pandas, xgboost); a failure is written to
``/opt/ml/output/failure``, as the container does.
"""
from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
from pathlib import Path

MODEL_NAME = "xgboost-model"
PICKLE_BEFORE = (1, 3)  # images before 1.3-1 pickle the Booster
# The built-in's metric definitions (algorithm_mode/metrics.py), which SageMaker applies to its log.
METRICS = ("accuracy", "auc", "aucpr", "balanced_accuracy", "error", "f1", "f1_binary", "f1_macro", "gamma-deviance",
           "gamma-nloglik", "logloss", "mae", "map", "mape", "merror", "mlogloss", "mse", "ndcg", "poisson-nloglik",
           "precision", "r2", "recall", "rmse", "rmsle", "tweedie-nloglik", "cox-nloglik", "aft-nloglik", "mphe",
           "interval-regression-accuracy", "precision_macro", "precision_micro", "recall_macro", "recall_micro")
# Metrics the container computes itself rather than xgboost; not emulated here.
_CUSTOM_METRICS = {"accuracy", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "mse", "r2", "precision",
                   "precision_macro", "precision_micro", "recall", "recall_macro", "recall_micro"}
OBJECTIVES = ("binary:logistic", "binary:logitraw", "binary:hinge", "count:poisson", "multi:softmax",
              "multi:softprob", "rank:pairwise", "rank:ndcg", "rank:map", "reg:linear", "reg:squarederror",
              "reg:squaredlogerror", "reg:logistic", "reg:gamma", "reg:tweedie", "reg:pseudohubererror",
              "reg:absoluteerror", "reg:quantileerror", "survival:cox", "survival:aft")


def _interval(low=None, high=None, low_open=False, high_open=False):
    def check(value):
        return not ((low is not None and (value <= low if low_open else value < low)) or
                    (high is not None and (value >= high if high_open else value > high)))
    text = f"{'(' if low_open else '['}{'-inf' if low is None else low}, {'inf' if high is None else high}" \
           f"{')' if high_open else ']'}"
    return check, text


# name -> (type, check, what the check allows); the algorithm's documented hyperparameters.
_UNIT = _interval(0, 1)
_NON_NEGATIVE = _interval(0)
_FLAG = _interval(0, 1)
HYPERPARAMETERS = {
    "num_round": (int, *_interval(1)), "csv_weights": (int, *_FLAG), "early_stopping_rounds": (int, *_interval(1)),
    "booster": (str, lambda v: v in ("gbtree", "gblinear", "dart"), "gbtree, gblinear or dart"),
    "silent": (int, *_FLAG), "verbosity": (int, *_interval(0, 3)), "nthread": (int, *_interval(1)),
    "eta": (float, *_UNIT), "gamma": (float, *_NON_NEGATIVE), "max_depth": (int, *_NON_NEGATIVE),
    "min_child_weight": (float, *_NON_NEGATIVE), "max_delta_step": (float, *_NON_NEGATIVE),
    "subsample": (float, *_interval(0, 1, low_open=True)), "colsample_bytree": (float, *_interval(0, 1, low_open=True)),
    "colsample_bylevel": (float, *_interval(0, 1, low_open=True)),
    "colsample_bynode": (float, *_interval(0, 1, low_open=True)),
    "lambda": (float, *_NON_NEGATIVE), "alpha": (float, *_NON_NEGATIVE),
    "tree_method": (str, lambda v: v in ("auto", "exact", "approx", "hist", "gpu_hist"),
                    "auto, exact, approx, hist or gpu_hist"),
    "sketch_eps": (float, *_interval(0, 1, True, True)), "scale_pos_weight": (float, *_interval(0, low_open=True)),
    "updater": (str, lambda v: True, "a comma-separated list"), "dsplit": (str, lambda v: v in ("row", "col"), "row or col"),
    "refresh_leaf": (int, *_FLAG), "process_type": (str, lambda v: v in ("default", "update"), "default or update"),
    "grow_policy": (str, lambda v: v in ("depthwise", "lossguide"), "depthwise or lossguide"),
    "max_leaves": (int, *_NON_NEGATIVE), "max_bin": (int, *_NON_NEGATIVE),
    "predictor": (str, lambda v: v in ("auto", "cpu_predictor", "gpu_predictor"), "auto, cpu_predictor or gpu_predictor"),
    "monotone_constraints": (str, lambda v: True, "a tuple like (1,0,-1)"),
    "interaction_constraints": (str, lambda v: True, "a nested list like [[0,1],[2]]"),
    "sample_type": (str, lambda v: v in ("uniform", "weighted"), "uniform or weighted"),
    "normalize_type": (str, lambda v: v in ("tree", "forest"), "tree or forest"),
    "rate_drop": (float, *_UNIT), "one_drop": (int, *_FLAG), "skip_drop": (float, *_UNIT),
    "lambda_bias": (float, *_UNIT), "tweedie_variance_power": (float, *_interval(1, 2, True, True)),
    "objective": (str, lambda v: v in OBJECTIVES, ", ".join(OBJECTIVES)), "num_class": (int, *_interval(2)),
    "base_score": (float, *_NON_NEGATIVE),
    "_tuning_objective_metric": (str, lambda v: v in {f"validation:{m}" for m in METRICS}, "a validation:<metric>"),
    "eval_metric": (str, lambda v: True, "a comma-separated list of metrics"),
    "seed": (int, *_interval(-2**31, 2**31 - 1, True, True)), "num_parallel_tree": (int, *_interval(1)),
    "save_model_on_termination": (str, lambda v: v in ("true", "false"), "true or false"),
    "deterministic_histogram": (str, lambda v: v in ("true", "false"), "true or false"),
    "single_precision_histogram": (str, lambda v: v in ("true", "false"), "true or false"),
    "max_cat_to_onehot": (int, *_interval(1)), "multi_strategy": (str, lambda v: True, "one_output_per_tree or multi_output_tree"),
    "_kfold": (int, *_interval(2)), "_num_cv_round": (int, *_interval(1)),
}
_TOOLKIT = re.compile(r"sagemaker_.*")  # the training toolkit's own settings, not the algorithm's


class UserError(Exception):
    """Bad hyperparameters or data: the job fails with this message, as the container's UserError does."""


def validate(raw: dict[str, str]) -> dict:
    """The hyperparameters as typed values, or UserError naming the first bad one."""
    typed = {}
    for name, value in raw.items():
        if _TOOLKIT.fullmatch(name):
            continue
        if name not in HYPERPARAMETERS:
            raise UserError(f"Extraneous hyperparameter found: {name} (the built-in XGBoost algorithm has no such "
                            "hyperparameter)")
        kind, check, allowed = HYPERPARAMETERS[name]
        try:
            parsed = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError):
            raise UserError(f"Hyperparameter {name}: {value!r} is not a valid {kind.__name__}") from None
        if kind is int and float(value) != parsed:
            raise UserError(f"Hyperparameter {name}: {value!r} is not an integer")
        if not check(parsed):
            raise UserError(f"Hyperparameter {name}: value {value} not in range {allowed}")
        typed[name] = parsed
    if "num_round" not in typed:
        raise UserError("Missing required hyperparameter: num_round")
    if "_kfold" in typed:
        raise UserError("_kfold: the built-in algorithm's k-fold cross-validation is not emulated locally; "
                        "leave _kfold out to train once on the train channel")
    if str(typed.get("objective", "")).startswith("multi:") and "num_class" not in typed:
        raise UserError("Required hyperparameter: num_class for multi-class objectives")
    return typed


def _eval_metrics(hps: dict) -> list[str]:
    """eval_metric plus the tuning objective's metric, as the container adds it."""
    metrics = [m for m in str(hps.pop("eval_metric", "")).split(",") if m]
    objective = hps.pop("_tuning_objective_metric", None)
    if objective:
        metrics.append(objective.split(":", 1)[1])
    custom = sorted(set(metrics) & _CUSTOM_METRICS)
    if custom:
        raise UserError(f"metric(s) {', '.join(custom)} of the built-in algorithm are computed by the container, "
                        "which the local runner does not emulate; use an xgboost metric (rmse, auc, logloss, error...)")
    return list(dict.fromkeys(metrics))


def _files(channel: Path) -> list[Path]:
    files = sorted(p for p in channel.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise UserError(f"channel {channel.name} holds no files")
    return files


def load_channel(channel: Path, content_type: str, csv_weights: int):
    """A DMatrix of every file in the channel: CSV/Parquet label first, libsvm as xgboost reads it."""
    import numpy as np
    import xgboost as xgb

    media = (content_type or "libsvm").split(";")[0].strip().lower()
    if media in ("text/csv", "csv"):
        import pandas as pd
        frame = pd.concat([pd.read_csv(f, header=None) for f in _files(channel)], ignore_index=True)
    elif media in ("application/x-parquet", "parquet"):
        import pandas as pd
        frame = pd.concat([pd.read_parquet(f) for f in _files(channel)], ignore_index=True)
    elif media in ("text/libsvm", "libsvm", "text/x-libsvm"):
        files = _files(channel)
        if len(files) > 1:
            combined = channel.parent / f".{channel.name}.libsvm"
            combined.write_bytes(b"".join(f.read_bytes() for f in files))
            files = [combined]
        return xgb.DMatrix(f"{files[0]}?format=libsvm")
    else:
        raise UserError(f"channel {channel.name}: content type {content_type!r} is not one the built-in XGBoost "
                        "algorithm reads (text/csv, text/libsvm, application/x-parquet)")
    values = frame.to_numpy(dtype=np.float64)
    if values.shape[1] < 2 + csv_weights:
        raise UserError(f"channel {channel.name}: a row needs the label{' and a weight' if csv_weights else ''} "
                        "first and at least one feature")
    weights = values[:, 1] if csv_weights else None
    return xgb.DMatrix(values[:, 1 + csv_weights:], label=values[:, 0], weight=weights)


def train(opt_ml: Path, image_version: tuple[int, ...]) -> None:
    import xgboost as xgb

    config = opt_ml / "input" / "config"
    hps = validate(json.loads((config / "hyperparameters.json").read_text()))
    data_config = json.loads((config / "inputdataconfig.json").read_text())
    if "train" not in data_config:
        raise UserError("the built-in XGBoost algorithm needs a 'train' channel")
    csv_weights = hps.pop("csv_weights", 0)
    matrices = {name: load_channel(opt_ml / "input" / "data" / name, data_config[name].get("ContentType", ""),
                                   csv_weights)
                for name in ("train", "validation") if name in data_config}
    num_round = hps.pop("num_round")
    early_stopping = hps.pop("early_stopping_rounds", None)
    metrics = _eval_metrics(hps)
    for name in ("save_model_on_termination", "_num_cv_round"):  # no termination to save on; no k-fold here
        hps.pop(name, None)
    params = {**hps, **({"eval_metric": metrics} if metrics else {})}
    watchlist = [(matrix, name) for name, matrix in matrices.items()]
    print(f"Train matrix has {matrices['train'].num_row()} rows and {matrices['train'].num_col()} columns",
          flush=True)
    try:
        booster = xgb.train(params, matrices["train"], num_boost_round=num_round, evals=watchlist,
                            early_stopping_rounds=early_stopping if "validation" in matrices else None,
                            verbose_eval=True)
    except xgb.core.XGBoostError as exc:
        raise UserError(f"XGB train call failed with exception: {exc}") from None
    model_dir = opt_ml / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    if image_version < PICKLE_BEFORE:
        with open(model_dir / MODEL_NAME, "wb") as f:
            pickle.dump(booster, f, protocol=4)
    else:
        booster.save_model(str(model_dir / MODEL_NAME))
    print(f"Stored trained model at {model_dir / MODEL_NAME}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-version", required=True, help="the XGBoost image's version, e.g. 1.0-1")
    parser.add_argument("--opt-ml", type=Path, default=Path("/opt/ml"), help="the container's /opt/ml")
    options = parser.parse_args(argv)
    version = tuple(int(part) for part in re.split(r"[.-]", options.image_version)[:2])
    try:
        train(options.opt_ml, version)
    except UserError as exc:
        failure = options.opt_ml / "output" / "failure"
        failure.parent.mkdir(parents=True, exist_ok=True)
        failure.write_text(str(exc))
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
