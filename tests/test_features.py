"""Features from the schema (generic) and the shoppers feature set on top."""
import io

import numpy as np
import pandas as pd
import pytest

from examples.purchase_intent import shoppers_data as data

import features
from feature_sets import shoppers


def schema(label="y", **kinds):
    return {"label": {"name": label}, "columns": [{"name": n, "kind": k, "source": "inferred"} for n, k in kinds.items()]}


def fitted(frame, label="y", feature_set=None, **kinds):
    return features.Features.fit(schema(label, **kinds), frame, feature_set)


def test_numbers_keep_missing_values_and_bad_text_is_named():
    spec = fitted(pd.DataFrame({"a": ["1.5", None, "3"]}), a="number")
    out, unseen = spec.transform(pd.DataFrame({"a": ["1.5", None, "3"]}))
    assert spec.names == ["a"] and spec.types == ["q"] and unseen == {}
    np.testing.assert_array_equal(out["a"], [1.5, np.nan, 3])
    with pytest.raises(features.FeatureError, match="column 'a' must be numeric; got 'abc'"):
        spec.transform(pd.DataFrame({"a": ["abc"]}))


def test_categories_use_the_training_vocabulary_and_count_unseen_values():
    train = pd.DataFrame({"plan": ["basic", "plus", "basic", None, " premium "]})
    spec = fitted(train, plan="category")
    assert spec.vocabularies == {"plan": ["basic", "plus", "premium"]}  # by frequency, then alphabetically
    out, unseen = spec.transform(pd.DataFrame({"plan": ["plus", "gold", None, "basic", "gold"]}))
    np.testing.assert_array_equal(out["plan"], [1, np.nan, np.nan, 0, np.nan])
    assert unseen == {"plan": 2} and spec.types == ["c"]


def test_codes_are_categories_known_by_their_whole_number():
    spec = fitted(pd.DataFrame({"store": ["3", "5.0", "3"]}), store="code")
    assert spec.vocabularies == {"store": ["3", "5"]}
    out, _ = spec.transform(pd.DataFrame({"store": [5, 3.0, "3", 9]}))
    np.testing.assert_array_equal(out["store"], [1, 0, 0, np.nan])


def test_booleans_in_any_spelling():
    spec = fitted(pd.DataFrame({"f": ["yes"]}), f="boolean")
    values = [True, False, "TRUE", "no", " Y ", "0", "on", None]
    out, _ = spec.transform(pd.DataFrame({"f": values}))
    np.testing.assert_array_equal(out["f"], [1, 0, 1, 0, 1, 0, 1, np.nan])
    with pytest.raises(features.FeatureError, match="column 'f' must be true/false .*'maybe'"):
        spec.transform(pd.DataFrame({"f": ["maybe"]}))


def test_dates_become_their_parts():
    spec = fitted(pd.DataFrame({"d": ["2024-03-02"]}), d="datetime")
    assert spec.names == [f"d_{part}" for part in features.DATE_PARTS]
    out, _ = spec.transform(pd.DataFrame({"d": ["2024-03-02 14:30", "1970-01-03", None]}))
    assert out.iloc[0][["d_year", "d_month", "d_day", "d_weekday", "d_hour"]].tolist() == [2024, 3, 2, 5, 14]
    assert out.loc[1, "d_days"] == 2 and out.iloc[2].isna().all()
    with pytest.raises(features.FeatureError, match="column 'd' must be a date or time; got 'soon'"):
        spec.transform(pd.DataFrame({"d": ["soon"]}))


def test_dropped_columns_are_neither_required_nor_used_and_extra_columns_are_ignored():
    spec = fitted(pd.DataFrame({"a": ["1"], "id": ["x"]}), a="number", id="dropped")
    assert spec.required == ["a"] and spec.input_columns == ["a", "id"]
    out, _ = spec.transform(pd.DataFrame({"a": ["2"], "other": ["z"]}))
    assert list(out.columns) == ["a"]
    with pytest.raises(features.FeatureError, match="missing required column.*: a"):
        spec.transform(pd.DataFrame({"id": ["x"]}))


def test_the_spec_round_trips_through_json():
    import json

    spec = fitted(pd.DataFrame({"p": ["x", "y"], "n": ["1", "2"]}), p="category", n="number")
    again = features.Features.from_dict(json.loads(json.dumps(spec.to_dict())))
    frame = pd.DataFrame({"p": ["y", "z"], "n": ["3", None]})
    pd.testing.assert_frame_equal(again.transform(frame)[0], spec.transform(frame)[0])
    assert (again.names, again.types, again.vocabularies) == (spec.names, spec.types, spec.vocabularies)


# --- the shoppers feature set ------------------------------------------------------------------


SHOPPERS = {c: ("boolean" if c == "Weekend" else "category" if c in ("Month", "VisitorType") else "number")
            for c in data.COLUMNS[:-1]}


def raw(n=50, seed=0):
    return data.generate(n, seed=seed).drop(columns="Revenue")


def row(**overrides):
    base = raw(1).iloc[0].to_dict()
    base.update(overrides)
    return pd.DataFrame([base])


@pytest.fixture(scope="module")
def with_shoppers():
    return fitted(raw(400), "Revenue", "shoppers", **SHOPPERS)


def test_the_shoppers_set_adds_its_features_after_the_generic_ones(with_shoppers):
    assert with_shoppers.feature_set == {"name": "shoppers", "applied": True, "reason": None}
    assert with_shoppers.names == list(SHOPPERS) + list(shoppers.FEATURES)
    coded = [n for n, t in zip(with_shoppers.names, with_shoppers.types) if t == "c"]
    assert coded == ["Month", "OperatingSystems", "Browser", "Region", "TrafficType", "VisitorType"]


def test_page_totals_and_safe_duration_per_page(with_shoppers):
    out, _ = with_shoppers.transform(pd.concat([
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


def test_page_value_rate_and_month_features(with_shoppers):
    out, _ = with_shoppers.transform(pd.concat(
        [row(PageValues=0.0, ProductRelated=5, BounceRates=0.1, ExitRates=0.2, Month="Dec"),
         row(PageValues=20.0, ProductRelated=4, Month="June"), row(Month="Someday")], ignore_index=True))
    assert out["page_values_positive"].tolist()[:2] == [0, 1]
    assert out["page_values_log1p"].tolist()[:2] == pytest.approx([0, np.log1p(20)])
    assert out["page_values_per_product_page"].tolist()[:2] == [0, 5]
    assert out.loc[0, "bounce_x_exit"] == pytest.approx(0.02)
    assert out.loc[0, "month_num"] == 12 and out.loc[1, "month_num"] == 6 and np.isnan(out.loc[2, "month_num"])
    assert out.loc[0, "month_sin"] == pytest.approx(0, abs=1e-12) and out.loc[0, "month_cos"] == pytest.approx(1)


def test_text_input_gives_the_same_features_as_typed_input(with_shoppers):
    df = raw(30, seed=2)
    as_text = pd.read_csv(io.StringIO(df.to_csv(index=False)), dtype=str)
    pd.testing.assert_frame_equal(with_shoppers.transform(as_text)[0], with_shoppers.transform(df)[0])


def test_a_label_the_set_reads_is_blanked_never_leaked():
    kinds = {c: k for c, k in SHOPPERS.items() if c != "PageValues"}
    train = raw(200, seed=3)
    spec = fitted(train.drop(columns="PageValues"), "PageValues", "shoppers", **kinds)
    assert spec.feature_set["applied"] and "PageValues" not in spec.required
    out, _ = spec.transform(train)  # the label's own values, if present, change nothing
    assert out[["page_values_log1p", "page_values_positive", "page_values_per_product_page"]].isna().all().all()
    pd.testing.assert_frame_equal(out, spec.transform(train.drop(columns="PageValues"))[0])


def test_the_set_stays_out_of_a_table_without_its_columns():
    spec = fitted(pd.DataFrame({"x": ["1"]}), "y", "shoppers", x="number")
    assert spec.feature_set["applied"] is False and "lacks column(s) Administrative" in spec.feature_set["reason"]
    assert spec.names == ["x"]


def test_declared_kinds_win_over_the_sets_own():
    declared = schema("Revenue", **SHOPPERS)
    for column in declared["columns"]:
        if column["name"] == "Region":
            column["source"] = "declared"
    spec = features.Features.fit(declared, raw(100), "shoppers")
    assert spec.kinds["Region"] == "number" and spec.kinds["Browser"] == "code"
