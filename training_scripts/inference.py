"""Inference handlers for the SageMaker XGBoost framework container (script mode).

Requests carry the raw columns (features.SCHEMA); the model engineers its own
features and returns calibrated probabilities. train.py copies this file and
features.py into the model archive's code/ directory, which is what serves.
"""
import csv
import io
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)  # so `features` is found beside this file, e.g. in /opt/ml/model/code
import features  # noqa: E402

CSV = "text/csv"
JSON = "application/json"
_EPS = 1e-7


def logit(p):
    p = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def calibrate(calibrator, p):
    """Apply a calibrator saved by train.py (plain JSON, no pickle) to raw probabilities."""
    method = calibrator["method"]
    if method == "isotonic":
        return np.interp(p, calibrator["x"], calibrator["y"])  # same as IsotonicRegression.predict with clip
    if method == "sigmoid":
        return 1 / (1 + np.exp(-(calibrator["slope"] * logit(p) + calibrator["intercept"])))
    if method == "none":
        return np.asarray(p, dtype="float64")
    raise ValueError(f"unknown calibration method {method!r} in calibrator.json")


def dmatrix(frame, label=None):
    """XGBoost DMatrix of `features.engineer` output: the features.CATEGORICAL columns as categories."""
    return xgb.DMatrix(frame, label=label, feature_types=features.FEATURE_TYPES, enable_categorical=True)


class Ensemble:
    """Boosters served as one: predictions are the mean of theirs (train.py's cross-fitted fold models).

    Duck-types the part of xgboost.Booster that serving and evaluation use: predict and get_score.
    """

    def __init__(self, boosters):
        self.boosters = list(boosters)
        if not self.boosters:
            raise ValueError("an ensemble needs at least one booster")

    def __len__(self):
        return len(self.boosters)

    def predict(self, data):
        return np.mean([b.predict(data) for b in self.boosters], axis=0)

    def get_score(self, importance_type="weight"):
        """Importance over all the boosters' trees: gain and cover per split, other types per booster."""
        def summed(kind):
            total = {}
            for b in self.boosters:
                for name, value in b.get_score(importance_type=kind).items():
                    total[name] = total.get(name, 0.0) + value
            return total
        if importance_type in ("gain", "cover"):
            splits = summed("weight")
            return {name: value / splits[name] for name, value in summed(f"total_{importance_type}").items()}
        return {name: value / len(self.boosters) for name, value in summed(importance_type).items()}


def model_fn(model_dir):
    """{'booster', 'metadata', 'calibrator'} from a model directory written by train.py.

    'booster' is an Ensemble of the boosters metadata.json lists under model_files (older archives: the
    one xgboost-model.json).
    """
    d = Path(model_dir)
    metadata = json.loads((d / "metadata.json").read_text())
    boosters = []
    for name in metadata.get("model_files", ["xgboost-model.json"]):
        booster = xgb.Booster()
        booster.load_model(str(d / name))
        boosters.append(booster)
    return {
        "booster": Ensemble(boosters),
        "metadata": metadata,
        "calibrator": json.loads((d / "calibrator.json").read_text()),
    }


def _media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def _read_csv(text):
    first = next(csv.reader(io.StringIO(text)), [])
    if {name.strip() for name in first} & set(features.SCHEMA):
        return pd.read_csv(io.StringIO(text), skipinitialspace=True)
    rows = pd.read_csv(io.StringIO(text), header=None, skipinitialspace=True)
    if rows.shape[1] != len(features.SCHEMA):
        raise ValueError(f"CSV rows without a header need {len(features.SCHEMA)} fields in the order "
                         f"{','.join(features.SCHEMA)}; got {rows.shape[1]}")
    rows.columns = list(features.SCHEMA)
    return rows


def _read_json(text):
    payload = json.loads(text)
    records = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError('JSON requests must be a list of records or {"instances": [records]}, '
                         'each record an object of raw column values')
    return pd.DataFrame.from_records(records)


def input_fn(request_body, request_content_type):
    """Raw-column DataFrame from a text/csv (header optional) or application/json request."""
    text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    if not text.strip():
        raise ValueError("empty request body")
    media = _media_type(request_content_type)
    if media == CSV:
        df = _read_csv(text)
    elif media == JSON:
        df = _read_json(text)
    else:
        raise ValueError(f"unsupported content type {request_content_type!r}; use {CSV} or {JSON}")
    if df.empty:
        raise ValueError("request has no rows")
    return df


def predict_fn(input_data, model):
    """Binary: P(positive) per row; multiclass: per-class probabilities; regression: values.

    A missing or malformed raw column raises ValueError naming it (a client error).
    """
    raw = model["booster"].predict(dmatrix(features.engineer(input_data, model["metadata"]["label"])))
    if model["metadata"]["problem_type"] == "binary":
        return calibrate(model["calibrator"], raw)
    return raw


def _accept_type(accept):
    """First supported type in an Accept header; CSV when the client takes anything."""
    for part in (accept or "*/*").split(","):
        media = _media_type(part)
        if media in (CSV, JSON):
            return media
        if media in ("*/*", "text/*", ""):
            return CSV
    raise ValueError(f"unsupported accept type {accept!r}; use {CSV} or {JSON}")


def output_fn(prediction, accept):
    """(body, content type): CSV one row per line (multiclass comma-separated) or {"predictions": [...]}."""
    media = _accept_type(accept)
    values = np.asarray(prediction)
    if media == JSON:
        return json.dumps({"predictions": values.tolist()}), media
    lines = (",".join(f"{v:.10g}" for v in np.atleast_1d(row)) for row in values)
    return "".join(line + "\n" for line in lines), media
