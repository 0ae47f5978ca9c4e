import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression

import families
import inference
import train
from examples.purchase_intent import shoppers_data as data
from test_preprocess import read_split, run_preprocess

ROOT = Path(__file__).resolve().parents[1]

AUC_REGEX = r"validation:auc=([-+0-9.eE]+);"  # the tuner's metric definition


def train_model(tmp_path, splits, *extra):
    """Run train.main on preprocess output with a small number of rounds; return the model dir."""
    model_dir = tmp_path / "model"
    train.main(["--train", str(splits / "train"), "--validation", str(splits / "validation"),
                "--schema", str(splits / "schema"), "--model-dir", str(model_dir), "--output-data-dir", str(tmp_path / "output"),
                "--failure-file", str(tmp_path / "failure"), "--num_round", "25", "--nthread", "1",
                *(() if any(e.startswith("--families") for e in extra) else ("--families", "xgboost")), *extra])
    return model_dir


def with_other_labels(df):
    """The generator's data with a 3-class label (Segment) and a numeric one (BasketValue) instead of Revenue."""
    df = df.drop(columns="Revenue")
    df["Segment"] = np.select([df["ProductRelated"] < 8, df["ProductRelated"] < 25], ["few", "some"], "many")
    df["BasketValue"] = (df["PageValues"] * 1.5 + df["ProductRelated"]).round(3)
    return df


@pytest.fixture(scope="module")
def binary_splits(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("binary")
    return run_preprocess(tmp, data.generate(1500, seed=0))


def test_end_to_end_with_sagemaker_environment(binary_splits, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(binary_splits / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(binary_splits / "validation"))
    monkeypatch.setenv("SM_CHANNEL_SCHEMA", str(binary_splits / "schema"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SM_NUM_CPUS", "1")
    # hyperparameters as SageMaker may send them: JSON-encoded or bare, plus the tuner's own extra
    train.main(["--num_round", '"40"', "--eta", '"0.2"', "--max_depth", "3", "--calibration", '"isotonic"',
                "--families", '"xgboost,linear"', "--_tuning_objective_metric", "validation:auc",
                "--failure-file", str(tmp_path / "failure")])

    printed = capsys.readouterr().out
    auc = float(re.findall(AUC_REGEX, printed)[-1])
    assert 0.75 < auc <= 1
    assert re.search(r"^train:auc=[0-9.]+;$", printed, re.M)

    model = tmp_path / "model"
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["folds"] == 5 and meta["model_files"] == [f"xgboost-model-{k}.json" for k in range(5)]
    assert [e["family"] for e in meta["ensemble"]] == ["xgboost", "linear"]  # both trained, on the same folds
    linear = [f"linear-{k}.json" for k in range(5)]
    assert meta["ensemble"][1]["files"] == linear
    assert {p.name for p in model.iterdir()} == {*meta["model_files"], *linear, "calibrator.json", "metadata.json",
                                                 "code", "schema.json", "features.json"}
    assert sum(e["weight"] for e in meta["ensemble"]) == pytest.approx(1.0)
    assert all(0.5 < e["validation"]["auc"] <= 1 for e in meta["ensemble"])  # each family's own out-of-fold score
    served = sorted(p.relative_to(model / "code").as_posix() for p in (model / "code").rglob("*.py"))
    assert served == ["families.py", "feature_sets/__init__.py", "features.py",
                      "inference.py", "trees.py"]  # a feature set only when one is shipped
    for name in served:
        assert (model / "code" / name).read_bytes() == (ROOT / "training_scripts" / name).read_bytes()
    assert json.loads((model / "schema.json").read_text()) == json.loads(
        (binary_splits / "schema" / "schema.json").read_text())  # the schema travels with the model
    # cross-fitted over both channels: every row has exactly one out-of-fold prediction
    assert meta["rows"]["out_of_fold"] == meta["rows"]["train"] + meta["rows"]["validation"]
    assert len(meta["rounds"]) == 5 and all(1 <= r <= 40 for r in meta["rounds"])
    assert meta["problem_type"] == "binary" and meta["label"] == "Revenue"
    assert meta["classes"] == ["FALSE", "TRUE"]  # names in code order: the positive class is 1
    spec = json.loads((model / "features.json").read_text())
    assert meta["feature_names"] == spec["names"] and meta["feature_types"] == spec["types"]
    assert meta["raw_columns"] == data.COLUMNS[:-1]
    assert meta["feature_set"] == {"name": None, "applied": False, "reason": "no feature set chosen"}
    labels = pd.concat([read_split(binary_splits, s)["Revenue"] for s in ("train", "validation")])
    assert meta["label_stats"]["counts"] == [int((labels == 0).sum()), int((labels == 1).sum())]
    assert meta["label_stats"]["prior"][1] == pytest.approx(labels.mean())  # what evaluate's baselines start from
    assert 0 <= meta["best_iteration"] < 40 and 0 < meta["threshold"] < 1
    assert meta["hyperparameters"]["eta"] == 0.2 and meta["hyperparameters"]["num_round"] == 40
    assert meta["xgboost_params"]["scale_pos_weight"] == 1.0  # "auto": no reweighting
    assert meta["xgboost_params"]["nthread"] == 1
    assert meta["metrics"]["validation"]["auc"] == pytest.approx(auc, abs=1e-6)
    calibrator = json.loads((model / "calibrator.json").read_text())
    assert calibrator["method"] == "isotonic" and len(calibrator["x"]) == len(calibrator["y"])
    assert set(json.loads((tmp_path / "data" / "metrics.json").read_text())["history"]) == {
        f"fold_{k}" for k in range(5)}
    assert not (tmp_path / "failure").exists()


def test_one_fold_trains_on_train_and_stops_on_validation(binary_splits, tmp_path, capsys):
    model = train_model(tmp_path, binary_splits, "--folds", "1")
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["folds"] == 1 and meta["model_files"] == ["xgboost-model-0.json"]
    assert meta["rows"]["out_of_fold"] == meta["rows"]["validation"]
    auc = float(re.search(AUC_REGEX, capsys.readouterr().out).group(1))
    assert auc == pytest.approx(meta["metrics"]["validation_channel"]["auc"], abs=1e-6)


def test_validation_metric_is_out_of_fold(tmp_path, capsys):
    """With labels unrelated to the features, an honest held-out AUC is near 0.5 although train AUC is high."""
    df = data.generate(1500, seed=3)
    df["Revenue"] = np.random.default_rng(0).random(len(df)) < 0.3
    splits = run_preprocess(tmp_path, df)
    model = train_model(tmp_path, splits, "--max_depth", "6", "--min_child_weight", "1", "--early_stopping_rounds",
                        "25")
    printed = capsys.readouterr().out
    assert abs(float(re.findall(AUC_REGEX, printed)[-1]) - 0.5) < 0.06
    assert float(re.search(r"^train:auc=([0-9.]+);$", printed, re.M).group(1)) > 0.6
    # calibrated on out-of-fold predictions: the served probabilities stay near the base rate
    served = inference.model_fn(str(model))
    x = read_split(splits, "test").drop(columns="Revenue")
    p = inference.predict_fn(x, served)
    assert abs(p.mean() - 0.3) < 0.05 and p.std() < 0.1


def keys(n):
    return train.row_keys(pd.DataFrame({"x": np.arange(n, dtype=float)}), seed=0)


@pytest.mark.parametrize("problem_type", ["binary", "multiclass", "regression"])
def test_fold_splits_cover_every_row_once(problem_type):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3 if problem_type == "multiclass" else 2, 200).astype(float)
    if problem_type == "regression":
        y = rng.normal(size=200)
    splits = train.fold_splits(keys(200), y, 150, problem_type, 5)
    assert len(splits) == 5
    held = np.concatenate([h for _, h in splits])
    np.testing.assert_array_equal(np.sort(held), np.arange(200))
    for fit, h in splits:
        assert not set(fit) & set(h) and len(fit) + len(h) == 200
        if problem_type != "regression":
            assert set(y[h]) == set(y)  # stratified: every class in every held-out fold


def test_fold_splits_shrink_for_a_rare_class_and_one_fold_keeps_the_channels():
    y = np.array([0.0] * 50 + [1.0] * 3)
    assert len(train.fold_splits(keys(53), y, 40, "binary", 5)) == 3
    [(fit, held)] = train.fold_splits(keys(53), y, 40, "binary", 1)
    np.testing.assert_array_equal(fit, np.arange(40))
    np.testing.assert_array_equal(held, np.arange(40, 53))
    with pytest.raises(train.TrainingError, match="--folds"):
        train.fold_splits(keys(53), y, 40, "binary", 0)


def test_default_sigmoid_calibration_and_explicit_pos_weight(binary_splits, tmp_path):
    model = train_model(tmp_path, binary_splits, "--scale_pos_weight", "5")
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["calibration"] == "sigmoid" and meta["xgboost_params"]["scale_pos_weight"] == 5.0
    calibrator = json.loads((model / "calibrator.json").read_text())
    assert calibrator["slope"] > 0 and calibrator["intercept"] < 0  # undoes the upweighted positives


@pytest.mark.parametrize("problem_type, label, lines", [
    ("multiclass", "Segment", [r"validation:mlogloss=[0-9.]+;", r"validation:accuracy=[0-9.]+;"]),
    ("regression", "BasketValue", [r"validation:rmse=[0-9.]+;"]),
])
def test_other_problem_types_print_their_metrics(tmp_path, capsys, problem_type, label, lines):
    df = with_other_labels(data.generate(900, seed=1))
    splits = run_preprocess(tmp_path, df, "--label", label, "--problem-type", problem_type)
    model = train_model(tmp_path, splits, "--problem_type", problem_type, "--label", label)
    printed = capsys.readouterr().out
    for line in lines:
        assert re.search(line, printed)
    meta = json.loads((model / "metadata.json").read_text())
    assert meta["classes"] == (["few", "many", "some"] if problem_type == "multiclass" else None)
    assert meta["threshold"] is None and meta["calibration"] == "none"
    if problem_type == "regression":
        assert meta["label_stats"]["mean"] == pytest.approx(pd.concat(
            [read_split(splits, s)[label] for s in ("train", "validation")]).mean())


def test_failure_is_written_and_exits_1(binary_splits, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--train", str(tmp_path / "empty"), "--validation", str(binary_splits / "validation"),
                    "--schema", str(binary_splits / "schema"), "--model-dir", str(tmp_path / "m"),
                    "--failure-file", str(tmp_path / "failure")])
    assert exit_info.value.code == 1
    message = (tmp_path / "failure").read_text()
    assert "train channel" in message and str(tmp_path / "empty") in message


def test_labels_must_be_encoded(binary_splits, tmp_path):
    splits = tmp_path / "splits"
    shutil.copytree(binary_splits, splits)
    for part in (splits / "train").glob("*.parquet"):
        frame = pd.read_parquet(part)
        frame.assign(Revenue=frame["Revenue"] + 1).to_parquet(part)
    with pytest.raises(SystemExit):
        train_model(tmp_path, splits)
    assert "binary labels must be the codes [0, 1]" in (tmp_path / "failure").read_text()
    with pytest.raises(SystemExit):
        train_model(tmp_path, binary_splits, "--problem_type", "multiclass")
    assert "disagrees with the schema" in (tmp_path / "failure").read_text()


def test_the_label_must_be_the_schemas(binary_splits, tmp_path):
    with pytest.raises(SystemExit):
        train_model(tmp_path, binary_splits, "--label", "Region")
    assert "not the label of the schema ('Revenue')" in (tmp_path / "failure").read_text()


def test_a_missing_schema_channel_is_named(binary_splits, tmp_path):
    with pytest.raises(SystemExit):
        train.main(["--train", str(binary_splits / "train"), "--validation", str(binary_splits / "validation"),
                    "--schema", str(tmp_path / "nowhere"), "--model-dir", str(tmp_path / "m"),
                    "--failure-file", str(tmp_path / "failure")])
    assert "no schema.json in the schema channel" in (tmp_path / "failure").read_text()


def test_the_feature_set_adds_its_features_or_says_why_not(binary_splits, tmp_path):
    meta = json.loads((train_model(tmp_path / "a", binary_splits, "--feature_set", "shoppers") /
                       "metadata.json").read_text())
    assert meta["feature_set"] == {"name": "shoppers", "applied": True, "reason": None}
    assert {"total_pages", "month_num", "bounce_x_exit"} <= set(meta["feature_names"])
    codes = [n for n, t in zip(meta["feature_names"], meta["feature_types"]) if t == "c"]
    assert codes == ["Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType"]

    other = run_preprocess(tmp_path / "b", pd.DataFrame({"x": np.arange(200) % 13, "y": [0, 1] * 100}), "--label", "y")
    meta = json.loads((train_model(tmp_path / "b", other, "--label", "y", "--feature_set", "shoppers") /
                       "metadata.json").read_text())
    assert not meta["feature_set"]["applied"] and "lacks column(s) Administrative" in meta["feature_set"]["reason"]
    assert meta["feature_names"] == ["x"]


def test_an_unknown_feature_set_is_refused(binary_splits, tmp_path):
    with pytest.raises(SystemExit):
        train_model(tmp_path, binary_splits, "--feature_set", "retail")
    assert "unknown feature set 'retail': the training code holds no feature_sets/retail.py" in \
        (tmp_path / "failure").read_text()


def test_hyperparameters_accept_json_encoded_values():
    args = train.parse_args(["--eta", '"0.3"', "--max_depth", "7.0", "--calibration", '"none"',
                             "--scale_pos_weight", '"auto"', "--lambda", "2"], env={})
    assert (args.eta, args.max_depth, args.calibration, args.scale_pos_weight) == (0.3, 7, "none", "auto")
    assert args.folds == "auto" and train.parse_args(["--folds", '"3"'], env={}).folds == 3
    assert vars(args)["lambda"] == 2.0 and args.train == "/opt/ml/input/data/train" and args.nthread == 0
    assert train.parse_args([], env={"SM_NUM_CPUS": "3"}).nthread == 3
    with pytest.raises(SystemExit):
        train.parse_args(["--max_depth", "2.5"], env={})


def test_calibrators_round_trip_through_json():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p ** 2).astype(int)  # raw scores overconfident
    iso = train.fit_calibrator("isotonic", p, y)
    expected = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y).predict(np.r_[p, -1, 2])
    np.testing.assert_allclose(inference.calibrate(json.loads(json.dumps(iso)), np.r_[p, -1, 2]), expected)
    sig = train.fit_calibrator("sigmoid", p, y)
    calibrated = inference.calibrate(sig, p)
    assert np.all(np.diff(calibrated[np.argsort(p)]) >= 0)
    assert abs(calibrated.mean() - y.mean()) < 0.01
    np.testing.assert_array_equal(inference.calibrate(train.fit_calibrator("none", p, y), p), p)


def test_best_f1_threshold():
    y = np.array([0, 0, 0, 1, 1, 0, 1, 1])
    q = np.array([.1, .2, .3, .4, .6, .65, .7, .9])
    assert train.best_f1_threshold(y, q) == 0.4  # everything from .4 up: P=4/5, R=1


def test_every_family_trains_on_the_same_folds_and_the_blend_is_served(binary_splits, tmp_path, capsys):
    """The image's families (and LightGBM where installed) each cross-fit; the weights come from out-of-fold
    predictions, and the served model is their weighted blend of fold means, from one feature frame. Equal
    weights, so that every family ships (greedy weights left XGBoost out of this small table)."""
    names = "xgboost,linear,histgb,extratrees,randomforest" + (",lightgbm" if families.available("lightgbm") else "")
    model_dir = train_model(tmp_path, binary_splits, "--families", names, "--blend", "equal")
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert [e["family"] for e in meta["ensemble"]] == names.split(",")
    # every family is scored; those the blend weighs ship one model per fold, the others none
    assert all(len(e["files"]) == (meta["folds"] if e["weight"] else 0) for e in meta["ensemble"])
    printed = capsys.readouterr().out
    assert re.search(r"^ensemble: xgboost|^ensemble: \w+ [0-9.]+", printed, re.M)
    model = inference.model_fn(str(model_dir))
    x = read_split(binary_splits, "test").drop(columns="Revenue")
    frame, _ = model["features"].transform(x)
    ensemble = model["ensemble"]
    expected = sum(e["weight"] * families.predict(e["family"], ensemble.members[e["family"]], frame, ensemble.task)
                   for e in meta["ensemble"] if e["weight"])
    # the served copy of the trees sums leaves in float32 (trees.py): a few millionths of a probability
    np.testing.assert_allclose(ensemble.predict(frame), expected, rtol=0, atol=2e-5)
    assert set(ensemble.served.parts) == {"xgboost", "histgb", "extratrees", "randomforest"}  # all in one booster
    p = inference.predict_fn(x, model)
    assert p.shape == (len(x),) and ((0 < p) & (p < 1)).all()


def test_families_are_checked_by_name(binary_splits, tmp_path):
    with pytest.raises(SystemExit):
        train_model(tmp_path, binary_splits, "--families", "xgboost,neuralnet")
    assert "unknown model family neuralnet" in (tmp_path / "failure").read_text()


def test_the_blend_weighs_families_by_their_out_of_fold_loss():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    good = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.1, len(y)), 0.01, 0.99)
    noise = np.clip(0.3 + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    weights = train.blend_weights({"good": good, "noise": noise}, y, "binary")
    assert weights["good"] > 0.8 and sum(weights.values()) == pytest.approx(1.0)
    assert train.blend_weights({"only": good}, y, "binary") == {"only": 1.0}


def test_a_trial_plans_for_its_share_of_the_time_budget():
    args = train.parse_args(["--time_budget", "120", "--tuning_jobs", "4", "--tuning_parallel", "2"])
    assert train.plan_deadline(args, 1000.0) == pytest.approx(1000 + train.PLANNED_SHARE * 60 - train.FIXED_SECONDS)
    assert train.plan_deadline(train.parse_args([]), 1000.0) is None  # no budget: no deadline
    # the time left is shared by the families still to train, by their weights
    until = train.family_until(["xgboost", "linear"], 0.0, 45.0)
    assert until == pytest.approx(45 * 4.0 / 5.0)


def test_progress_lines_come_while_training(binary_splits, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "PROGRESS_SECONDS", 0.01)
    train_model(tmp_path, binary_splits, "--families", "xgboost,extratrees", "--time_budget", "600")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("progress: ")]
    assert lines and all(re.match(r"progress: \w+ fold [1-5]/5", line) for line in lines)
    assert any(" s left" in line for line in lines)
