"""The Online Shoppers feature set: what a browsing session's pages, times and calendar mean.

Used by the worked example (UCI Online Shoppers Purchasing Intention). Measured
with nested validation on the real file (benchmarks/model_selection.py), never
its test split: see docs/benchmarks.md for its gain over the generic features.
"""
import numpy as np

PAGE_TYPES = ("Administrative", "Informational", "ProductRelated")
REQUIRED = (*PAGE_TYPES, *(f"{t}_Duration" for t in PAGE_TYPES), "PageValues", "BounceRates", "ExitRates",
            "SpecialDay", "Month")
# Which operating system, browser, region or traffic source: sets of categories, not thresholds
# (nested validation: +0.0005 ROC-AUC over splitting the codes as numbers).
KINDS = {"OperatingSystems": "code", "Browser": "code", "Region": "code", "TrafficType": "code"}
MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
FEATURES = (
    "total_pages", "total_duration", "duration_per_page",
    *(f"{t}_duration_per_page" for t in PAGE_TYPES),
    "page_values_log1p", "page_values_positive", "page_values_per_product_page",
    "bounce_x_exit", "month_num", "month_sin", "month_cos", "special_day_positive",
)


ARRAYS = True  # add() takes and returns numpy arrays (feature_sets/__init__.py)


def _ratio(num, den):
    """num/den with 0 where den is 0 (no pages means no time per page), NaN kept."""
    return np.where(den == 0, 0.0, num / np.where(den == 0, np.nan, den))


def _positive(s):
    return np.where(np.isnan(s), np.nan, (s > 0).astype("float64"))


def add(columns):
    pages = {t: columns[t] for t in PAGE_TYPES}
    durations = {t: columns[f"{t}_Duration"] for t in PAGE_TYPES}
    pv = columns["PageValues"]
    # "June" and "Jun" both occur in the UCI file; unknown months become missing.
    month = np.array([np.nan if m is None else MONTHS.get(m[:3].lower(), np.nan) for m in columns["Month"]],
                     dtype="float64")
    f = {"total_pages": sum(pages.values()), "total_duration": sum(durations.values())}
    f["duration_per_page"] = _ratio(f["total_duration"], f["total_pages"])
    for t in PAGE_TYPES:
        f[f"{t}_duration_per_page"] = _ratio(durations[t], pages[t])
    f["page_values_log1p"] = np.log1p(np.maximum(pv, 0.0))
    f["page_values_positive"] = _positive(pv)
    f["page_values_per_product_page"] = _ratio(pv, pages["ProductRelated"])
    f["bounce_x_exit"] = columns["BounceRates"] * columns["ExitRates"]
    f["month_num"] = month
    f["month_sin"] = np.sin(2 * np.pi * month / 12)
    f["month_cos"] = np.cos(2 * np.pi * month / 12)
    f["special_day_positive"] = _positive(columns["SpecialDay"])
    return {name: np.asarray(f[name], dtype="float64") for name in FEATURES}
