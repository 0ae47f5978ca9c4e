import json

import numpy as np
import pandas as pd
import pytest

from pipelines import data
from test_preprocess import run_preprocess
from test_train import train_model

import inference


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("inference")
    splits = run_preprocess(tmp, data.generate(1000, seed=0))
    return inference.model_fn(str(train_model(tmp, splits)))


@pytest.fixture
def sessions():
    return data.generate(20, seed=9).drop(columns="Revenue")


def test_csv_with_and_without_header_gives_calibrated_probabilities(model, sessions, tmp_path):
    text = data.write_csv(sessions, tmp_path / "body.csv").read_text()
    with_header = inference.predict_fn(inference.input_fn(text, "text/csv"), model)
    without = inference.predict_fn(inference.input_fn(text.split("\n", 1)[1].encode(), "text/csv; charset=utf-8"),
                                   model)
    assert with_header.shape == (20,) and np.all((with_header >= 0) & (with_header <= 1))
    np.testing.assert_allclose(with_header, without)
    raw = model["booster"].predict(inference.dmatrix(inference.features.engineer(sessions)))
    np.testing.assert_allclose(with_header, inference.calibrate(model["calibrator"], raw))


def test_json_records_and_instances(model, sessions):
    records = json.loads(sessions.to_json(orient="records"))
    as_list = inference.predict_fn(inference.input_fn(json.dumps(records), "application/json"), model)
    as_instances = inference.predict_fn(inference.input_fn(json.dumps({"instances": records}).encode(),
                                                           "application/json"), model)
    np.testing.assert_allclose(as_list, as_instances)
    typed = inference.predict_fn(sessions, model)
    np.testing.assert_allclose(as_list, typed)


def test_missing_column_is_a_value_error_naming_it(model, sessions, tmp_path):
    text = data.write_csv(sessions.drop(columns=["PageValues", "Month"]), tmp_path / "b.csv").read_text()
    with pytest.raises(ValueError, match="PageValues, Month"):
        inference.predict_fn(inference.input_fn(text, "text/csv"), model)
    record = json.loads(sessions.head(1).drop(columns="ExitRates").to_json(orient="records"))
    with pytest.raises(ValueError, match="ExitRates"):
        inference.predict_fn(inference.input_fn(json.dumps(record), "application/json"), model)


def test_malformed_requests_are_value_errors(model, sessions, tmp_path):
    headerless = data.write_csv(sessions.iloc[:, :5], tmp_path / "b.csv").read_text().split("\n", 1)[1]
    with pytest.raises(ValueError, match="17 fields"):
        inference.input_fn(headerless, "text/csv")
    with pytest.raises(ValueError, match="unsupported content type"):
        inference.input_fn("x", "application/x-parquet")
    with pytest.raises(ValueError, match="list of records"):
        inference.input_fn(json.dumps({"rows": []}), "application/json")
    with pytest.raises(ValueError, match="empty"):
        inference.input_fn(b"", "text/csv")
    with pytest.raises(ValueError, match="'ExitRates'"):
        inference.predict_fn(sessions.assign(ExitRates="high"), model)


def test_output_formats():
    body, content_type = inference.output_fn(np.array([0.25, 0.5]), "text/csv")
    assert (body, content_type) == ("0.25\n0.5\n", "text/csv")
    body, content_type = inference.output_fn(np.array([0.25, 0.5]), "application/json")
    assert json.loads(body) == {"predictions": [0.25, 0.5]} and content_type == "application/json"
    body, _ = inference.output_fn(np.array([[0.2, 0.8], [0.6, 0.4]]), "*/*")
    assert body == "0.2,0.8\n0.6,0.4\n"
    assert inference.output_fn(np.array([1.0]), "application/xml, application/json")[1] == "application/json"
    with pytest.raises(ValueError, match="unsupported accept"):
        inference.output_fn(np.array([1.0]), "application/xml")


def test_round_trip_through_the_handlers(model, sessions, tmp_path):
    text = data.write_csv(pd.concat([sessions, sessions.head(1)]), tmp_path / "b.csv").read_text()
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(text, "text/csv"), model), "text/csv")
    values = [float(v) for v in body.splitlines()]
    assert len(values) == 21 and values[0] == values[-1]


def test_model_is_the_mean_of_its_fold_boosters(model, sessions):
    ensemble = model["booster"]
    assert len(ensemble) == model["metadata"]["folds"] == 5
    d = inference.dmatrix(inference.features.engineer(sessions))
    np.testing.assert_allclose(ensemble.predict(d), np.mean([b.predict(d) for b in ensemble.boosters], axis=0),
                               rtol=1e-6)
    gain = ensemble.get_score(importance_type="gain")
    weight = ensemble.get_score(importance_type="weight")
    assert set(gain) == set(weight) and all(v > 0 for v in gain.values())
    # gain per split over all the boosters' trees
    name = max(weight, key=weight.get)
    total = sum(b.get_score(importance_type="total_gain").get(name, 0) for b in ensemble.boosters)
    splits = sum(b.get_score(importance_type="weight").get(name, 0) for b in ensemble.boosters)
    assert gain[name] == pytest.approx(total / splits)
    assert weight[name] == pytest.approx(splits / len(ensemble))


def test_archive_with_one_booster_file_still_loads(model, sessions, tmp_path):
    """Archives written before cross-fitting hold xgboost-model.json and no model_files."""
    first = model["booster"].boosters[0]
    first.save_model(str(tmp_path / "xgboost-model.json"))
    meta = {k: v for k, v in model["metadata"].items() if k != "model_files"}
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    (tmp_path / "calibrator.json").write_text(json.dumps(model["calibrator"]))
    old = inference.model_fn(str(tmp_path))
    assert len(old["booster"]) == 1
    raw = first.predict(inference.dmatrix(inference.features.engineer(sessions)))
    np.testing.assert_allclose(inference.predict_fn(sessions, old), inference.calibrate(model["calibrator"], raw))


def test_an_empty_ensemble_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        inference.Ensemble([])
