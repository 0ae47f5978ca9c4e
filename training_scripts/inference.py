"""Inference handlers for the SageMaker XGBoost framework container (script mode).

Requests carry raw rows of the table the model was trained on, read by the
schema stored in the model (schema.json, features.json): CSV with a header
(columns by name, extra ones ignored), CSV without one (every column but the
label, in schema order, or only the columns the model reads), or JSON records.
A missing column, or a value of the wrong kind, is a client error naming it; a
category value the model never saw becomes missing and is counted in the log.

Predictions: binary, the probability of the positive class; multiclass, the
predicted class name and a probability per class (CSV: `class,p_<first>,...` in
the model's class order); regression, the value. train.py copies this file,
features.py, families.py, trees.py and the feature sets into the model
archive's code/ directory.

The serving path costs what the model costs: a request of up to FAST_ROWS rows
is read straight into the models' float array (features.transform_columns),
larger ones through a frame (features.transform), which is cheaper per row once
pandas' fixed costs are spread; both give the same array, bit for bit. The
model is loaded once (model_fn) and predicts from that one array
(families.Served: every tree of every family in one XGBoost booster).
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
import families  # noqa: E402
import features  # noqa: E402

CSV = "text/csv"
JSON = "application/json"
_EPS = 1e-7
# Requests of at most this many rows take the fast path; larger ones the frame path (docs/benchmarks.md,
# "Serving at the floor": per row, the fast path costs about 4 us a column, the frame path's fixed ~5 ms
# is repaid from about this size)
FAST_ROWS = 2000
# read_csv's default missing-value strings (pandas' STR_NA_VALUES), which the fast path reads as missing too
try:
    from pandas._libs.parsers import STR_NA_VALUES as NA_STRINGS
except ImportError:  # pragma: no cover - a pandas that moved it: only empty fields are missing then
    NA_STRINGS = frozenset({""})


def logit(p):
    p = np.clip(np.asarray(p, dtype="float64"), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def calibrate(calibrator, p):
    """Apply a calibrator saved by train.py (plain JSON, no pickle) to raw probabilities: a vectorised lookup
    (isotonic: its steps as arrays, made once by `prepared`) or a closed form (sigmoid)."""
    method = calibrator["method"]
    if method == "isotonic":
        return np.interp(p, calibrator["x"], calibrator["y"])  # same as IsotonicRegression.predict with clip
    if method == "sigmoid":
        return 1 / (1 + np.exp(-(calibrator["slope"] * logit(p) + calibrator["intercept"])))
    if method == "none":
        return np.asarray(p, dtype="float64")
    raise ValueError(f"unknown calibration method {method!r} in calibrator.json")


def prepared(calibrator):
    """The calibrator with its isotonic steps as float arrays, so a request does not convert them again."""
    return {k: np.asarray(v, dtype="float64") if k in ("x", "y") else v for k, v in calibrator.items()}


def dmatrix(frame, types, label=None):
    """XGBoost DMatrix of a feature frame; columns of type "c" are categories (codes 0..k-1)."""
    return xgb.DMatrix(frame, label=label, feature_types=types, enable_categorical=True)


class Ensemble:
    """The served model: model families (families.py), each the mean of its fold models, blended with the
    weights train.py chose on out-of-fold predictions. `predict` takes one prepared feature array (float32, as
    training fitted on): one XGBoost call for every tree of every family (families.Served), the linear
    model's product, no DMatrix per booster."""

    def __init__(self, members, weights, task):
        """members: {family: [fold model]}; weights: {family: weight}, summing to 1."""
        self.members = {name: list(models) for name, models in members.items() if weights.get(name)}
        if not self.members or not all(self.members.values()):
            raise ValueError("an ensemble needs at least one family with a weight and a fold model")
        self.weights, self.task = {name: float(weights[name]) for name in self.members}, task
        self.served = families.Served(self.members, task)

    def __len__(self):
        return sum(map(len, self.members.values()))

    def predict(self, x):
        """Binary: P(positive); multiclass: (rows, classes) probabilities; regression: values. `x`: the feature
        array (or frame) in `names` order."""
        predictions = self.served.predict(np.ascontiguousarray(x, dtype=np.float32))
        return sum(w * predictions[name] for name, w in self.weights.items())

    def get_score(self, importance_type="weight"):
        """Feature importance of the XGBoost fold models (the family that measures it), over all their trees:
        gain and cover per split, other types per booster; empty without XGBoost."""
        boosters = self.members.get("xgboost", [])

        def summed(kind):
            total = {}
            for b in boosters:
                for name, value in b.get_score(importance_type=kind).items():
                    total[name] = total.get(name, 0.0) + value
            return total
        if importance_type in ("gain", "cover"):
            splits = summed("weight")
            return {name: value / splits[name] for name, value in summed(f"total_{importance_type}").items()}
        return {name: value / len(boosters) for name, value in summed(importance_type).items()}


def model_fn(model_dir):
    """{'ensemble', 'metadata', 'calibrator', 'features'} from a model directory written by train.py.

    'ensemble' serves the families metadata.json lists under `ensemble`; 'features' reads raw rows by the
    schema the model was trained on."""
    d = Path(model_dir)
    metadata = json.loads((d / "metadata.json").read_text())
    members = {e["family"]: [families.load(e["family"], d / name) for name in e["files"]]
               for e in metadata["ensemble"] if e["weight"]}
    task = families.Task(metadata["problem_type"], len(metadata.get("classes") or []), metadata["feature_types"],
                         nthread=0, seed=0)
    return {
        "ensemble": Ensemble(members, {e["family"]: e["weight"] for e in metadata["ensemble"]}, task),
        "metadata": metadata,
        "calibrator": prepared(json.loads((d / "calibrator.json").read_text())),
        "features": features.Features.from_dict(json.loads((d / "features.json").read_text())),
    }


def _media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


class Request:
    """A request body not yet read: reading it needs the model's schema, which input_fn is not given."""

    def __init__(self, text, media):
        self.text, self.media = text, media
        self._payload = None

    @property
    def payload(self):
        """A JSON body, parsed once."""
        if self._payload is None:
            self._payload = json.loads(self.text)
        return self._payload

    def rows(self, spec):
        """The frame path: the body as a frame of raw columns."""
        return _read_csv(self.text, spec) if self.media == CSV else _read_json(self.payload)

    def features(self, spec):
        """(float64 feature array, unseen counts): the fast path for a small body, else (or where it declines)
        the frame path."""
        if self.media == JSON or self.text.count("\n") <= FAST_ROWS:
            try:
                columns = _csv_columns(self.text, spec) if self.media == CSV else _json_columns(self.payload, spec)
                if columns[1] <= FAST_ROWS:
                    return spec.transform_columns(*columns)
            except features.Decline:
                pass
        rows = self.rows(spec)
        if rows.empty:
            raise ValueError("request has no rows")
        x, unseen = spec.transform(rows)
        return x.to_numpy(dtype="float64"), unseen


def _csv_columns(text, spec):
    """({column the model reads: [text, None where missing]}, rows) of a CSV body, as _read_csv reads it;
    Decline where pandas' reader could read it otherwise (quotes, tabs, a BOM, lone CRs, blank or short
    lines, header names it would rename) or the frame path would refuse it."""
    if '"' in text or "\t" in text or text.startswith("\ufeff") or text.count("\r") != text.count("\r\n"):
        raise features.Decline()
    lines = text.replace("\r\n", "\n").split("\n") if "\r" in text else text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or not lines[0].strip(" ") or any(line.isspace() for line in lines):
        raise features.Decline()
    first = lines[0].split(",")
    if {name.strip() for name in first} & {*spec.input_columns, spec.label}:
        names, lines = [name.lstrip(" ") for name in first], lines[1:]
        if "" in names or len(set(names)) < len(names):
            raise features.Decline()
    else:
        width = len(first)
        names = spec.input_columns if width == len(spec.input_columns) else \
            spec.required if width == len(spec.required) else None
        if names is None:
            raise features.Decline()
    rows = [line.split(",") for line in lines if line]
    if not rows or any(len(row) != len(names) for row in rows):
        raise features.Decline()
    position = {name: i for i, name in enumerate(names)}
    if any(name not in position for name in spec.required):
        raise features.Decline()
    columns = {}
    for name in spec.required:
        values = [row[position[name]].lstrip(" ") for row in rows]
        columns[name] = [None if v in NA_STRINGS else v for v in values]
    return columns, len(rows)


def _json_columns(payload, spec):
    """({column the model reads: [value]}, rows) of a JSON body of records, as _read_json reads it (a record
    without a key holds None there); Decline where the frame path would refuse it."""
    records = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not records or not all(isinstance(r, dict) for r in records):
        raise features.Decline()
    columns = {name: [r.get(name) for r in records] for name in spec.required}
    if any(not any(name in r for r in records) for name in spec.required):
        raise features.Decline()
    return columns, len(records)


def _read_csv(text, spec):
    first = next(csv.reader(io.StringIO(text)), [])
    if {name.strip() for name in first} & {*spec.input_columns, spec.label}:
        return pd.read_csv(io.StringIO(text), dtype=str, skipinitialspace=True)
    rows = pd.read_csv(io.StringIO(text), header=None, dtype=str, skipinitialspace=True)
    for names in (spec.input_columns, spec.required):
        if rows.shape[1] == len(names):
            rows.columns = names
            return rows
    raise ValueError(f"CSV rows without a header need {len(spec.input_columns)} fields in the order "
                     f"{','.join(spec.input_columns)} (or only the {len(spec.required)} the model reads: "
                     f"{','.join(spec.required)}); got {rows.shape[1]}")


def _read_json(payload):
    records = payload.get("instances") if isinstance(payload, dict) else payload
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError('JSON requests must be a list of records or {"instances": [records]}, '
                         'each record an object of raw column values')
    return pd.DataFrame.from_records(records)


def input_fn(request_body, request_content_type):
    """The request, checked for its type and emptiness; its rows are read by predict_fn's model."""
    text = request_body.decode("utf-8") if isinstance(request_body, (bytes, bytearray)) else request_body
    if not text.strip():
        raise ValueError("empty request body")
    media = _media_type(request_content_type)
    if media not in (CSV, JSON):
        raise ValueError(f"unsupported content type {request_content_type!r}; use {CSV} or {JSON}")
    return Request(text, media)


def predict_fn(input_data, model):
    """Binary: P(positive) per row; multiclass: a frame of probabilities, one column per class name;
    regression: values. `input_data` is a Request (from input_fn) or a frame of raw columns.

    A missing column or a malformed value raises ValueError naming it (a client error)."""
    spec = model["features"]
    if isinstance(input_data, Request):
        x, unseen = input_data.features(spec)
    else:
        if input_data.empty:
            raise ValueError("request has no rows")
        frame, unseen = spec.transform(input_data)
        x = frame.to_numpy(dtype="float64")
    if unseen:
        print("unseen category values (scored as missing): "
              + ", ".join(f"{name}={count}" for name, count in unseen.items()), file=sys.stderr, flush=True)
    return finish(model, model["ensemble"].predict(x))


def finish(model, raw):
    """The ensemble's raw predictions as served: binary calibrated, multiclass as a frame with class names."""
    meta = model["metadata"]
    if meta["problem_type"] == "binary":
        return calibrate(model["calibrator"], raw)
    if meta["problem_type"] == "multiclass":
        return pd.DataFrame(np.asarray(raw, dtype="float64"), columns=[str(c) for c in meta["classes"]])
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


def _wants_header(accept):
    """Whether the CSV part of an Accept header asks for a header line (`text/csv;header=present`)."""
    for part in (accept or "").split(","):
        media, _, parameters = part.partition(";")
        if media.strip().lower() == CSV:
            return any(p.strip().lower().replace(" ", "") == "header=present" for p in parameters.split(";"))
    return False


def output_fn(prediction, accept):
    """(body, content type). Binary and regression: one value per row (CSV lines, or {"predictions": [...]}).
    Multiclass: the predicted class and a probability per class, as CSV `class,p_1,...,p_k` lines (the
    model's class order) or {"predictions": [{"predicted_class": name, "probabilities": {name: p}}]}.
    An Accept of `text/csv;header=present` (RFC 4180's parameter) puts a header line first:
    `predicted_class,p_<class>,...`, so the class order need not be known; without it, no header, as
    SageMaker's containers answer."""
    media = _accept_type(accept)
    if isinstance(prediction, pd.DataFrame):
        names = list(prediction.columns)
        probabilities = prediction.to_numpy()
        predicted = [names[i] for i in probabilities.argmax(axis=1)]
        if media == JSON:
            return json.dumps({"predictions": [
                {"predicted_class": c, "probabilities": dict(zip(names, map(float, row)))}
                for c, row in zip(predicted, probabilities)]}), media
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if _wants_header(accept):
            writer.writerow(["predicted_class", *(f"p_{name}" for name in names)])
        for c, row in zip(predicted, probabilities):
            writer.writerow([c, *(f"{v:.10g}" for v in row)])
        return text.getvalue(), media
    values = np.asarray(prediction)
    if media == JSON:
        return json.dumps({"predictions": values.tolist()}), media
    return "".join(f"{v:.10g}\n" for v in values), media
