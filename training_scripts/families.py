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
import os
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
    return np.mean([b.predict(data, validate_features=False) for b in boosters], axis=0)


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


def _plan(spec):
    """Where the linear model's design columns come from, as arrays: numbers (position, median, mean,
    deviation), which of them have a missing-value indicator, category levels (position, level), and the
    order of [numbers, indicators, levels] in the design."""
    columns = spec["columns"]
    numbers = [j for j, c in enumerate(columns) if c["kind"] == "q"]
    flagged = [i for i, j in enumerate(numbers) if columns[j]["missing"]]
    levels = [(j, level) for j, c in enumerate(columns) if c["kind"] == "c" for level in range(c["levels"])]
    place, order = {}, []
    for i, j in enumerate(numbers):
        place[j] = [i] + ([len(numbers) + flagged.index(i)] if i in flagged else [])
    start = len(numbers) + len(flagged)
    for k, (j, _) in enumerate(levels):
        place.setdefault(j, []).append(start + k)
    for j in range(len(columns)):
        order += place.get(j, [])
    stats = np.array([[columns[j][k] for k in ("median", "mean", "std")] for j in numbers]).reshape(-1, 3)
    return {"numbers": np.array(numbers, dtype=int), "stats": stats, "flagged": np.array(flagged, dtype=int),
            "level_columns": np.array([j for j, _ in levels], dtype=int),
            "levels": np.array([level for _, level in levels], dtype="float64"), "order": np.array(order, dtype=int)}


def _design(spec, a, plan=None):
    """Standardised numbers (clipped at 5 deviations) each followed by its missing-value indicator, and
    categories one-hot, in column order."""
    plan = plan or _plan(spec)
    x = a[:, plan["numbers"]]
    missing = np.isnan(x)
    median, mean, std = plan["stats"].T
    z = np.clip((np.where(missing, median, x) - mean) / std, -5, 5)
    one_hot = a[:, plan["level_columns"]] == plan["levels"]
    parts = np.hstack([z, missing[:, plan["flagged"]], one_hot]).astype("float64")
    return parts[:, plan["order"]]


def linear_predict(members, x, task, plans=None):
    """The mean of the fold models' predictions; `plans` (from _plan) spares re-reading their columns."""
    a = np.asarray(x, dtype="float64")
    outputs = []
    for m, plan in zip(members, plans or [None] * len(members)):
        z = _design(m, a, plan) @ np.asarray(m["coef"]).T + np.asarray(m["intercept"])
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


# --- serving ----------------------------------------------------------------------------------------------

PARALLEL_ROWS = 10_000  # below this many rows a prediction runs on one thread (threads cost more than they save)
TREE_FAMILIES = ("xgboost", "histgb", "extratrees", "randomforest")


class Served:
    """The ensemble's families as serving runs them, prepared once when the model loads: every tree of every
    tree family in one XGBoost booster (trees.py), so one call on the float32 feature array predicts them all,
    and the linear model's columns planned once. `predict(a)` is {family: predictions}, each equal to the
    family's `predict` (up to float32 sums of the trees). A tree family whose copy does not route and score
    probe rows as its own predict does is served by that predict instead, and the log says why."""

    def __init__(self, members, task):
        self.members, self.task = members, task
        self.plans = {name: [_plan(m) for m in models] for name, models in members.items() if name == "linear"}
        self.parts = {}
        for name in TREE_FAMILIES:
            if name in members:
                try:
                    self.parts[name] = _Part(name, members[name], task)
                except Exception as e:  # an xgboost or scikit-learn this code does not read: correct, only slower
                    print(f"{name}: served by its own predict ({type(e).__name__}: {e})", flush=True)
        self.booster, self.threads = None, None
        while self.parts:
            self._build()
            wrong = self._check()
            if not wrong:
                break
            for name, reason in wrong.items():
                print(f"{name}: served by its own predict ({reason})", flush=True)
                del self.parts[name]

    def _build(self):
        import trees

        pieces, start = [], 0
        for part in self.parts.values():
            part.first_output, part.first_tree = start, len(pieces)
            pieces += [(tree, start + output) for tree, output in part.pieces]
            start += part.outputs
        self.outputs = start
        self.booster = trees.booster(pieces, len(self.task.types), start)

    def _check(self):
        """{family: why} for the families whose copy disagrees with their own predict on probe rows."""
        import trees
        import xgboost as xgb

        probe = trees.probe_rows([p for part in self.parts.values() for p in part.pieces], self.task.types)
        margins = self._margins(probe)
        leaves = self.booster.predict(xgb.DMatrix(probe), pred_leaf=True).reshape(len(probe), -1).astype(int)
        wrong = {}
        for name, part in self.parts.items():
            reason = part.check(probe, margins, leaves[:, part.first_tree:part.first_tree + len(part.pieces)])
            if reason:
                wrong[name] = reason
        return wrong

    def _margins(self, a):
        wanted = 1 if len(a) < PARALLEL_ROWS else (os.cpu_count() or 1)
        if wanted != self.threads:
            self.booster.set_param({"nthread": wanted})
            self.threads = wanted
        return np.asarray(self.booster.inplace_predict(a, validate_features=False)).reshape(len(a), self.outputs)

    def predict(self, a):
        """{family: predictions} from the float32 feature array `a`."""
        out = {}
        if self.parts:
            margins = self._margins(a)
            out = {name: part.finish(margins) for name, part in self.parts.items()}
        for name, models in self.members.items():
            if name not in out:
                out[name] = linear_predict(models, a, self.task, self.plans[name]) if name == "linear" else \
                    predict(name, models, a, self.task)
        return out


class _Part:
    """One tree family in the served booster: its trees (each adding to one of its outputs), and how its
    outputs' margins become its predictions."""

    def __init__(self, name, members, task):
        import trees

        self.name, self.members, self.task = name, members, task
        if name == "xgboost":
            self.pieces, self.width = trees.xgboost_trees(members)
            self.intercepts = np.concatenate([_base_margin(b, len(task.types), self.width) for b in members])
        elif name == "histgb":
            self.pieces, self.intercepts = trees.histgb_trees(members, task)
            self.width = len(self.intercepts) // len(members)
        else:  # a forest: the leaves already hold each tree's share of the mean
            self.pieces, self.intercepts = trees.forest_trees(members, task), None
            self.width = 1 + max(output for _, output in self.pieces)
        self.outputs = self.width if self.intercepts is None else self.width * len(members)

    def finish(self, margins):
        """The family's predictions from the booster's margins (all outputs)."""
        own = margins[:, self.first_output:self.first_output + self.outputs].astype("float64")
        if self.intercepts is None:
            return own[:, 0] if self.task.problem_type != "multiclass" else own
        raw = (own + self.intercepts).reshape(len(own), len(self.members), self.width)
        if self.task.problem_type == "binary":
            out = 1 / (1 + np.exp(-raw[:, :, 0]))
        elif self.task.problem_type == "multiclass":
            e = np.exp(raw - raw.max(axis=2, keepdims=True))
            out = e / e.sum(axis=2, keepdims=True)
        else:
            out = raw[:, :, 0]
        return out.mean(axis=1)

    def check(self, probe, margins, leaves):
        """Why the copy disagrees with the family's own predict on the probe rows, or None. Forests: every row
        reaches the same leaf of every tree; every family: the same predictions, up to float32 sums."""
        if self.name in ("extratrees", "randomforest"):
            got = np.stack([tree.original[leaves[:, i]] for i, (tree, _) in enumerate(self.pieces)], axis=1)
            repeat = len(self.pieces) // sum(len(m["model"].estimators_) for m in self.members)
            expected = np.repeat(np.hstack([e.apply(_filled(probe, m["fill"])).reshape(len(probe), -1)
                                            for m in self.members for e in m["model"].estimators_]), repeat, axis=1)
            if not np.array_equal(got, expected):
                return f"its copy routes {int((got != expected).any(axis=1).sum())} of {len(probe)} probe rows elsewhere"
        expected = predict(self.name, self.members, probe, self.task)
        got = self.finish(margins)
        scale = max(1.0, float(np.max(np.abs(expected))))
        if not np.allclose(got, expected, rtol=1e-5, atol=1e-5 * scale):
            return f"its copy's predictions differ by up to {float(np.max(np.abs(got - expected))):.3g} on probe rows"
        return None


def _base_margin(booster, n_features, width):
    """A booster's intercept per output: its margin less the sum of its trees, as xgboost computes both."""
    import xgboost as xgb

    row = np.zeros((1, n_features), dtype=np.float32)
    with_base = booster.predict(xgb.DMatrix(row), output_margin=True, validate_features=False).reshape(-1)
    zero = xgb.DMatrix(row, base_margin=np.zeros(width, dtype=np.float32))  # a new matrix: xgboost caches by matrix
    without = booster.predict(zero, output_margin=True, validate_features=False).reshape(-1)
    return (with_base.astype("float64") - without).reshape(width)
