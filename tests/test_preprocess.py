import gzip
import json

import numpy as np
import pandas as pd
import pytest

from examples.purchase_intent import shoppers_data as data

import preprocess


def run_preprocess(tmp_path, df, *extra, name="part.csv"):
    """Write df as the raw input, run preprocess.main, return the output directory."""
    data.write_csv(df, tmp_path / "raw" / name)
    out = tmp_path / "prep"
    preprocess.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(out), "--label", "Revenue",
                     "--failure-file", str(tmp_path / "failure" / "message"), *extra])
    return out


def read_split(out, name):
    """One split as the model reads it: every host's Parquet parts."""
    return pd.concat([pd.read_parquet(p) for p in sorted((out / name).glob("*.parquet"))], ignore_index=True)


def read_splits(out):
    return {s: read_split(out, s) for s in preprocess.SPLITS}


def failure(tmp_path, df, *extra):
    with pytest.raises(SystemExit) as exit_info:
        run_preprocess(tmp_path, df, *extra)
    assert exit_info.value.code == 1
    return (tmp_path / "failure" / "message").read_text()


def test_end_to_end_binary(tmp_path):
    df = data.generate(1200, seed=0)
    df["PageValues"] = df["PageValues"].astype(object)
    df.loc[[3, 4], "PageValues"] = np.nan
    df.loc[5, "Month"] = np.nan
    df = pd.concat([df, df.iloc[:25]], ignore_index=True)  # 25 exact duplicates
    # a second file, gzipped, in a sub-directory: inputs are found recursively and concatenated
    extra = data.generate(300, seed=1)
    gz = tmp_path / "raw" / "more" / "extra.csv.gz"
    gz.parent.mkdir(parents=True)
    gz.write_bytes(gzip.compress(data.write_csv(extra, tmp_path / "extra.csv").read_bytes()))

    out = run_preprocess(tmp_path, df)
    splits = read_splits(out)
    profile = json.loads((out / "profile" / "profile.json").read_text())
    schema = json.loads((out / "schema" / "schema.json").read_text())

    total = len(df) + len(extra) - 25
    assert profile["rows_read"] == len(df) + len(extra)
    assert profile["duplicates_dropped"] == 25
    assert profile["rows"] == {s: len(splits[s]) for s in preprocess.SPLITS}
    assert sum(profile["rows"].values()) == total
    assert abs(profile["rows"]["test"] - 0.15 * total) <= 1 and abs(profile["rows"]["validation"] - 0.15 * total) <= 1
    assert profile["classes"] == schema["label"]["classes"] == ["FALSE", "TRUE"]
    assert schema["label"] == {"name": "Revenue", "kind": "boolean", "problem_type": "binary",
                               "classes": ["FALSE", "TRUE"], "positive_class": "TRUE"}
    assert [c["name"] for c in schema["columns"]] == data.COLUMNS[:-1]
    for frame in splits.values():
        assert list(frame.columns) == ["Revenue"] + data.COLUMNS[:-1]  # label first, input schema
        assert set(frame["Revenue"]) == {0, 1} and frame["Revenue"].dtype == "int64"
        assert set(frame["Weekend"]) == {"TRUE", "FALSE"}  # as written: the model reads any spelling
        assert frame["Month"].dropna().isin(set(df["Month"].dropna())).all()
    # missing values stay missing: XGBoost learns where they go, nothing is imputed
    both = pd.concat(splits.values())
    assert both["PageValues"].isna().sum() == 2 and both["Month"].isna().sum() == 1
    assert both.drop(columns=["PageValues", "Month"]).notna().all().all()
    # stratified: the positive rate is the same in every split
    rates = [frame["Revenue"].mean() for frame in splits.values()]
    assert max(rates) - min(rates) < 0.01
    positives = sum(frame["Revenue"].sum() for frame in splits.values())
    assert profile["label_balance"]["all"] == {"0": total - positives, "1": positives}
    assert profile["label_balance"]["train"]["1"] == splits["train"]["Revenue"].sum()

    page_values, month = profile["columns"]["PageValues"], profile["columns"]["Month"]
    assert page_values["kind"] == "number" and page_values["missing"] == 2
    assert {"mean", "std", "min", "max", "typical"} <= set(page_values)
    assert month["kind"] == "category" and month["missing"] == 1
    assert month["typical"] == "May" and next(iter(month["top"])) == "May"
    assert profile["columns"]["Administrative"]["kind"] == "number"
    assert splits["train"]["Administrative"].dtype == "float64"  # every host's parts share one Arrow schema


def test_split_is_reproducible_and_seeded(tmp_path):
    df = data.generate(400, seed=2)
    first = run_preprocess(tmp_path / "a", df, "--seed", "7")
    again = run_preprocess(tmp_path / "b", df, "--seed", "7")
    other = run_preprocess(tmp_path / "c", df, "--seed", "8")
    rows = lambda out: read_split(out, "train")  # noqa: E731
    assert rows(first).equals(rows(again)) and not rows(first).equals(rows(other))


def test_multiclass_and_regression_labels(tmp_path):
    df = data.generate(600, seed=3)
    out = run_preprocess(tmp_path / "m", df, "--label", "VisitorType", "--problem-type", "multiclass")
    profile = json.loads((out / "profile" / "profile.json").read_text())
    assert profile["classes"] == ["New_Visitor", "Other", "Returning_Visitor"]
    train = read_split(out, "train")
    assert train.columns[0] == "VisitorType" and set(train["VisitorType"]) <= {0, 1, 2}
    assert profile["label_balance"]["all"]["2"] == (df["VisitorType"] == "Returning_Visitor").sum()

    out = run_preprocess(tmp_path / "r", df, "--label", "PageValues", "--problem-type", "regression")
    profile = json.loads((out / "profile" / "profile.json").read_text())
    train = read_split(out, "train")
    assert train.columns[0] == "PageValues" and train["PageValues"].dtype == "float64"
    assert profile["classes"] is None and profile["label_balance"]["all"]["max"] == df["PageValues"].max()


def test_bad_numeric_value_names_column_value_and_file(tmp_path):
    df = data.generate(200, seed=4)
    df["ExitRates"] = df["ExitRates"].astype(object)
    df.loc[10, "ExitRates"] = "0,05"
    message = failure(tmp_path, df)
    assert "'ExitRates'" in message and "'0,05'" in message and "part.csv line 12" in message
    assert "\n" not in message and not (tmp_path / "prep" / "train").exists()


def test_missing_label_and_columns_are_named_with_the_file(tmp_path):
    df = data.generate(200, seed=5)
    message = failure(tmp_path / "a", df.drop(columns="Revenue"))
    assert "part.csv" in message and "'Revenue'" in message and "--label" in message

    data.write_csv(df.drop(columns=["Region", "Browser"]), tmp_path / "b" / "raw" / "z.csv")
    message = failure(tmp_path / "b", df)
    assert "z.csv" in message and "Browser, Region" in message


def test_infinite_values_and_single_class_are_rejected(tmp_path):
    df = data.generate(200, seed=6)
    message = failure(tmp_path / "a", df.assign(PageValues=df["PageValues"].replace(0.0, np.inf)))
    assert "'PageValues'" in message and "infinite" in message
    message = failure(tmp_path / "b", df.assign(Revenue=False))
    assert "single class" in message
    message = failure(tmp_path / "c", df, "--problem-type", "binary", "--label", "Month")
    assert "multiclass" in message


def test_empty_input_and_bad_fractions_fail_clearly(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(SystemExit):
        preprocess.main(["--input-dir", str(tmp_path / "raw"), "--output-dir", str(tmp_path / "out"),
                         "--label", "Revenue", "--failure-file", str(tmp_path / "message")])
    assert "no .csv" in (tmp_path / "message").read_text()
    message = failure(tmp_path / "f", data.generate(100), "--test-fraction", "0.9")
    assert "--test-fraction" in message


def test_parquet_without_pyarrow_is_refused_clearly(tmp_path, monkeypatch):
    def no_engine(path):
        raise ImportError("Missing optional dependency 'pyarrow'")

    monkeypatch.setattr(pd, "read_parquet", no_engine)
    (tmp_path / "part.parquet").write_bytes(b"PAR1")
    with pytest.raises(preprocess.DataError, match=r"part\.parquet.*pyarrow.*convert it to CSV"):
        preprocess.read_file(tmp_path / "part.parquet")


def test_unwritable_failure_file_is_ignored(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    preprocess.write_failure(blocker / "message", "reason")  # parent is a file: must not raise
    assert blocker.read_text() == ""


def test_class_order():
    assert preprocess.class_order(["TRUE", "FALSE"]) == ["FALSE", "TRUE"]
    assert preprocess.class_order(["10", "9", "1.5"]) == ["1.5", "9", "10"]
    assert preprocess.class_order(["yes", "no"]) == ["no", "yes"]
