"""SageMaker's model-quality report (`evaluation.json`): a section per problem type, each metric an
object with a `value` (Model Monitor's and Clarify's layout, which RegisterModel's ModelMetrics name).

What the report, `runs`, `compare` and `models` read from any pipeline's evaluation, whatever wrote it.
"""
from __future__ import annotations

SECTIONS = {"binary_classification_metrics": "binary", "multiclass_classification_metrics": "multiclass",
            "regression_metrics": "regression"}  # section -> problem type


def is_report(document) -> bool:
    """Whether `document` is a model-quality report: a JSON object with one of the sections."""
    return isinstance(document, dict) and any(section in document for section in SECTIONS)


def section(evaluation: dict | None) -> dict:
    """The report's metrics section (the first of SECTIONS it has), or {}."""
    return next((evaluation[s] for s in SECTIONS if evaluation and isinstance(evaluation.get(s), dict)), {})


def scalar_metrics(evaluation: dict | None) -> dict[str, float]:
    """The section's scalar metrics, e.g. {"roc_auc": 0.93, ...}."""
    values = {name: value.get("value") if isinstance(value, dict) else value
              for name, value in section(evaluation).items()}
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
