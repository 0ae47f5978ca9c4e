"""Serving handlers (SageMaker's scikit-learn container, batch transform and `serve --local`).

Requests are CSV with a header (columns picked by name; a label column is ignored) or JSON
(`[{column: value}, ...]` or `{"instances": [...]}`); the answer is one probability per row.
"""
import io
import json
from pathlib import Path

import joblib
import pandas as pd


def model_fn(model_dir):
    return joblib.load(Path(model_dir) / "model.joblib")


def input_fn(body, content_type):
    if content_type.startswith("text/csv"):
        return pd.read_csv(io.StringIO(body))
    if content_type.startswith("application/json"):
        rows = json.loads(body)
        return pd.DataFrame(rows["instances"] if isinstance(rows, dict) else rows)
    raise ValueError(f"unsupported content type {content_type!r}: send text/csv or application/json")


def predict_fn(frame, model):
    return model.predict_proba(frame[list(model.feature_names_in_)])[:, 1]


def output_fn(prediction, accept):
    if accept.startswith("application/json"):
        return json.dumps({"predictions": [float(p) for p in prediction]}), "application/json"
    return "".join(f"{p:.6f}\n" for p in prediction), "text/csv"
