import io
import urllib.error
import zipfile

import pandas as pd
import pytest
import xgboost as xgb
from sklearn.metrics import roc_auc_score

from examples.purchase_intent import shoppers_data as data

import features
import preprocess

REAL_MONTHS = {"Feb", "Mar", "May", "June", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}


def test_generated_schema_matches_uci_and_the_model():
    df = data.generate(2000, seed=1)
    assert list(df.columns) == data.COLUMNS
    assert data.COLUMNS[-1] == data.LABEL
    for c in ("Administrative", "Informational", "ProductRelated", "OperatingSystems", "Browser", "Region",
              "TrafficType"):
        assert df[c].dtype == "int64", c
    for c in ("Administrative_Duration", "Informational_Duration", "ProductRelated_Duration", "BounceRates",
              "ExitRates", "PageValues", "SpecialDay"):
        assert df[c].dtype == "float64", c
    assert df["Weekend"].dtype == bool and df["Revenue"].dtype == bool
    assert set(df["Month"]) <= REAL_MONTHS
    assert set(df["VisitorType"]) <= {"Returning_Visitor", "New_Visitor", "Other"}


def test_generated_marginals_are_realistic():
    df = data.generate(5000, seed=0)
    assert 0.12 < df["Revenue"].mean() < 0.19
    assert df[["BounceRates", "ExitRates"]].min().min() >= 0
    assert df[["BounceRates", "ExitRates"]].max().max() <= 0.2
    assert 0.7 < (df["PageValues"] == 0).mean() < 0.9
    buy_rate = df.groupby(df["PageValues"] > 0)["Revenue"].mean()
    assert buy_rate[True] > 5 * buy_rate[False]
    duration = df["ProductRelated_Duration"]
    assert duration.mean() > 1.3 * duration.median()  # right-skewed
    months = df["Month"].value_counts(normalize=True)
    assert months["May"] > months["Nov"] > months["Mar"] > months["Feb"]


def test_generate_is_deterministic_per_seed():
    pd.testing.assert_frame_equal(data.generate(500, seed=7), data.generate(500, seed=7))
    assert not data.generate(500, seed=7).equals(data.generate(500, seed=8))
    assert len(data.generate(123)) == 123


def test_generated_signal_is_learnable_but_not_trivial():
    train, test = data.generate(4000, seed=1), data.generate(2000, seed=2)
    schema = {"label": {"name": data.LABEL}, "columns": preprocess.infer_schema(train, data.LABEL, {}, False)}
    spec = features.Features.fit(schema, train, "shoppers")

    def matrix(frame, label=None):
        return xgb.DMatrix(spec.transform(frame)[0], label=label, feature_types=spec.types, enable_categorical=True)

    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "eta": 0.1, "nthread": 1},
                        matrix(train, train["Revenue"]), 60)
    auc = roc_auc_score(test["Revenue"], booster.predict(matrix(test)))
    assert 0.82 < auc < 0.95


def test_write_csv_is_uci_format_and_round_trips(tmp_path):
    df = data.generate(200, seed=3)
    path = data.write_csv(df, tmp_path / "sub" / "shop.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(data.COLUMNS)
    assert lines[1].rsplit(",", 2)[1:] == [("TRUE" if v else "FALSE") for v in df.iloc[0][["Weekend", "Revenue"]]]
    pd.testing.assert_frame_equal(pd.read_csv(path), df)
    assert [p.name for p in path.parent.iterdir()] == ["shop.csv"]  # no temporary file left behind


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def test_download_uci_from_file_url_and_local_path(tmp_path):
    csv_text = data.write_csv(data.generate(50, seed=4), tmp_path / "src.csv").read_text()
    archive = _zip(tmp_path / "uci.zip", {"README.txt": "x", f"folder/{data.CSV_NAME}": csv_text})
    got = data.download_uci(tmp_path / "a", url=archive.as_uri())
    assert got == tmp_path / "a" / data.CSV_NAME and got.read_text() == csv_text
    assert data.download_uci(tmp_path / "b", url=str(archive)).read_text() == csv_text


def test_download_uci_goes_through_the_opener_for_http(tmp_path):
    csv_text = ",".join(data.COLUMNS) + "\n"
    payload = _zip(tmp_path / "uci.zip", {data.CSV_NAME: csv_text}).read_bytes()
    seen = []

    def opener(url):
        seen.append(url)
        return io.BytesIO(payload)

    data.download_uci(tmp_path / "out", opener=opener)
    assert seen == [data.UCI_URL]


def test_download_uci_errors_name_the_source_and_the_fix(tmp_path):
    no_csv = _zip(tmp_path / "empty.zip", {"other.csv": "a,b\n"})
    with pytest.raises(data.DownloadError, match=rf"{no_csv.name}.*{data.CSV_NAME}.*other\.csv"):
        data.download_uci(tmp_path / "out", url=str(no_csv))
    bad_header = _zip(tmp_path / "bad.zip", {data.CSV_NAME: "a,b\n1,2\n"})
    with pytest.raises(data.DownloadError, match=r"bad\.zip.*header \['a', 'b'\]"):
        data.download_uci(tmp_path / "out", url=bad_header.as_uri())
    not_zip = tmp_path / "page.html"
    not_zip.write_text("<html>")
    with pytest.raises(data.DownloadError, match="page.html has header .*not the UCI Online Shoppers columns"):
        data.download_uci(tmp_path / "out", url=str(not_zip))

    def offline(url):
        raise urllib.error.URLError("no route")

    with pytest.raises(data.DownloadError, match=r"could not fetch https://archive\.ics\.uci\.edu.* \(no route\): "
                                                  r"check the network, or .*shoppers_data.py --from FILE\|URL"):
        data.download_uci(tmp_path / "out", opener=offline)
    assert not (tmp_path / "out").exists()


def test_download_takes_a_copy_of_the_csv_itself(tmp_path):
    csv_path = tmp_path / "copy.csv"
    csv_path.write_text(",".join(data.COLUMNS) + "\n" + ",".join(["1"] * len(data.COLUMNS)) + "\n")
    assert data.download_uci(tmp_path / "out", url=str(csv_path)).read_text() == csv_path.read_text()


def test_download_without_a_network_is_one_line_naming_from(tmp_path, offline_env):
    import subprocess
    import sys

    from conftest import PROJECT_ROOT

    result = subprocess.run([sys.executable, "examples/purchase_intent/shoppers_data.py", "--dest", str(tmp_path)],
                            cwd=PROJECT_ROOT, env=offline_env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: could not fetch https://")
    assert "shoppers_data.py --from FILE|URL" in result.stderr

