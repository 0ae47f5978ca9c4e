"""The fast path and the frame path read a request into the same array, bit for bit, and so predict the same.

Every table shape of tests/fixtures/tables.py (and the shoppers feature set's array form) is trained, then
sent as CSV (with a header, columns reordered and an extra one; without a header) and as JSON (records,
numbers as numbers, keys left out), with missing values, unseen categories, booleans in every spelling,
dates in two formats and stray spaces. The fast path must take each body (not decline it), and its array
must equal the frame path's.
"""
import json

import numpy as np
import pandas as pd
import pytest

from examples.purchase_intent import shoppers_data as data
from fixtures.tables import SHAPES
from test_preprocess import run_preprocess
from test_train import train_model

import features
import inference

TRUE = ["true", "TRUE", "True", " t", "T", "yes", "Yes", "Y", "y", "1", "1.0", "on", "ON "]
FALSE = ["false", "FALSE", "f", "F ", "no", "NO", "n", "N", "0", "0.0", "off", " Off"]


def _model(tmp, frame, label, problem_type, *extra):
    splits = run_preprocess(tmp, frame, "--label", label, "--problem-type", problem_type)
    return inference.model_fn(str(train_model(tmp, splits, "--label", label, "--problem_type", problem_type,
                                              *extra)))


@pytest.fixture(scope="module", params=SHAPES, ids=lambda f: f.__name__)
def shape(request, tmp_path_factory):
    table = request.param()
    return table, _model(tmp_path_factory.mktemp(table.name), table.frame, table.label, table.problem_type)


@pytest.fixture(scope="module")
def shoppers(tmp_path_factory):
    frame = data.generate(800, seed=0).assign(SessionId=lambda d: [f"s{i}" for i in d.index])
    return frame.drop(columns="Revenue"), _model(tmp_path_factory.mktemp("shoppers"), frame, "Revenue", "binary",
                                                 "--feature_set", "shoppers")


def messy(frame, spec, seed):
    """Raw values (text or None) of `frame`'s rows as a client may send them: some missing, some categories
    never seen, booleans in every spelling, dates with and without a time, spaces around values."""
    rng = np.random.default_rng(seed)
    out = {}
    for name in frame.columns:
        values = [None if pd.isna(v) else str(v) for v in frame[name]]
        kind = spec.kinds.get(name)
        if kind == "boolean":
            values = [None if v is None else str(rng.choice(TRUE if v.strip().lower() in features.TRUE_SPELLINGS
                                                           else FALSE)) for v in values]
        elif kind == "category":
            values = [("never-seen" if rng.random() < 0.2 else f" {v} " if rng.random() < 0.2 else v)
                      if v is not None else v for v in values]
        elif kind == "datetime":
            values = [f"{v} 13:45:00" if v is not None and rng.random() < 0.3 else v for v in values]
        out[name] = [None if rng.random() < 0.15 else v for v in values]
    return out


def csv_body(columns, names):
    rows = [",".join("" if columns[n][i] is None else columns[n][i] for n in names)
            for i in range(len(next(iter(columns.values()))))]
    return "\n".join([",".join(names), *rows]) + "\n"


def json_value(v, kind, rng):
    """JSON's own types where a client would use them: numbers as numbers, booleans as true/false."""
    if v is None or rng.random() < 0.5:
        return v
    if kind == "number":
        number = float(v)
        return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number
    if kind == "boolean":
        return v.strip().lower() in features.TRUE_SPELLINGS
    return v


def json_body(columns, spec, rng):
    n = len(next(iter(columns.values())))
    records = [{name: json_value(values[i], spec.kinds.get(name), rng) for name, values in columns.items()
                if not (values[i] is None and rng.random() < 0.5)}  # a key left out is missing too
               for i in range(n)]
    return json.dumps({"instances": records} if rng.random() < 0.5 else records)


def bodies(raw, spec, seed):
    """(media, body) of the same rows in every form the endpoint reads."""
    rng = np.random.default_rng(seed)
    columns = messy(raw, spec, seed)
    reordered = list(reversed(spec.input_columns))
    with_extra = {**columns, "not_in_the_model": ["x"] * len(raw)}
    return [(inference.CSV, csv_body(columns, spec.input_columns)),
            (inference.CSV, csv_body(with_extra, reordered[:1] + ["not_in_the_model"] + reordered[1:])),
            (inference.CSV, csv_body(columns, spec.input_columns).split("\n", 1)[1]),  # no header
            (inference.CSV, csv_body(columns, spec.input_columns).replace("\n", "\r\n")),
            (inference.JSON, json_body(columns, spec, rng)),
            (inference.JSON, json_body(with_extra, spec, rng))]


def both_paths(model, media, body, monkeypatch):
    """(fast array, frame array, fast prediction, frame prediction); fails where the fast path declines."""
    spec = model["features"]
    request = inference.input_fn(body, media)
    parse = inference._csv_columns if media == inference.CSV else inference._json_columns
    fast = spec.transform_columns(*parse(body if media == inference.CSV else request.payload, spec))
    frame, unseen = spec.transform(request.rows(spec))
    assert fast[1] == unseen
    predicted = inference.predict_fn(request, model)
    with monkeypatch.context() as m:
        m.setattr(inference, "FAST_ROWS", -1)  # every body through the frame path
        from_frame = inference.predict_fn(inference.input_fn(body, media), model)
    return fast[0], frame.to_numpy(dtype="float64"), predicted, from_frame


def same(a, b):
    """Bit for bit, as arrays or frames of predictions."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def test_every_shape_reads_the_same_on_both_paths(shape, monkeypatch):
    table, model = shape
    raw = table.frame.drop(columns=table.label).sample(12, random_state=0).reset_index(drop=True)
    for seed, (media, body) in enumerate(bodies(raw, model["features"], seed=1)):
        fast, frame, predicted, from_frame = both_paths(model, media, body, monkeypatch)
        assert fast.shape == (len(raw), len(model["features"].names))
        same(fast, frame)
        same(predicted, from_frame)


def test_the_shoppers_feature_set_reads_the_same_on_both_paths(shoppers, monkeypatch):
    raw, model = shoppers
    assert model["features"].feature_set["applied"] and model["features"].arrays
    for media, body in bodies(raw.sample(20, random_state=2).reset_index(drop=True), model["features"], seed=3):
        fast, frame, predicted, from_frame = both_paths(model, media, body, monkeypatch)
        same(fast, frame)
        same(predicted, from_frame)


def test_one_row_and_the_size_boundary_take_the_same_values(shoppers, monkeypatch):
    """One row (where pandas guesses types from a single value), and bodies either side of FAST_ROWS."""
    raw, model = shoppers
    spec = model["features"]
    one = csv_body(messy(raw.head(1), spec, 5), spec.input_columns)
    fast, frame, *_ = both_paths(model, inference.CSV, one, monkeypatch)
    same(fast, frame)
    monkeypatch.setattr(inference, "FAST_ROWS", 10)
    for n in (10, 11):
        body = csv_body(messy(raw.head(n), spec, n), spec.input_columns)
        x, _ = inference.input_fn(body, inference.CSV).features(spec)
        same(x, spec.transform(inference.input_fn(body, inference.CSV).rows(spec))[0].to_numpy(dtype="float64"))


@pytest.mark.parametrize("media,body", [
    (inference.CSV, 'a,"quoted, with a comma"\n'),
    (inference.CSV, "\ufeffa,b\n"),
    (inference.JSON, '[{"n": "12345678901234567"}]'),
    (inference.JSON, '[{"n": NaN}]'),
])
def test_what_the_fast_path_cannot_vouch_for_it_declines(media, body):
    """Quotes, a byte-order mark, integers beyond float64's exact range, a NaN (not JSON, but Python reads it): the frame path
    reads these (or names what is wrong), never the fast path guessing."""
    spec = features.Features("y", [{"name": "a", "kind": "category"}, {"name": "b", "kind": "category"},
                                   {"name": "n", "kind": "number"}] if media == inference.CSV else
                             [{"name": "n", "kind": "number"}], {"a": ["x"], "b": ["y"]})
    request = inference.input_fn(body, media)
    with pytest.raises(features.Decline):
        parse = inference._csv_columns if media == inference.CSV else inference._json_columns
        spec.transform_columns(*parse(body if media == inference.CSV else request.payload, spec))


def test_a_feature_set_without_the_array_form_is_served_by_the_frame_path(shoppers, monkeypatch):
    raw, model = shoppers
    spec = model["features"]
    body = csv_body(messy(raw.head(5), spec, 7), spec.input_columns)
    expected = inference.predict_fn(inference.input_fn(body, inference.CSV), model)
    monkeypatch.delattr(spec._plugin, "ARRAYS")
    assert not spec.arrays
    with pytest.raises(features.Decline):
        spec.transform_columns(*inference._csv_columns(body, spec))
    # the older form takes Series: the frame path still serves, with the same predictions
    monkeypatch.setattr(spec._plugin, "add", _series_form(spec._plugin.add))
    same(inference.predict_fn(inference.input_fn(body, inference.CSV), model), expected)


def _series_form(add):
    """The shoppers set's `add` as a feature set without the array form would write it: Series in, Series out."""
    def series_add(columns):
        index = next(iter(columns.values())).index
        arrays = {name: v.to_numpy(dtype="float64") if pd.api.types.is_numeric_dtype(v) else
                  np.array([None if pd.isna(x) else str(x).strip() for x in v], dtype=object)
                  for name, v in columns.items()}
        return {name: pd.Series(v, index=index) for name, v in add(arrays).items()}
    return series_add
