"""The schema Preprocess writes: kinds inferred from values, declared kinds, labels of any spelling."""
import json

import numpy as np
import pandas as pd
import pytest

from fixtures.tables import SHAPES
from test_preprocess import failure, read_split, run_preprocess

import features
import preprocess


def schema_of(tmp_path, df, *extra):
    out = run_preprocess(tmp_path, df, *extra)
    return json.loads((out / "schema" / "schema.json").read_text()), out


def kinds(schema):
    return {c["name"]: c["kind"] for c in schema["columns"]}


@pytest.mark.parametrize("shape", SHAPES, ids=lambda f: f.__name__)
def test_every_shape_gets_the_kinds_and_classes_it_should(tmp_path, shape):
    table = shape()
    schema, out = schema_of(tmp_path, table.frame, "--label", table.label, "--problem-type", table.problem_type)
    assert schema["label"]["name"] == table.label and schema["label"]["problem_type"] == table.problem_type
    assert schema["label"]["classes"] == table.classes
    assert {name: kinds(schema)[name] for name in table.kinds} == table.kinds
    assert table.label not in kinds(schema)
    train = read_split(out, "train")
    dropped = [c["name"] for c in schema["columns"] if c["kind"] == "dropped"]
    assert list(train.columns) == [table.label] + [c for c in kinds(schema) if c not in dropped]


def test_drops_say_why(tmp_path):
    rng = np.random.default_rng(0)
    n = 100
    df = pd.DataFrame({"id": np.arange(n) * 7 + 3, "code": [f"X{i:05d}" for i in rng.permutation(n)],
                       "empty": [None] * n, "same": 1, "note": ["a long sentence of words here " + str(i % 9)
                                                               for i in range(n)],
                       "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    schema, _ = schema_of(tmp_path, df, "--label", "y")
    reasons = {c["name"]: c.get("reason", "") for c in schema["columns"] if c["kind"] == "dropped"}
    assert set(reasons) == {"id", "code", "empty", "same", "note"}
    assert reasons["id"].startswith("identifier") and reasons["code"].startswith("identifier")
    assert reasons["empty"].startswith("empty") and reasons["same"].startswith("constant")
    assert reasons["note"].startswith("free text")
    assert all(c["source"] == "inferred" for c in schema["columns"])


def test_a_column_constant_but_for_missing_values_is_kept(tmp_path):
    df = pd.DataFrame({"flag": ["on", None] * 50, "x": np.arange(100) % 7, "y": [0, 1] * 50})
    assert kinds(schema_of(tmp_path, df, "--label", "y")[0])["flag"] != "dropped"


def test_booleans_in_any_spelling_and_dates(tmp_path):
    n = 60
    df = pd.DataFrame({"a": ["Yes", "no"] * 30, "b": ["T", "F", "t"] * 20, "c": ["ON", "off"] * 30,
                       "when": pd.date_range("2024-01-01", periods=n, freq="17h").strftime("%Y-%m-%d %H:%M"),
                       "day": ["05/31/2024", "6/1/2024"] * 30, "month": ["Feb", "Mar"] * 30, "y": [0, 1, 1] * 20})
    found = kinds(schema_of(tmp_path, df, "--label", "y")[0])
    assert found == {"a": "boolean", "b": "boolean", "c": "boolean", "when": "datetime", "day": "datetime",
                     "month": "category"}


def test_declared_kinds_override_per_column(tmp_path):
    df = pd.DataFrame({"store": [3, 5, 3, 9] * 25, "pages": np.arange(100) % 11, "y": [0, 1] * 50})
    schema, _ = schema_of(tmp_path, df, "--label", "y", "--schema", json.dumps({"store": "code"}))
    assert {c["name"]: (c["kind"], c["source"]) for c in schema["columns"]} == {
        "store": ("code", "declared"), "pages": ("number", "inferred")}


def test_a_whole_declared_schema_replaces_inference(tmp_path):
    df = pd.DataFrame({"a": np.arange(100) % 5, "b": ["x", "y"] * 50, "extra": 1.5, "y": [0, 1] * 50})
    whole = {"label": {"name": "y"}, "columns": [{"name": "a", "kind": "category"}, {"name": "b", "kind": "category"}]}
    schema, _ = schema_of(tmp_path, df, "--label", "y", "--schema", json.dumps(whole))
    assert kinds(schema) == {"a": "category", "b": "category", "extra": "dropped"}
    assert [c.get("reason") for c in schema["columns"] if c["name"] == "extra"] == ["not in the declared schema"]


@pytest.mark.parametrize("declared, expected", [
    ({"nope": "number"}, "'nope', which the input does not have"),
    ({"a": "text"}, "kind 'text'; use one of number, code, category, boolean, datetime, dropped"),
    ({"b": "number"}, "'b' should be numeric but"),
    ({"b": "boolean"}, "'b' is boolean but"),
    ({"a": "datetime"}, "'a' holds dates but"),
    ({"c": "code"}, "'c' is declared an integer code but"),
])
def test_declared_schema_mistakes_are_one_line_errors(tmp_path, declared, expected):
    df = pd.DataFrame({"a": ["1", "2"] * 50, "b": ["x", "y"] * 50, "c": [0.5, 1.0] * 50, "y": [0, 1] * 50})
    message = failure(tmp_path, df, "--label", "y", "--schema", json.dumps(declared))
    assert expected in message and "\n" not in message


def test_a_declared_schema_that_is_not_json_is_named(tmp_path):
    df = pd.DataFrame({"a": range(50), "y": [0, 1] * 25})
    assert "declared schema is not JSON" in failure(tmp_path, df, "--label", "y", "--schema", "{kinds}")


@pytest.mark.parametrize("values, wanted, classes", [
    (["yes", "no", "no"], "", ["no", "yes"]),  # the true spelling is positive
    (["TRUE", "FALSE", "FALSE"], "", ["FALSE", "TRUE"]),
    ([1, 0, 0], "", ["0", "1"]),
    (["spam", "ham", "ham"], "", ["ham", "spam"]),  # no true spelling: the minority class
    (["ham", "spam", "spam"], "", ["spam", "ham"]),
    (["yes", "no", "no"], "no", ["yes", "no"]),  # configured: any spelling of it
    (["cat", "dog", "dog"], "DOG", ["cat", "dog"]),
])
def test_the_positive_class_of_a_binary_label(values, wanted, classes):
    y = pd.Series(values * 10, name="label")
    codes, found = preprocess.encode_label(y, "binary", wanted)
    assert found == classes
    assert (codes == y.astype(str).map({classes[0]: 0, classes[1]: 1})).all()


def test_an_unknown_positive_class_names_the_classes():
    with pytest.raises(preprocess.DataError, match=r"'maybe' is not a class of the label \(classes: no, yes\)"):
        preprocess.encode_label(pd.Series(["yes", "no"] * 5, name="y"), "binary", "maybe")


def test_class_order():
    assert preprocess.class_order(["TRUE", "FALSE"]) == ["FALSE", "TRUE"]
    assert preprocess.class_order(["10", "9", "1.5"]) == ["1.5", "9", "10"]
    assert preprocess.class_order(["yes", "no"]) == ["no", "yes"]
    assert preprocess.class_order(["gold", "bronze", "silver"]) == ["bronze", "gold", "silver"]


def test_both_scripts_read_booleans_and_dates_alike():
    """Preprocess (the SKLearn image) and the model (the XGBoost image) cannot share a module."""
    dates = pd.Series(["2024-03-02 14:30", "1970-01-03", "05/31/2024", "soon", None])
    pd.testing.assert_series_equal(preprocess.to_dates(dates), features.to_dates(dates))
    assert preprocess.to_dates(dates).isna().tolist() == [False, False, False, True, True]
    assert preprocess.TRUE_SPELLINGS == features.TRUE_SPELLINGS
    assert preprocess.FALSE_SPELLINGS == features.FALSE_SPELLINGS
    assert set(preprocess.KINDS) == {"number", "code", "category", "boolean", "datetime", "dropped"}
