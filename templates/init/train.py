"""Train a classifier in script mode: SageMaker runs `python train.py --label ... --C ...`.

Inputs are the channels' folders (SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION); the model goes to
SM_MODEL_DIR, which SageMaker packs into model.tar.gz. Metrics are printed; the pipeline's metric
regexes read them from the log. Inference code stays in this folder (inference.py), named by the
Register step, so nothing but the model is saved here.
"""
import argparse
import os
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

parser = argparse.ArgumentParser()
parser.add_argument("--label", required=True)
parser.add_argument("-C", type=float, default=1.0)  # one-letter hyperparameters arrive as -C, the others as --name
parser.add_argument("--max-iter", type=int, default=200)
# A tuning job adds this hyperparameter to every training job: accept it, or argparse fails each one.
parser.add_argument("--_tuning_objective_metric", default=None)
args = parser.parse_args()


def read(channel: str) -> pd.DataFrame:
    folder = Path(os.environ[f"SM_CHANNEL_{channel.upper()}"])
    return pd.concat([pd.read_csv(path) for path in sorted(folder.rglob("*.csv"))], ignore_index=True)


train, validation = read("train"), read("validation")
model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=args.max_iter))
model.fit(train.drop(columns=[args.label]), train[args.label])
features = validation.drop(columns=[args.label])
probability = model.predict_proba(features)[:, 1]
print(f"validation auc: {roc_auc_score(validation[args.label], probability):.6f}")
print(f"validation accuracy {accuracy_score(validation[args.label], model.predict(features)):.6f}")
joblib.dump(model, Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) / "model.joblib")
