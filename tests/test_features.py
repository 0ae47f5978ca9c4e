import io

import numpy as np
import pandas as pd
import pytest

from pipelines import data

import features


def raw(n=50, seed=0):
    return data.generate(n, seed=seed).drop(columns="Revenue")


def row(**overrides):
    """One raw session with chosen values."""
    base = raw(1).iloc[0].to_dict()
    base.update(overrides)
    return pd.DataFrame([base])


def test_output_is_float_features_in_fixed_order():
    out = features.engineer(raw())
    assert list(out.columns) == features.FEATURES
    assert len(set(features.FEATURES)) == len(features.FEATURES)
    assert (out.dtypes == "float64").all()
    # the columns never depend on which values occur in the rows
    new_only = features.engineer(row(VisitorType="New_Visitor", Weekend=True))
    assert list(new_only.columns) == features.FEATURES


def test_raw_numerics_and_codes_are_kept():
    df = raw()
    out = features.engineer(df)
    for c in ("Administrative", "ProductRelated_Duration", "PageValues", "ExitRates", "OperatingSystems",
              "TrafficType"):
        np.testing.assert_array_equal(out[c], df[c].astype(float))


def test_page_totals_and_safe_duration_per_page():
    out = features.engineer(pd.concat([
        row(Administrative=2, Administrative_Duration=30.0, Informational=0, Informational_Duration=0.0,
            ProductRelated=4, ProductRelated_Duration=100.0),
        row(Administrative=0, Administrative_Duration=0.0, Informational=0, Informational_Duration=0.0,
            ProductRelated=0, ProductRelated_Duration=0.0),
        row(ProductRelated=np.nan),
    ], ignore_index=True))
    assert out.loc[0, "total_pages"] == 6 and out.loc[0, "total_duration"] == 130
    assert out.loc[0, "duration_per_page"] == pytest.approx(130 / 6)
    assert out.loc[0, "Administrative_duration_per_page"] == 15
    assert out.loc[0, "Informational_duration_per_page"] == 0  # no pages, no time per page
    assert out.loc[1, ["duration_per_page", "ProductRelated_duration_per_page"]].tolist() == [0, 0]
    assert np.isnan(out.loc[2, "ProductRelated_duration_per_page"])  # missing stays missing for XGBoost


def test_page_value_and_rate_features():
    out = features.engineer(pd.concat([row(PageValues=0.0, ProductRelated=5, BounceRates=0.1, ExitRates=0.2),
                                       row(PageValues=20.0, ProductRelated=4)], ignore_index=True))
    assert out["page_values_positive"].tolist() == [0, 1]
    assert out["page_values_log1p"].tolist() == pytest.approx([0, np.log1p(20)])
    assert out["page_values_per_product_page"].tolist() == [0, 5]
    assert out.loc[0, "bounce_x_exit"] == pytest.approx(0.02)


def test_month_ordinal_and_cycle():
    out = features.engineer(pd.concat([row(Month=m) for m in ("Jun", "June", "Dec", "Feb", "Someday")],
                                      ignore_index=True))
    assert out["month_num"].tolist()[:4] == [6, 6, 12, 2]
    assert np.isnan(out.loc[4, "month_num"])  # unknown month is missing, not an error
    assert out.loc[2, "month_sin"] == pytest.approx(0, abs=1e-12) and out.loc[2, "month_cos"] == pytest.approx(1)
    np.testing.assert_allclose(out["month_sin"] ** 2 + out["month_cos"] ** 2, [1, 1, 1, 1, np.nan])


def test_booleans_as_strings_or_bools_and_flags():
    values = [True, False, "TRUE", "FALSE", "true", "0"]
    out = features.engineer(pd.concat([row(Weekend=v, SpecialDay=s) for v, s in zip(values, [0, .4, 0, 1, 0, 0])],
                                      ignore_index=True))
    assert out["weekend"].tolist() == [1, 0, 1, 0, 1, 0]
    assert out["special_day_positive"].tolist() == [0, 1, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="'Weekend'.*'maybe'"):
        features.engineer(row(Weekend="maybe"))


def test_visitor_type_one_hot_with_fixed_categories():
    out = features.engineer(pd.concat([row(VisitorType=v) for v in ("Returning_Visitor", "New_Visitor", "Other",
                                                                    "Robot")], ignore_index=True))
    onehot = out[[f"visitor_{v}" for v in features.VISITOR_TYPES]].to_numpy()
    np.testing.assert_array_equal(onehot, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    assert not any("Robot" in c for c in out.columns)


def test_text_input_gives_the_same_features_as_typed_input():
    df = raw(30, seed=2)
    as_text = pd.read_csv(io.StringIO(df.to_csv(index=False)), dtype=str)
    pd.testing.assert_frame_equal(features.engineer(as_text), features.engineer(df))


def test_missing_and_malformed_columns_are_named():
    df = raw(5)
    assert features.missing_columns(df) == []
    assert features.missing_columns(df.drop(columns=["Weekend", "Month"])) == ["Month", "Weekend"]
    with pytest.raises(ValueError, match="missing required column.*PageValues"):
        features.engineer(df.drop(columns="PageValues"))
    with pytest.raises(ValueError, match="'ExitRates'.*'abc'"):
        features.engineer(df.assign(ExitRates=["0.1", "abc", "0.2", "0.1", "0.1"]))


def test_extra_columns_are_ignored():
    df = raw(5)
    pd.testing.assert_frame_equal(features.engineer(df.assign(Revenue=True, note="x")), features.engineer(df))


def test_a_raw_column_used_as_the_label_is_neither_required_nor_leaked():
    df = raw(40, seed=3)
    without_label = df.drop(columns="VisitorType")
    assert features.missing_columns(without_label) == ["VisitorType"]
    assert features.missing_columns(without_label, "VisitorType") == []
    out = features.engineer(without_label, label="VisitorType")
    assert list(out.columns) == features.FEATURES
    assert (out[[f"visitor_{v}" for v in features.VISITOR_TYPES]] == 0).all().all()
    # the label's own values, if present, change nothing
    assert out.equals(features.engineer(df, label="VisitorType"))


def test_codes_are_categorical_with_invalid_codes_missing():
    assert len(features.FEATURE_TYPES) == len(features.FEATURES)
    assert [f for f, t in zip(features.FEATURES, features.FEATURE_TYPES) if t == "c"] == list(features.CODES)
    out = features.engineer(pd.concat([row(TrafficType=t, Browser=2) for t in (3, -1, 2.5, 1e9, 0)],
                                      ignore_index=True))
    np.testing.assert_array_equal(out["TrafficType"], [3, np.nan, np.nan, np.nan, 0])
    assert (out["Browser"] == 2).all() and (out.dtypes == "float64").all()
