"""The inference handlers: raw rows read by the model's own schema, predictions with class names."""
import json

import numpy as np
import pandas as pd
import pytest

from fixtures.tables import string_label
from examples.purchase_intent import shoppers_data as data
from test_preprocess import run_preprocess
from test_train import train_model

import inference


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inference")
    splits = run_preprocess(tmp, data.generate(1000, seed=0).assign(SessionId=lambda d: [f"s{i}" for i in d.index]))
    return inference.model_fn(str(train_model(tmp, splits, "--feature_set", "shoppers")))


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("multiclass")
    table = string_label()
    splits = run_preprocess(tmp, table.frame, "--label", table.label, "--problem-type", "multiclass")
    return inference.model_fn(str(train_model(tmp, splits, "--label", table.label, "--problem_type", "multiclass")))


@pytest.fixture
def sessions():
    return data.generate(20, seed=9).drop(columns="Revenue").assign(SessionId=[f"t{i}" for i in range(20)])


def csv_text(frame, tmp_path, header=True):
    text = data.write_csv(frame, tmp_path / "body.csv").read_text()
    return text if header else text.split("\n", 1)[1]


def predict(model, body, content_type="text/csv"):
    return inference.predict_fn(inference.input_fn(body, content_type), model)


def test_csv_with_and_without_header_gives_calibrated_probabilities(model, sessions, tmp_path):
    with_header = predict(model, csv_text(sessions, tmp_path))
    assert with_header.shape == (20,) and np.all((with_header >= 0) & (with_header <= 1))
    # without a header: every column but the label in schema order (the dropped id included) ...
    np.testing.assert_allclose(predict(model, csv_text(sessions, tmp_path, header=False).encode(),
                                       "text/csv; charset=utf-8"), with_header)
    # ... or only the columns the model reads
    np.testing.assert_allclose(predict(model, csv_text(sessions.drop(columns="SessionId"), tmp_path, header=False)),
                               with_header)
    x, _ = model["features"].transform(sessions)
    raw = model["ensemble"].predict(x)
    np.testing.assert_allclose(with_header, inference.calibrate(model["calibrator"], raw))


def test_columns_by_name_in_any_order_with_extra_ones_ignored(model, sessions, tmp_path):
    shuffled = sessions[sessions.columns[::-1]].assign(Revenue=True, note="x")
    np.testing.assert_allclose(predict(model, csv_text(shuffled, tmp_path)), predict(model, csv_text(sessions, tmp_path)))


def test_json_records_and_instances(model, sessions):
    records = json.loads(sessions.to_json(orient="records"))
    as_list = predict(model, json.dumps(records), "application/json")
    as_instances = predict(model, json.dumps({"instances": records}).encode(), "application/json")
    np.testing.assert_allclose(as_list, as_instances)
    np.testing.assert_allclose(as_list, inference.predict_fn(sessions, model))


def test_a_missing_column_is_a_value_error_naming_it(model, sessions, tmp_path):
    with pytest.raises(ValueError, match="PageValues, Month"):
        predict(model, csv_text(sessions.drop(columns=["PageValues", "Month"]), tmp_path))
    record = json.loads(sessions.head(1).drop(columns="ExitRates").to_json(orient="records"))
    with pytest.raises(ValueError, match="ExitRates"):
        predict(model, json.dumps(record), "application/json")
    predict(model, csv_text(sessions.drop(columns="SessionId"), tmp_path))  # a dropped column is not required


def test_a_value_of_the_wrong_kind_names_the_column_and_the_value(model, sessions):
    with pytest.raises(ValueError, match="column 'ExitRates' must be numeric; got 'high'"):
        inference.predict_fn(sessions.assign(ExitRates="high"), model)
    with pytest.raises(ValueError, match="column 'Weekend' must be true/false .*'sometimes'"):
        inference.predict_fn(sessions.assign(Weekend="sometimes"), model)


def test_an_unseen_category_is_scored_as_missing_and_counted(model, sessions, capsys):
    p = inference.predict_fn(sessions.assign(VisitorType="Robot"), model)
    assert np.isfinite(p).all()
    assert "unseen category values (scored as missing): VisitorType=20" in capsys.readouterr().err


def test_malformed_requests_are_value_errors(model, sessions, tmp_path):
    with pytest.raises(ValueError, match="18 fields in the order Administrative,.*,SessionId .*or only the 17"):
        predict(model, csv_text(sessions.iloc[:, :5], tmp_path, header=False))
    with pytest.raises(ValueError, match="unsupported content type"):
        inference.input_fn("x", "application/x-parquet")
    with pytest.raises(ValueError, match="list of records"):
        predict(model, json.dumps({"rows": []}), "application/json")
    with pytest.raises(ValueError, match="empty"):
        inference.input_fn(b"", "text/csv")


def test_multiclass_predictions_carry_the_class_names(multiclass, tmp_path):
    rows = string_label(5, seed=11).frame.drop(columns="tier")
    prediction = predict(multiclass, csv_text(rows, tmp_path))
    assert list(prediction.columns) == multiclass["metadata"]["classes"] == ["bronze", "gold", "silver"]
    body, _ = inference.output_fn(prediction, "application/json")
    first = json.loads(body)["predictions"][0]
    assert set(first["probabilities"]) == {"bronze", "gold", "silver"}
    assert first["predicted_class"] == max(first["probabilities"], key=first["probabilities"].get)
    assert sum(first["probabilities"].values()) == pytest.approx(1)
    lines = inference.output_fn(prediction, "text/csv")[0].splitlines()
    assert len(lines) == 5 and lines[0].split(",")[0] == first["predicted_class"]
    assert [float(v) for v in lines[0].split(",")[1:]] == pytest.approx(
        [first["probabilities"][c] for c in ("bronze", "gold", "silver")])


def test_output_formats():
    body, content_type = inference.output_fn(np.array([0.25, 0.5]), "text/csv")
    assert (body, content_type) == ("0.25\n0.5\n", "text/csv")
    body, content_type = inference.output_fn(np.array([0.25, 0.5]), "application/json")
    assert json.loads(body) == {"predictions": [0.25, 0.5]} and content_type == "application/json"
    body, _ = inference.output_fn(pd.DataFrame([[0.2, 0.8], [0.6, 0.4]], columns=["no", "yes"]), "*/*")
    assert body == "yes,0.2,0.8\nno,0.6,0.4\n"
    assert inference.output_fn(np.array([1.0]), "application/xml, application/json")[1] == "application/json"
    with pytest.raises(ValueError, match="unsupported accept"):
        inference.output_fn(np.array([1.0]), "application/xml")


def test_round_trip_through_the_handlers(model, sessions, tmp_path):
    text = csv_text(pd.concat([sessions, sessions.head(1)]), tmp_path)
    body, _ = inference.output_fn(predict(model, text), "text/csv")
    values = [float(v) for v in body.splitlines()]
    assert len(values) == 21 and values[0] == values[-1]


def test_model_is_the_mean_of_its_fold_boosters(model, sessions):
    ensemble = model["ensemble"]
    boosters = ensemble.members["xgboost"]
    assert len(ensemble) == len(boosters) == model["metadata"]["folds"] == 5
    x, _ = model["features"].transform(sessions)
    d = inference.dmatrix(x, model["features"].types)
    np.testing.assert_allclose(ensemble.predict(x), np.mean([b.predict(d) for b in boosters], axis=0), rtol=1e-6)
    gain = ensemble.get_score(importance_type="gain")
    weight = ensemble.get_score(importance_type="weight")
    assert set(gain) == set(weight) and all(v > 0 for v in gain.values())
    # gain per split over all the boosters' trees
    name = max(weight, key=weight.get)
    total = sum(b.get_score(importance_type="total_gain").get(name, 0) for b in boosters)
    splits = sum(b.get_score(importance_type="weight").get(name, 0) for b in boosters)
    assert gain[name] == pytest.approx(total / splits)
    assert weight[name] == pytest.approx(splits / len(boosters))


def test_an_empty_ensemble_is_refused(model):
    with pytest.raises(ValueError, match="at least one"):
        inference.Ensemble({}, {}, model["ensemble"].task)
