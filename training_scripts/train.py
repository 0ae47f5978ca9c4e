"""Train an XGBoost model on raw columns of any table (SageMaker XGBoost framework container, script mode).

Reads the train and validation channels (Parquet parts or CSV, label first)
and the schema channel (preprocess's schema.json), and builds the features the
schema implies with features.py, plus a named feature set if one is chosen. It
cross-fits: the rows of both channels are split into --folds stratified folds
(by default as many as the data size pays for, FOLDS_BY_ROWS), one booster per
fold is early-stopped on its own held-out fold, and the model is the average of
the fold boosters' predictions. Every row then has an out-of-fold (OOF)
prediction from a booster that never saw it: the binary calibrator and the F1
threshold are fitted on those, and the printed `validation:` metrics (the
tuner's objective) are OOF metrics over all rows, so they stay honest held-out
figures. --folds 1 trains one booster on the train channel, early-stopped and
calibrated on the validation channel. Writes a self-serving model directory:
the boosters (xgboost-model-<k>.json), calibrator.json, schema.json,
features.json (the fitted features), metadata.json and code/ (inference,
features and the feature sets).

Defaults were chosen on validation data of the UCI file only (nested splits of
train+validation of several split seeds; the test split never): cross-fitting
5 folds gains ~0.002 test ROC-AUC over one booster early-stopped on the
validation channel, mostly because the validation rows are trained on too and
the OOF objective picks hyperparameters more reliably than one small
validation split. Sigmoid calibration beats isotonic (isotonic's flat steps
make ties that cost ~0.002 ROC-AUC, for no better calibration error).

With several hosts (SM_HOSTS, TrainingInstanceCount > 1), each host reads its
shard of the channels (ShardedByS3Key) and the boosters are trained as one
across the hosts with XGBoost's collective (distributed.py); folds are cut on a
hash of each row's features per class, so a row's fold does not depend on the
host that holds it, and only the first host writes the model.
"""
import os

# Before anything loads OpenMP: idle threads sleep instead of spinning. When concurrent jobs share the
# cores (a local runner tuning in parallel gives each job SM_NUM_CPUS = all cores), spinning threads
# made training 3-5x slower; on a dedicated instance passive waiting costs nothing measurable.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The linear model's BLAS on one thread: its matrices are small, and OpenBLAS's spinning threads made a 1 s fit
# take 39 s on a loaded 2-core machine.
for _blas in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_blas, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.isotonic import IsotonicRegression  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import accuracy_score, log_loss, precision_recall_curve, roc_auc_score  # noqa: E402

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import distributed  # noqa: E402
import families  # noqa: E402
import features  # noqa: E402
import inference  # noqa: E402  (calibration is applied by the serving code, so train reuses it)

# problem type -> (objective, eval metric used for early stopping). Binary models stop on log loss, not
# AUC: a held-out fold's AUC plateaus noisily and stopped some folds after a few rounds (nested validation:
# +0.0006 test ROC-AUC with 8 tuning jobs, +0.0015 with 4).
OBJECTIVES = {
    "binary": ("binary:logistic", "logloss"),
    "multiclass": ("multi:softprob", "mlogloss"),
    "regression": ("reg:squarederror", "rmse"),
}
BOOSTER_PARAMS = ("eta", "max_depth", "min_child_weight", "subsample", "colsample_bytree", "gamma", "alpha", "lambda")
SERVING_CODE = ("inference.py", "families.py", "trees.py", "features.py", "feature_sets")
DATA_FILES = (".parquet", ".csv", ".csv.gz")
# Fit metrics and a numeric label's median read at most about this many rows: those with the smallest row
# keys, a sample that is the same whichever host holds a row, so no host gathers every row of the data.
SAMPLE_ROWS = 1_000_000
# --folds auto: (at most this many rows of train+validation, folds), else one booster on the channels.
# Measured by nested validation and wall time on synthetic tables (docs/benchmarks.md, "Cross-fitting by size").
FOLDS_BY_ROWS = ((50_000, 5), (400_000, 3))
# --families auto above this many rows of train+validation: XGBoost alone (the other families' gain shrinks with
# the data, and scikit-learn's forests and linear models do not scale out; "Scale" in docs/benchmarks.md).
ONE_FAMILY_ROWS = 400_000
# Of the time this job has, the share planned for training, less a fixed part: the rest covers the job's start,
# reading the channels, the last fit past its deadline, writing the model, and a machine busier than planned.
PLANNED_SHARE, FIXED_SECONDS = 0.75, 3.0
# How the time left is shared out as each family starts (relative weights over the families still to come).
TIME_WEIGHTS = {"xgboost": 4.0, "linear": 1.0, "histgb": 2.5, "extratrees": 2.0, "randomforest": 1.0, "lightgbm": 2.5}
PROGRESS_SECONDS = 5.0  # a progress line at least this often, so a run is never silent for long


class TrainingError(ValueError):
    """Unusable input or settings; the message tells the user what to fix."""


def decoded(cast):
    """argparse type accepting JSON-encoded values too: SageMaker may pass '"0.1"' as well as '0.1'."""
    def convert(text):
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        return cast(value)
    convert.__name__ = cast.__name__  # for argparse's "invalid <type> value" message
    return convert


def folds(value):
    """'auto' or a whole number of folds."""
    return "auto" if str(value) == "auto" else integer(value)


def integer(value):
    number = float(value)
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def pos_weight(value):
    """'auto' or a positive number."""
    return "auto" if str(value) == "auto" else float(value)


def parse_args(argv=None, env=os.environ):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Default: what the schema says; given, they must agree with it.
    p.add_argument("--problem_type", type=decoded(str), choices=tuple(OBJECTIVES))
    p.add_argument("--label", type=decoded(str))
    # Domain features on top of the generic ones (training_scripts/feature_sets/<name>.py), or none.
    p.add_argument("--feature_set", type=decoded(str), default="none")
    p.add_argument("--num_round", type=decoded(integer), default=1000)  # the tuner's slowest eta needs ~1000
    p.add_argument("--early_stopping_rounds", type=decoded(integer), default=30)
    p.add_argument("--eta", type=decoded(float), default=0.05)
    p.add_argument("--max_depth", type=decoded(integer), default=4)
    p.add_argument("--min_child_weight", type=decoded(float), default=5.0)
    p.add_argument("--subsample", type=decoded(float), default=0.8)
    p.add_argument("--colsample_bytree", type=decoded(float), default=0.8)
    p.add_argument("--gamma", type=decoded(float), default=0.0)
    p.add_argument("--alpha", type=decoded(float), default=0.0)
    p.add_argument("--lambda", type=decoded(float), default=1.0)
    # "auto" means 1.0 (no reweighting): neg/pos weighting measured no better in ROC-AUC and
    # skews raw probabilities, which the calibrator would then have to undo.
    p.add_argument("--scale_pos_weight", type=decoded(pos_weight), default="auto")
    p.add_argument("--calibration", type=decoded(str), default="sigmoid", choices=("isotonic", "sigmoid", "none"))
    # Cross-fitting folds over train+validation; 1 = one booster trained on train, stopped on validation.
    p.add_argument("--folds", type=decoded(folds), default="auto")
    # Model families of the ensemble (families.py): "auto" (those this environment holds) or a list, e.g. "xgboost"
    # for one family, faster.
    p.add_argument("--families", type=decoded(str), default="auto")
    # How families are weighed on out-of-fold predictions: greedy ensemble selection, or equal weights
    p.add_argument("--blend", type=decoded(str), default="greedy", choices=("greedy", "equal"))
    # Seconds this job may take (the pipeline's TimeBudget, also the job's StoppingCondition); 0: no limit. A tuning
    # trial plans for its share: the budget times tuning_parallel / tuning_jobs.
    p.add_argument("--time_budget", type=decoded(float), default=0.0)
    p.add_argument("--tuning_jobs", type=decoded(integer), default=1)
    p.add_argument("--tuning_parallel", type=decoded(integer), default=1)
    p.add_argument("--seed", type=decoded(integer), default=0)
    # Threads: SageMaker sets SM_NUM_CPUS to the whole instance; a local runner sharing the cores between
    # concurrent jobs sets it lower, since oversubscribed OpenMP threads make training 10-20x slower. 0 = all.
    p.add_argument("--nthread", type=decoded(integer), default=int(env.get("SM_NUM_CPUS", 0)))
    p.add_argument("--train", default=env.get("SM_CHANNEL_TRAIN", "/opt/ml/input/data/train"))
    p.add_argument("--validation", default=env.get("SM_CHANNEL_VALIDATION", "/opt/ml/input/data/validation"))
    p.add_argument("--schema", default=env.get("SM_CHANNEL_SCHEMA", "/opt/ml/input/data/schema"))
    p.add_argument("--model-dir", default=env.get("SM_MODEL_DIR", "/opt/ml/model"))
    p.add_argument("--output-data-dir", default=env.get("SM_OUTPUT_DATA_DIR", "/opt/ml/output/data"))
    p.add_argument("--failure-file", default="/opt/ml/output/failure")
    # A tuning job adds hyperparameters of its own (e.g. _tuning_objective_metric): ignore, do not fail.
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {' '.join(unknown)}")
    return args


def read_schema(path):
    """The schema.json preprocess wrote, from the schema channel."""
    files = sorted(Path(path).rglob("schema.json")) if Path(path).is_dir() else []
    if not files:
        raise TrainingError(f"no schema.json in the schema channel ({path}); feed preprocess's schema output "
                            f"to a channel named 'schema'")
    return json.loads(files[0].read_text())


def read_channel(path, label, channel, required=True):
    """(raw columns, label) from every Parquet part or CSV file under a channel directory. A host of a
    sharded channel may get no object (`required` False): then no rows."""
    files = sorted(p for p in Path(path).rglob("*") if p.is_file() and p.name.endswith(DATA_FILES))
    if not files:
        if required:
            raise TrainingError(f"no Parquet or CSV files in the {channel} channel ({path}); check its S3 input")
        return pd.DataFrame(), pd.Series(dtype="float64", name=label)
    df = pd.concat([read_table(f) for f in files], ignore_index=True)
    if label not in df.columns:
        raise TrainingError(f"the {channel} channel has no label column {label!r} (columns: "
                            f"{', '.join(df.columns)}); pass --label")
    return df.drop(columns=label), df[label]


def read_table(path):
    """A Parquet part as written (typed), or a CSV as text: features.py parses both by the schema."""
    return pd.read_parquet(path) if path.name.endswith(".parquet") else pd.read_csv(path, dtype=str)


def check_labels(y_train, y_val, problem_type, cluster):
    """Numeric labels as preprocess writes them; returns the classes over every host (None for regression)."""
    ys = [pd.to_numeric(y, errors="coerce") for y in (y_train, y_val)]
    if any(y.isna().any() for y in ys):
        raise TrainingError("labels must be numbers (preprocess.py encodes classes as 0..k-1)")
    if problem_type == "regression":
        return None
    seen = cluster.allgather([sorted(map(float, set(y))) for y in ys])
    train_classes, val_classes = ({c for host in seen for c in host[i]} for i in (0, 1))
    classes = sorted(train_classes | val_classes)
    expected = [0, 1] if problem_type == "binary" else list(range(len(classes)))
    if classes != expected or train_classes != set(classes):
        raise TrainingError(f"{problem_type} labels must be the codes {expected} and all occur in train; got "
                            f"train {sorted(train_classes)}, validation {sorted(val_classes)}")
    return [int(c) for c in classes]


def booster_params(args, classes):
    objective, metric = OBJECTIVES[args.problem_type]
    params = {"objective": objective, "eval_metric": metric, "tree_method": "hist", "seed": args.seed,
              "nthread": args.nthread}
    params.update({name: vars(args)[name] for name in BOOSTER_PARAMS})
    if args.problem_type == "binary":
        params["scale_pos_weight"] = 1.0 if args.scale_pos_weight == "auto" else args.scale_pos_weight
    if args.problem_type == "multiclass":
        params["num_class"] = len(classes)
    return params


def fit_calibrator(method, p, y):
    """A JSON-able calibrator mapping raw validation probabilities to calibrated ones."""
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        return {"method": method, "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if method == "sigmoid":
        lr = LogisticRegression(C=np.inf).fit(inference.logit(p)[:, None], y)
        return {"method": method, "slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])}
    return {"method": "none"}


def best_f1_threshold(y, q):
    """Probability threshold maximising F1 on validation, stored for evaluation and serving."""
    precision, recall, thresholds = precision_recall_curve(y, q)
    f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
    return float(thresholds[int(np.argmax(f1))])


def metrics(problem_type, y, p):
    """Final metrics per problem type, named as printed for the tuner's regexes."""
    if problem_type == "binary":
        return {"auc": roc_auc_score(y, p)}
    if problem_type == "multiclass":
        p = np.asarray(p, dtype="float64")
        p = p / p.sum(axis=1, keepdims=True)  # float32 rows may miss 1 by more than log_loss tolerates
        return {"mlogloss": log_loss(y, p, labels=list(range(p.shape[1]))),
                "accuracy": accuracy_score(y, p.argmax(axis=1))}
    return {"rmse": float(np.sqrt(np.mean((np.asarray(y) - p) ** 2)))}


def fold_count(folds, rows):
    """--folds as a number: 'auto' picks by the rows of train+validation over every host (FOLDS_BY_ROWS)."""
    if folds != "auto":
        return folds
    return next((k for most, k in FOLDS_BY_ROWS if rows <= most), 1)


def row_keys(x, seed):
    """A well-spread uint64 per row from its feature values (and the seed): the same row gets the same key
    on any host, so folds cut on keys do not depend on how rows are sharded."""
    keys = np.zeros(len(x), dtype="uint64")
    with np.errstate(over="ignore"):
        for name in x.columns:
            keys = keys * np.uint64(1_000_003) + pd.util.hash_array(x[name].to_numpy(dtype="float64"))
    return pd.util.hash_array(keys, hash_key=f"{seed:016d}"[-16:])


def fold_splits(keys, y, n_train, problem_type, folds, cluster=distributed.Cluster(["algo-1"], "algo-1")):
    """[(fit rows, held-out rows)] as positions in this host's train+validation (the train channel's rows first).

    folds 1: the channels as given. Otherwise K folds over all rows, stratified for classes: within each
    class the keys of every host are cut at K evenly spaced ranks, and a row's fold is where its key falls.
    K is lowered to the smallest class's count so that every held-out fold can hold every class.
    """
    if folds < 1:
        raise TrainingError(f"--folds must be at least 1, got {folds}")
    strata = np.zeros(len(y), dtype="int64") if problem_type == "regression" else np.asarray(y, dtype="int64")
    if problem_type != "regression":
        counts = cluster.allgather(np.bincount(strata).tolist())
        folds = min(folds, min(sum(host[c] for host in counts if c < len(host)) for c in range(max(map(len, counts)))))
    n = len(y)
    if folds < 2:
        return [(np.arange(n_train), np.arange(n_train, n))]
    everyone = cluster.allgather((keys, strata))
    keys_all, strata_all = (np.concatenate([host[i] for host in everyone]) for i in (0, 1))
    fold = np.zeros(n, dtype="int64")
    for stratum in np.unique(strata_all):
        ranked = np.sort(keys_all[strata_all == stratum])
        cuts = ranked[(np.arange(1, folds) * len(ranked)) // folds]
        mine = strata == stratum
        fold[mine] = np.searchsorted(cuts, keys[mine], side="right")
    return [(np.flatnonzero(fold != k), np.flatnonzero(fold == k)) for k in range(folds)]


def mean_metrics(per_fold):
    return {name: float(np.mean([m[name] for m in per_fold])) for name in per_fold[0]}


def label_stats(y, problem_type, classes, cluster, sample):
    """What a constant predictor would know: class shares, or the mean (evaluate.py's baselines), over every
    host's rows; a numeric label's median over the sample rows."""
    if problem_type == "regression":
        total, n = cluster.allsum([y.sum(), len(y)])
        return {"mean": float(total / n), "median": float(np.median(np.concatenate(cluster.allgather(y[sample]))))}
    counts = cluster.allsum(np.bincount(y.astype("int64"), minlength=len(classes))).astype("int64")
    return {"counts": counts.tolist(), "prior": (counts / counts.sum()).tolist()}


def train(args, env=os.environ):
    """Train on this host's shard, as one model with the job's other hosts; the first host writes it."""
    started = time.time()
    cluster = distributed.Cluster.from_env(env)
    schema = read_schema(args.schema)
    if args.label not in (None, schema["label"]["name"]):
        raise TrainingError(f"--label {args.label!r} is not the label of the schema ({schema['label']['name']!r})")
    if args.problem_type not in (None, schema["label"]["problem_type"]):
        raise TrainingError(f"--problem_type {args.problem_type} disagrees with the schema, whose label was "
                            f"prepared for {schema['label']['problem_type']}")
    args.label, args.problem_type = schema["label"]["name"], schema["label"]["problem_type"]
    x_train, y_train = read_channel(args.train, args.label, "train", required=cluster.size == 1)
    x_val, y_val = read_channel(args.validation, args.label, "validation", required=cluster.size == 1)
    if x_train.empty:
        raise TrainingError(f"host {cluster.current} got no rows of the train channel ({args.train}): it has fewer "
                            f"objects than the job's {cluster.size} instances; lower TrainingInstanceCount or write "
                            f"more parts (preprocess --parts-per-host)")
    rows, channels = len(x_train) + len(x_val), [x_train, y_train, x_val, y_val]
    del x_train, y_train, x_val, y_val  # _train drops the raw rows once their features are built
    with cluster.collective():
        metadata = _train(args, cluster, schema, channels, started)
    seconds = time.time() - started  # what sizing an instance needs: this host's rate and memory
    print(f"{cluster.current}: {rows} rows in {seconds:.1f} s ({rows / seconds:.0f} rows/s), "
          f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB")
    return metadata


def _train(args, cluster, schema, channels, started):
    x_train, y_train, x_val, y_val = channels
    channels.clear()
    codes = check_labels(y_train, y_val, args.problem_type, cluster)
    y = pd.concat([y_train, y_val], ignore_index=True).astype("float64").to_numpy()
    raw = pd.concat([x_train, x_val.reindex(columns=x_train.columns)], ignore_index=True)
    del x_train, x_val
    spec = features.Features.fit(schema, raw, args.feature_set, combine=cluster.allgather)
    missing = spec.missing(raw)
    if missing:
        raise TrainingError(f"the train and validation channels lack column(s) {', '.join(missing)} of the schema")
    if not spec.feature_set["applied"] and spec.feature_set["name"]:
        print(f"feature set {args.feature_set!r} not applied: {spec.feature_set['reason']}")
    x = spec.transform(raw)[0].astype("float32")  # what XGBoost bins anyway: half the memory of float64
    del raw
    rows = {name: int(n) for name, n in zip(("train", "validation"),
                                            cluster.allsum([len(y_train), len(y_val)]))}
    folds = fold_count(args.folds, rows["train"] + rows["validation"])
    keys = row_keys(x, args.seed)
    splits = fold_splits(keys, y, len(y_train), args.problem_type, folds, cluster)
    share = min(1.0, SAMPLE_ROWS / (rows["train"] + rows["validation"]))
    sample = keys <= np.uint64(min(2**64 - 1, int(share * 2**64)))

    params = booster_params(args, codes)
    task = families.Task(args.problem_type, len(codes or []), spec.types, args.nthread, args.seed)
    names = family_names(args.families, rows["train"] + rows["validation"], cluster)
    deadline = plan_deadline(args, started)
    held_out = np.concatenate([h for _, h in splits])
    progress = Progress(deadline, cluster.is_master)
    members, oof, scores, seconds, history, fit_metrics = {}, {}, {}, {}, {}, []
    blend = {}
    with progress:
        for i, name in enumerate(names):
            begun = time.time()
            until = family_until(names[i:], begun, deadline)
            if until is not None and until - begun < 1.0 and members:
                print(f"{name}: skipped, no time left in the budget")
                continue
            try:
                fitted = _fit_family(name, task, params, args, x, y, splits, until, progress, history, fit_metrics,
                                     cluster, sample)
            except Exception as e:  # another family's failure leaves it out; XGBoost's is the job's
                if name == "xgboost":
                    raise
                print(f"{name}: left out, it failed: {type(e).__name__}: {e}")
                continue
            if fitted is None:
                continue
            members[name], oof[name] = fitted
            seconds[name] = round(time.time() - begun, 3)
            y_held, p_family = gathered(cluster, y[held_out], oof[name][held_out])
            scores[name] = metrics(args.problem_type, y_held, p_family)
            blend = (dict.fromkeys(members, 1 / len(members)) if args.blend == "equal" else
                     blend_weights({n: gathered(cluster, y[held_out], oof[n][held_out])[1] for n in members},
                                   y_held, args.problem_type))
            so_far = metrics(args.problem_type, *gathered(cluster, y[held_out], blended(oof, blend)[held_out]))
            progress.best = so_far
            if cluster.is_master:
                print(f"{name}: {seconds[name]:.1f} s, out-of-fold " + _line(scores[name])
                      + f"; ensemble so far {_line(so_far)}")
                # An intermediate objective, as a tuner's early stopping reads it after each "epoch"
                for metric, value in so_far.items():
                    print(f"validation:{metric}={value:.6f};")
    p_oof = blended(oof, blend)
    # Out-of-fold predictions: each row scored by models that never saw it. Metrics before calibration, since
    # calibration is monotone and an isotonic fit on these would flatter its own AUC.
    y_held, p_held = gathered(cluster, y[held_out], p_oof[held_out])
    y_val_rows, p_val_rows = gathered(cluster, *(a[held_out[held_out >= len(y_train)]] for a in (y, p_oof)))
    results = {"train": mean_metrics(fit_metrics) if fit_metrics else {},  # XGBoost's fit rows
               "validation": metrics(args.problem_type, y_held, p_held),
               "validation_channel": metrics(args.problem_type, y_val_rows, p_val_rows)}
    calibrator = fit_calibrator(args.calibration if args.problem_type == "binary" else "none", p_held, y_held)
    threshold = (best_f1_threshold(y_held, inference.calibrate(calibrator, p_held))
                 if args.problem_type == "binary" else None)
    stats = label_stats(y, args.problem_type, codes, cluster, sample)
    if not cluster.is_master:  # the first host writes the model, as the container's rabit_run does
        return None

    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    ensemble = []
    for name, fold_models in members.items():
        stem = "xgboost-model" if name == "xgboost" else name
        # A family the blend gave no weight is reported, not shipped
        files = [families.save(name, m, str(model_dir / f"{stem}-{k}"))
                 for k, m in enumerate(fold_models)] if blend.get(name) else []
        ensemble.append({"family": name, "files": [Path(f).name for f in files], "weight": blend.get(name, 0.0),
                         "validation": scores[name], "seconds": seconds[name]})
    (model_dir / "calibrator.json").write_text(json.dumps(calibrator))
    (model_dir / "schema.json").write_text(json.dumps(schema, indent=2))
    (model_dir / "features.json").write_text(json.dumps(spec.to_dict(), indent=2))
    rounds = [b.num_boosted_rounds() for b in members.get("xgboost", [])]
    metadata = {
        "problem_type": args.problem_type,
        "label": args.label,
        "classes": schema["label"]["classes"],  # names, in code order (binary: the positive class last)
        "label_stats": stats,
        "raw_columns": spec.required,
        "feature_names": spec.names,
        "feature_types": spec.types,
        "feature_set": spec.feature_set,
        "ensemble": ensemble,  # served by inference.py: each family's fold models averaged, families weighted
        "model_files": next((e["files"] for e in ensemble if e["family"] == "xgboost"), []),
        "folds": len(splits),
        "best_iteration": int(np.median(rounds)) - 1 if rounds else None,  # median over the XGBoost boosters
        "rounds": rounds,
        "threshold": threshold,
        "calibration": calibrator["method"],
        "hyperparameters": {k: v for k, v in vars(args).items() if k not in ("train", "validation", "schema", "model_dir",
                                                                              "output_data_dir", "failure_file")},
        "xgboost_params": params,
        "xgboost_version": xgb.__version__,
        "hosts": cluster.size,
        "rows": {**rows, "out_of_fold": len(y_held)},
        "metrics": results,
        "time_budget": {"planned_seconds": None if deadline is None else round(deadline - started, 1)},
        "training_seconds": round(time.time() - started, 3),
    }
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2))
    copy_serving_code(model_dir / "code")

    out = Path(args.output_data_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"metrics": results, "history": history, "ensemble": ensemble}))
    print("ensemble: " + ", ".join(f"{e['family']} {e['weight']:.2f}" for e in ensemble if e["weight"]))
    for split in ("train", "validation"):
        for name, value in results[split].items():
            print(f"{split}:{name}={value:.6f};")
    return metadata


def _line(values):
    return ", ".join(f"{name}={value:.4f}" for name, value in values.items())


def family_names(text, rows, cluster):
    """The families to train: --families, where "auto" is XGBoost alone on several hosts (only it trains across
    them) or above ONE_FAMILY_ROWS rows."""
    try:
        names = families.chosen(text)
    except families.FamilyError as e:
        raise TrainingError(str(e)) from None
    if text in ("auto", "", None) and (cluster.size > 1 or rows > ONE_FAMILY_ROWS):
        return ["xgboost"]
    if cluster.size > 1 and names != ["xgboost"]:
        raise TrainingError(f"--families {text}: only xgboost trains one model across {cluster.size} instances; "
                            f"use --families xgboost or TrainingInstanceCount 1")
    return names


def plan_deadline(args, started):
    """The wall-clock time by which training should be done, or None without a budget: this job's share of
    --time_budget (a tuning trial's: the budget times tuning_parallel / tuning_jobs), PLANNED_SHARE of it."""
    if not args.time_budget or args.time_budget <= 0:
        return None
    share = args.time_budget * min(1.0, max(1, args.tuning_parallel) / max(1, args.tuning_jobs))
    return started + max(PLANNED_SHARE * share - FIXED_SECONDS, 0.25 * share)


def family_until(remaining, now, deadline):
    """When the first of the `remaining` families must stop: its TIME_WEIGHTS share of the time left."""
    if deadline is None:
        return None
    weights = [TIME_WEIGHTS.get(n, 1.0) for n in remaining]
    return now + max(0.0, deadline - now) * weights[0] / sum(weights)


def _fit_family(name, task, params, args, x, y, splits, until, progress, history, fit_metrics, cluster, sample):
    """([fold model], out-of-fold predictions) of one family on the same folds, or None when it did not fit in
    its time (a family that cannot finish every fold is left out whole)."""
    fold_models, oof = [], None
    for k, (fit_rows, held_rows) in enumerate(splits):
        now = time.time()
        fold_until = None if until is None else now + max(0.0, until - now) / (len(splits) - k)
        if fold_until is not None and k and fold_until - now < 0.2 and name != "xgboost":
            print(f"{name}: left out, its time ran out after {k} of {len(splits)} folds")
            return None
        progress.at(name, k, len(splits))
        report = progress.report
        member, p_held, fold_history = families.fit(
            name, task, _take(x, fit_rows), y[fit_rows], _take(x, held_rows), y[held_rows],
            float("inf") if fold_until is None else fold_until, report, xgboost_params=params,
            rounds=args.num_round, early_stopping=args.early_stopping_rounds)
        if oof is None:
            oof = np.zeros((len(y),) + np.shape(p_held)[1:])
        oof[held_rows] = p_held
        fold_models.append(member)
        if name == "xgboost":
            history[f"fold_{k}"] = fold_history
            fit_sample = fit_rows[sample[fit_rows]]
            fit_metrics.append(metrics(args.problem_type, *gathered(
                cluster, y[fit_sample], member.predict(inference.dmatrix(_take(x, fit_sample), task.types)))))
            fold_metrics = metrics(args.problem_type, *gathered(cluster, y[held_rows], p_held))
            if cluster.is_master:
                print(f"fold {k}: {member.num_boosted_rounds()} rounds, held-out " + _line(fold_metrics))
    return fold_models, oof


def blend_weights(predictions, y, problem_type, steps=40):
    """Weights of the families' out-of-fold predictions: greedy ensemble selection with replacement (Caruana et
    al., 2004), each step adding the family that most lowers the blend's loss (log loss, or squared error)."""
    names = list(predictions)
    if len(names) == 1:
        return {names[0]: 1.0}
    counts = dict.fromkeys(names, 0)
    total = None
    for step in range(steps):
        best = min(names, key=lambda n: (blend_loss(predictions[n] if total is None else (total + predictions[n])
                                                    / (step + 1), y, problem_type), names.index(n)))
        counts[best] += 1
        total = predictions[best].copy() if total is None else total + predictions[best]
    return {n: c / steps for n, c in counts.items() if c}


def blend_loss(p, y, problem_type):
    if problem_type == "regression":
        return float(np.mean((np.asarray(y) - p) ** 2))
    if problem_type == "binary":
        p = np.clip(p, 1e-7, 1 - 1e-7)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    p = np.clip(p, 1e-7, 1)
    return float(-np.mean(np.log(p[np.arange(len(y)), np.asarray(y, dtype="int64")])))


def blended(predictions, weights):
    """The weighted sum of the families' predictions (every row)."""
    return sum(w * predictions[n] for n, w in weights.items())


class Progress:
    """A line at least every PROGRESS_SECONDS while training: the family, fold and round, the best validation
    figure so far and the time left, so a long job is never silent. A thread prints it, since some fits
    (scikit-learn's) report nothing while they run."""

    def __init__(self, deadline, enabled):
        self.deadline, self.enabled = deadline, enabled
        self.family, self.fold, self.folds, self.round, self.metric = None, 0, 0, None, None
        self.best = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()

    def at(self, family, fold, folds):
        self.family, self.fold, self.folds, self.round, self.metric = family, fold, folds, None, None

    def report(self, round_, metric=None):
        self.round, self.metric = round_, metric

    def line(self):
        parts = [f"progress: {self.family} fold {self.fold + 1}/{self.folds}"]
        if self.round is not None:
            parts.append(f"round {self.round}")
        if self.metric is not None:
            parts.append(f"fold loss {self.metric:.4f}")
        if self.best:
            parts.append("best so far " + _line(self.best))
        if self.deadline is not None:
            parts.append(f"{max(0.0, self.deadline - time.time()):.0f} s left")
        return ", ".join(parts)

    def _run(self):
        while not self._stop.wait(PROGRESS_SECONDS):
            if self.family is not None:
                print(self.line(), flush=True)


def _take(x, rows):
    """x's rows: a view where they are one run (the channels as given), else a copy."""
    if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
        return x.iloc[rows[0]:rows[-1] + 1]
    return x.iloc[rows]


def gathered(cluster, y, p):
    """(labels, predictions) of every host's rows, in host order."""
    if cluster.size == 1:
        return y, p
    parts = cluster.allgather((y, p))
    return np.concatenate([a for a, _ in parts]), np.concatenate([b for _, b in parts])


def copy_serving_code(dest):
    """inference.py, features.py and the feature sets: what the archive serves with (no caches)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    dest.mkdir(parents=True, exist_ok=True)
    # What a requirements.txt added for training (a family's package), serving installs from code/ too
    for name in SERVING_CODE + (("requirements.txt",) if (HERE / "requirements.txt").is_file() else ()):
        if (HERE / name).is_dir():
            shutil.copytree(HERE / name, dest / name, ignore=ignore, dirs_exist_ok=True)
        else:
            shutil.copy2(HERE / name, dest / name)


def write_failure(path, message):
    """SageMaker shows this file as the job's failure reason; losing it must not hide the real error."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(message)
    except OSError:
        pass


def main(argv=None):
    args = parse_args(argv)
    try:
        train(args)
    except Exception as e:
        traceback.print_exc()
        reason = str(e) if isinstance(e, (TrainingError, features.FeatureError)) else f"{type(e).__name__}: {e}"
        write_failure(args.failure_file, "Training failed: " + " ".join(reason.split()))
        sys.exit(1)


if __name__ == "__main__":
    main()
