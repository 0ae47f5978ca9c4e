"""Score the test split and write evaluation.json in SageMaker's model-quality layout, with the
curves and matrix the run report draws (docs/writing-a-pipeline.md, "evaluation.json")."""
import argparse
import json
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score, precision_recall_curve, roc_auc_score,
                             roc_curve)

parser = argparse.ArgumentParser()
parser.add_argument("--label", required=True)
parser.add_argument("--model", type=Path, required=True)
parser.add_argument("--test", type=Path, required=True)
parser.add_argument("--output", type=Path, required=True)
args = parser.parse_args()

with tarfile.open(args.model / "model.tar.gz") as archive:
    archive.extractall(args.model, filter="data")
model = joblib.load(args.model / "model.joblib")
test = pd.concat([pd.read_csv(path) for path in sorted(args.test.rglob("*.csv"))], ignore_index=True)
actual = test[args.label]
features = test[list(model.feature_names_in_)]
probability, predicted = model.predict_proba(features)[:, 1], model.predict(features)
fpr, tpr, _ = roc_curve(actual, probability)
precision, recall, _ = precision_recall_curve(actual, probability)
matrix = confusion_matrix(actual, predicted, labels=[0, 1])
bins = np.minimum((probability * 10).astype(int), 9)
calibration = [{"bin": int(b), "mean_predicted": float(probability[bins == b].mean()),
                "fraction_positive": float(actual[bins == b].mean()), "count": int((bins == b).sum())}
               for b in sorted(set(bins))]
evaluation = {
    "binary_classification_metrics": {
        "roc_auc": {"value": float(roc_auc_score(actual, probability))},
        "accuracy": {"value": float(accuracy_score(actual, predicted))},
        "f1": {"value": float(f1_score(actual, predicted))},
        "confusion_matrix": {str(a): {str(p): int(matrix[a][p]) for p in (0, 1)} for a in (0, 1)},
    },
    "curves": {"roc": {"fpr": fpr.round(4).tolist(), "tpr": tpr.round(4).tolist()},
               "pr": {"precision": precision.round(4).tolist(), "recall": recall.round(4).tolist()},
               "calibration": calibration},
    # The size of each (standardised) feature's coefficient: what the report draws as importance.
    "feature_importance": [{"feature": name, "gain": abs(float(c))}
                           for name, c in zip(model.feature_names_in_, model[-1].coef_[0])],
}
args.output.mkdir(parents=True, exist_ok=True)
(args.output / "evaluation.json").write_text(json.dumps(evaluation, indent=2))
print(json.dumps({k: v["value"] for k, v in evaluation["binary_classification_metrics"].items() if "value" in v}))
