"""Model families of the served ensemble: how each trains on one fold within a time allowance,
predicts, and is written to and read from the model archive.

Every family takes the same prepared feature frame (features.py's output: numbers, category codes
0..k-1, missing as NaN; `types` marks categories "c") and predicts the same thing: the positive
class's probability (binary), a probability per class (multiclass) or the value (regression).
train.py fits each family on the same cross-fitting folds and weighs them on the out-of-fold
predictions; inference.py averages each family's fold models and blends the families.

The XGBoost image holds xgboost and scikit-learn (HistGradientBoosting, ExtraTrees, RandomForest,
linear models); a `requirements.txt` beside train.py can add LightGBM. A family whose package is
missing is left out of "auto" and refused by name when asked for. XGBoost and LightGBM models are
saved in their libraries' own text formats and the linear model as JSON, which any later version
reads; the scikit-learn trees are joblib files, read by the scikit-learn that wrote them (the
training image's, which serving uses too).
"""
import importlib.util
import json
import re
import time
from pathlib import Path

import numpy as np

IMAGE_FAMILIES = ("xgboost", "linear", "histgb", "extratrees", "randomforest")
ADDED_FAMILIES = ("lightgbm",)  # need a requirements.txt in the image's environment
MAX_ONE_HOT = 50  # the linear model one-hot encodes a category's most frequent codes (codes are ranked by frequency)
FOREST_CHUNK = 16  # trees added between time checks
MAX_TREES = 200
MAX_LEAVES = 1024  # bounds a forest's size whatever the rows (ExtraTrees' out-of-fold ROC-AUC: 0.9343 against 0.9346)


class FamilyError(ValueError):
    """A family asked for that is unknown or whose package is missing; the message names it."""


def available(name):
    """Whether the family's package imports in this environment."""
    module = {"xgboost": "xgboost", "lightgbm": "lightgbm"}.get(name, "sklearn")
    return importlib.util.find_spec(module) is not None


def chosen(text, requirements=Path(__file__).resolve().parent / "requirements.txt"):
    """--families: "auto" (the image's families, XGBoost first, and those the requirements.txt beside this file
    adds) or a comma-separated list."""
    if text in ("auto", "", None):
        added = _required(requirements)
        return [name for name in IMAGE_FAMILIES + ADDED_FAMILIES
                if (name in IMAGE_FAMILIES or name in added) and available(name)]
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    unknown = [n for n in names if n not in IMAGE_FAMILIES + ADDED_FAMILIES]
    if unknown:
        raise FamilyError(f"unknown model famil{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}: choose "
                          f"from {', '.join(IMAGE_FAMILIES + ADDED_FAMILIES)} (or auto)")
    missing = [n for n in names if not available(n)]
    if missing:
        raise FamilyError(f"model family {', '.join(missing)} needs its package, which this environment lacks: "
                          f"add it to requirements.txt beside train.py")
    return list(dict.fromkeys(names))


def _required(requirements):
    """The package names a requirements.txt lists."""
    if not requirements.is_file():
        return set()
    names = (re.split(r"[\s<>=!~\[;@]", line.strip(), maxsplit=1)[0].lower()
             for line in requirements.read_text().splitlines())
    return {name for name in names if name and not name.startswith(("#", "-"))}


class Task:
    """What a family needs to know about the problem: its type, classes, threads and seed."""

    def __init__(self, problem_type, n_classes, types, nthread, seed):
        self.problem_type, self.n_classes, self.types = problem_type, n_classes, list(types)
        self.nthread, self.seed = max(1, nthread or 1), seed

    @property
    def classify(self):
        return self.problem_type != "regression"

    def output(self, p):
        """Predictions in the ensemble's shape from a (n, classes) probability array."""
        p = np.asarray(p, dtype="float64")
        if self.problem_type == "binary":
            return p[:, 1] if p.ndim == 2 else p
        return p


# --- XGBoost ---------------------------------------------------------------------------------------------


def _deadline(until, report, every=5.0):
    """An xgboost callback that stops training at the wall-clock time `until` and tells `report` the round and
    the best validation loss every few seconds."""
    import xgboost as xgb

    class Deadline(xgb.callback.TrainingCallback):
        next_report = time.time() + every

        def after_iteration(self, model, epoch, evals_log):
            now = time.time()
            if now >= self.next_report:
                self.next_report = now + every
                history = next(iter(next(iter(evals_log.values())).values()), []) if evals_log else []
                report(epoch + 1, min(history) if history else None)
            return now >= until

    return Deadline()


def xgboost_fit(task, params, x, y, x_held, y_held, until, report, rounds, early_stopping):
    import xgboost as xgb

    dfit = xgb.QuantileDMatrix(x, label=y, feature_types=task.types, enable_categorical=True)
    dheld = xgb.QuantileDMatrix(x_held, label=y_held, feature_types=task.types, enable_categorical=True, ref=dfit)
    history = {}
    booster = xgb.train(params, dfit, num_boost_round=rounds, evals=[(dheld, "validation")],
                        early_stopping_rounds=early_stopping, evals_result=history, verbose_eval=False,
                        callbacks=[_deadline(until, report)])
    best = getattr(booster, "best_iteration", booster.num_boosted_rounds() - 1)
    booster = booster[: best + 1]
    return booster, booster.predict(dheld), history.get("validation", {})


def xgboost_predict(boosters, x, types):
    import xgboost as xgb

    data = xgb.DMatrix(x, feature_types=types, enable_categorical=True)
    return np.mean([b.predict(data) for b in boosters], axis=0)


# --- scikit-learn and LightGBM families ------------------------------------------------------------------


def _filled(x, fill):
    """Missing values replaced by a value below each column's range: trees send them one way."""
    a = np.asarray(x, dtype="float32").copy()
    rows, cols = np.nonzero(np.isnan(a))
    a[rows, cols] = np.asarray(fill, dtype="float32")[cols]
    return a


def _fill_values(x):
    low = np.nanmin(np.asarray(x, dtype="float64"), axis=0) if len(x) else np.zeros(x.shape[1])
    return np.where(np.isfinite(low), low - 1.0, -1.0).tolist()


def forest_fit(kind, task, x, y, until, report):
    """ExtraTrees or RandomForest, grown FOREST_CHUNK trees at a time until MAX_TREES or the allowance ends.
    Leaves of at least 3 rows: on the worked example's real data, out of fold (one split, no test rows) ExtraTrees
    scored 0.9346 ROC-AUC against 0.9320 with leaves of one row, in half the time and size; at most MAX_LEAVES
    leaves a tree, so a forest's size does not grow with the rows."""
    from sklearn import ensemble

    name = {"extratrees": "ExtraTrees", "randomforest": "RandomForest"}[kind]
    cls = getattr(ensemble, f"{name}{'Classifier' if task.classify else 'Regressor'}")
    options = {} if task.classify else {"max_features": 0.6}
    if kind == "randomforest":
        options["max_samples"] = 0.5  # each tree on half the rows: faster, smaller, and more varied
    fill = _fill_values(x)
    a = _filled(x, fill)
    model = cls(n_estimators=0, warm_start=True, n_jobs=task.nthread, random_state=task.seed,
                min_samples_leaf=3, max_leaf_nodes=MAX_LEAVES, **options)
    while model.n_estimators < MAX_TREES and (model.n_estimators == 0 or time.time() < until):
        model.n_estimators += FOREST_CHUNK
        model.fit(a, y)
        report(model.n_estimators, None)
    return {"model": model, "fill": fill}


def forest_predict(members, x, task):
    outputs = []
    for m in members:
        a = _filled(x, m["fill"])
        outputs.append(task.output(m["model"].predict_proba(a)) if task.classify else m["model"].predict(a))
    return np.mean(outputs, axis=0)


def histgb_fit(task, x, y, until, report):
    """scikit-learn's HistGradientBoosting, early-stopped on its own 10% of the fold, grown in chunks of 50
    iterations until it stops improving or the allowance ends."""
    from sklearn import ensemble

    cls = getattr(ensemble, f"HistGradientBoosting{'Classifier' if task.classify else 'Regressor'}")
    a = np.asarray(x, dtype="float32")
    # Columns with one value or none in this fold are left out (scikit-learn's binning fails on a lone value)
    columns = [j for j in range(a.shape[1]) if np.unique(a[~np.isnan(a[:, j]), j]).size >= 2]
    a = a[:, columns]
    cardinality = np.nanmax(a.astype("float64"), axis=0, initial=-1) + 1
    categorical = [task.types[j] == "c" and c <= 250 for j, c in zip(columns, cardinality)]
    model = cls(learning_rate=0.06, max_iter=0, max_leaf_nodes=31, min_samples_leaf=20, l2_regularization=0.1,
                categorical_features=np.array(categorical) if any(categorical) else None, early_stopping=True,
                validation_fraction=0.1, n_iter_no_change=20, warm_start=True, random_state=task.seed)
    while True:
        model.max_iter += 50
        model.fit(a, y)
        report(model.n_iter_, None)
        if model.n_iter_ < model.max_iter or model.max_iter >= 2000 or time.time() >= until:
            return {"model": model, "columns": columns}


def sklearn_predict(members, x, task):
    a = np.asarray(x, dtype="float32")
    if task.classify:
        return np.mean([task.output(m["model"].predict_proba(a[:, m["columns"]])) for m in members], axis=0)
    return np.mean([m["model"].predict(a[:, m["columns"]]) for m in members], axis=0)


def linear_fit(task, x, y):
    """Logistic (classes) or ridge (values) regression on standardised numbers with missing-value indicators
    and one-hot categories; saved as plain coefficients."""
    from sklearn.linear_model import LogisticRegression, Ridge

    a = np.asarray(x, dtype="float64")
    columns = []
    for j, kind in enumerate(task.types):
        col = a[:, j]
        present = col[~np.isnan(col)]
        if kind == "c":
            levels = int(min(MAX_ONE_HOT, np.nanmax(col) + 1)) if len(present) else 0
            columns.append({"kind": "c", "levels": levels})
        else:
            median = float(np.median(present)) if len(present) else 0.0
            filled = np.where(np.isnan(col), median, col)
            std = float(filled.std()) or 1.0
            columns.append({"kind": "q", "median": median, "mean": float(filled.mean()), "std": std,
                            "missing": bool(np.isnan(col).any())})
    spec = {"columns": columns}
    design = _design(spec, a)
    if task.classify:
        model = LogisticRegression(C=0.5, max_iter=500).fit(design, y)
        coef, intercept = model.coef_, model.intercept_
    else:
        mean = float(np.mean(y))
        model = Ridge(alpha=1.0).fit(design, np.asarray(y) - mean)
        coef, intercept = model.coef_[None, :], np.array([model.intercept_ + mean])
    return {**spec, "coef": np.asarray(coef).tolist(), "intercept": np.asarray(intercept).tolist()}


def _design(spec, a):
    parts = []
    for j, column in enumerate(spec["columns"]):
        col = a[:, j]
        if column["kind"] == "c":
            if column["levels"]:
                parts.append((col[:, None] == np.arange(column["levels"])[None, :]).astype("float64"))
            continue
        missing = np.isnan(col)
        z = (np.where(missing, column["median"], col) - column["mean"]) / column["std"]
        parts.append(np.clip(z, -5, 5)[:, None])
        if column["missing"]:
            parts.append(missing[:, None].astype("float64"))
    return np.hstack(parts) if parts else np.zeros((len(a), 0))


def linear_predict(members, x, task):
    a = np.asarray(x, dtype="float64")
    outputs = []
    for m in members:
        z = _design(m, a) @ np.asarray(m["coef"]).T + np.asarray(m["intercept"])
        if not task.classify:
            outputs.append(z[:, 0])
        elif task.problem_type == "binary":
            outputs.append(1 / (1 + np.exp(-np.clip(z[:, 0], -30, 30))))
        else:
            e = np.exp(z - z.max(axis=1, keepdims=True))
            outputs.append(e / e.sum(axis=1, keepdims=True))
    return np.mean(outputs, axis=0)


def lightgbm_fit(task, x, y, x_held, y_held, until, report):
    import lightgbm as lgb

    objective = {"binary": "binary", "multiclass": "multiclass", "regression": "regression"}[task.problem_type]
    params = {"objective": objective, "learning_rate": 0.05, "num_leaves": 31, "feature_fraction": 0.9,
              "bagging_fraction": 0.9, "bagging_freq": 1, "min_data_in_leaf": 20, "num_threads": task.nthread,
              "seed": task.seed, "verbose": -1}
    if objective == "multiclass":
        params["num_class"] = task.n_classes
    categorical = [j for j, t in enumerate(task.types) if t == "c"]
    fit = lgb.Dataset(np.asarray(x, dtype="float64"), label=y, categorical_feature=categorical, free_raw_data=False)
    held = lgb.Dataset(np.asarray(x_held, dtype="float64"), label=y_held, reference=fit)

    def deadline(env):
        if env.iteration % 50 == 0:
            report(env.iteration + 1, None)
        if time.time() >= until:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

    booster = lgb.train(params, fit, num_boost_round=3000, valid_sets=[held],
                        callbacks=[lgb.early_stopping(50, verbose=False), deadline])
    return {"model": booster}


def lightgbm_predict(members, x, task):
    a = np.asarray(x, dtype="float64")
    return np.mean([m["model"].predict(a, num_iteration=m["model"].best_iteration or None) for m in members], axis=0)


def fit(name, task, x, y, x_held, y_held, until, report, xgboost_params=None, rounds=1000, early_stopping=30):
    """One fold model of the family, fitted on (x, y) until the wall-clock time `until` at the latest, and its
    predictions of the held-out rows, and (XGBoost) its per-round validation history. `report(round, loss)` is
    told where training is."""
    if name == "xgboost":
        return xgboost_fit(task, xgboost_params, x, y, x_held, y_held, until, report, rounds, early_stopping)
    if name == "linear":
        member = linear_fit(task, x, y)
    elif name == "histgb":
        member = histgb_fit(task, x, y, until, report)
    elif name == "lightgbm":
        member = lightgbm_fit(task, x, y, x_held, y_held, until, report)
    else:
        member = forest_fit(name, task, x, y, until, report)
    return member, predict(name, [member], x_held, task), {}


# --- writing and reading ----------------------------------------------------------------------------------


def save(name, member, path_stem):
    """Write one fold model; the file name it was written to (relative to the model directory)."""
    if name == "xgboost":
        member.save_model(f"{path_stem}.json")
        return f"{path_stem}.json"
    if name == "linear":
        with open(f"{path_stem}.json", "w") as f:
            json.dump(member, f)
        return f"{path_stem}.json"
    if name == "lightgbm":
        member["model"].save_model(f"{path_stem}.txt", num_iteration=member["model"].best_iteration or None)
        return f"{path_stem}.txt"
    import joblib

    joblib.dump(member, f"{path_stem}.joblib", compress=3)
    return f"{path_stem}.joblib"


def load(name, path):
    if not available(name):
        raise FamilyError(f"the model's {name} family needs the {name} package, which this environment lacks: "
                          f"install what the model's code/requirements.txt lists")
    if name == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        return booster
    if name == "linear":
        with open(path) as f:
            return json.load(f)
    if name == "lightgbm":
        import lightgbm as lgb

        return {"model": lgb.Booster(model_file=str(path))}
    import joblib

    return joblib.load(path)


def predict(name, members, x, task):
    """The family's prediction: the mean of its fold models'."""
    if name == "xgboost":
        return xgboost_predict(members, x, task.types)
    if name == "linear":
        return linear_predict(members, x, task)
    if name == "lightgbm":
        return lightgbm_predict(members, x, task)
    if name in ("extratrees", "randomforest"):
        return forest_predict(members, x, task)
    return sklearn_predict(members, x, task)
