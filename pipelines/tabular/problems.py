"""What follows from the tabular pipeline's problem type: XGBoost objective, tuning metric, gate.

One table, so binary, multiclass and regression share every code path and
differ only in these values. The gate's threshold is a number or
`baseline+N%` (processing_scripts/evaluate.py resolves it against what a
constant predictor scores, and writes it to evaluation.json's `gate` section).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    name: str
    tuning_metric: str  # printed by training_scripts/train.py as `name=value;`
    tuning_direction: str
    metrics_key: str  # section of evaluation.json (SageMaker's model-quality layout, `pipelines.quality`)
    gate_metric: str
    gate_direction: str  # Maximize: gate passes when metric >= threshold; Minimize: <=
    metrics: tuple[str, ...]  # the scalar metrics processing_scripts/evaluate.py writes for this type

    @property
    def gate_path(self) -> str:
        return f"{self.metrics_key}.{self.gate_metric}.value"

    @property
    def metric_paths(self) -> frozenset[str]:
        """Every `<section>.<metric>.value` path of evaluation.json, and the gate's: what a condition may read."""
        return frozenset(f"{self.metrics_key}.{m}.value" for m in self.metrics) | GATE_PATHS


# The gate section evaluate.py writes when given --gate-metric.
GATE_PATHS = frozenset({"gate.value", "gate.baseline", "gate.threshold"})
# The default quality gate: 10% of the way from a constant predictor's score to a perfect one.
DEFAULT_THRESHOLD = "baseline+10%"
THRESHOLD_PATTERN = r"\s*(baseline\s*\+\s*[0-9]+(\.[0-9]*)?\s*%|[-+]?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?)\s*"


PROBLEMS = {
    "binary": Problem("binary", "validation:auc", "Maximize", "binary_classification_metrics",
                      "roc_auc", "Maximize",
                      ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "brier_score",
                       "expected_calibration_error", "calibration_error_floor", "log_loss", "threshold")),
    "multiclass": Problem("multiclass", "validation:mlogloss", "Minimize", "multiclass_classification_metrics",
                          "accuracy", "Maximize", ("accuracy", "macro_f1", "weighted_f1", "log_loss")),
    "regression": Problem("regression", "validation:rmse", "Minimize", "regression_metrics",
                          "r2", "Maximize", ("rmse", "mae", "r2")),
}
