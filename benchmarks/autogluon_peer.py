"""AutoGluon-Tabular as a peer, in a Python of its own: fit on one split's rows, predict its test rows.

benchmarks/quality.py runs this file with the interpreter of a virtualenv that holds AutoGluon (kept out
of the project's dependencies: it pins its own versions of much of the stack):

    python autogluon_peer.py FIT.parquet TEST.parquet LABEL PROBLEM_TYPE SECONDS OUT.json

It writes {"predicted": [...], "fit_seconds": s, "wall_seconds": s} to OUT.json: the positive class's
probability (binary), a probability per class code (multiclass) or the value (regression). The label is
the pipeline's code (0..k-1) or number; the other columns are the raw ones, as the pipeline reads them.
"""
import json
import sys
import tempfile
import time

import pandas as pd
from autogluon.tabular import TabularPredictor

PROBLEMS = {"binary": ("binary", "roc_auc"), "multiclass": ("multiclass", "accuracy"), "regression": ("regression", "r2")}


def main(fit_path, test_path, label, problem_type, seconds, out):
    started = time.time()
    fit, test = pd.read_parquet(fit_path), pd.read_parquet(test_path)
    kind, metric = PROBLEMS[problem_type]
    with tempfile.TemporaryDirectory() as models:
        predictor = TabularPredictor(label=label, problem_type=kind, eval_metric=metric, path=models, verbosity=0)
        predictor.fit(fit, presets="medium_quality", time_limit=float(seconds))
        fitted = time.time() - started
        x = test.drop(columns=[label])
        if kind == "regression":
            predicted = predictor.predict(x).to_numpy().tolist()
        else:
            proba = predictor.predict_proba(x)
            proba = proba.reindex(columns=sorted(proba.columns))
            predicted = (proba.iloc[:, 1] if kind == "binary" else proba).to_numpy().tolist()
    with open(out, "w") as f:
        json.dump({"predicted": predicted, "fit_seconds": fitted, "wall_seconds": time.time() - started}, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
