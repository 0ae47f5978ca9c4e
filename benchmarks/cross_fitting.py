"""Cross-fitting by data size: how many folds pay for themselves, by nested validation and wall time.

For each table size, preprocess.py splits the data as the pipeline does and its test split is never read;
train + validation are pooled, 15% of the pool is held out (model_selection.py's inner split), and train.py
trains on the rest with --folds 1 (one booster, early-stopped and calibrated on the validation channel), 3
and 5. The served model scores the hold-out (ROC-AUC, paired with one booster on the same split) and each
training is timed. The rule train.py's `--folds auto` follows (FOLDS_BY_ROWS) is read off this table.

    python benchmarks/cross_fitting.py [--data /work/shared/data/online_shoppers_intention.csv] [--sizes ...]

Results accumulate in WORK/results.json, so the real file and each size can be measured one at a time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402
from benchmarks.model_selection import holdout_scores, pooled_splits  # noqa: E402
from examples.purchase_intent.shoppers_data import generate, write_csv  # noqa: E402

FOLDS = (1, 3, 5)
REAL = ([0, 1, 2, 3], [0])  # outer split seeds, inner seeds of the real file: its differences are small and noisy
SIZES = {  # synthetic rows -> (outer, inner seeds, fold counts): one split where one training costs minutes
    100_000: ([0], [0], FOLDS),
    1_000_000: ([0], [0], (1, 3)),
}


def measure(path: Path, outer: list[int], inner: list[int], work: Path, folds=FOLDS) -> dict[int, dict]:
    """{folds: {"auc": [per split], "seconds": [per split]}} on the same splits for every fold count."""
    out = {k: {"auc": [], "seconds": []} for k in folds}
    for seed in outer:
        (work / path.stem).mkdir(exist_ok=True)
        pool = pooled_splits(path, seed, work / path.stem)
        for inner_seed in inner:
            for k in folds:
                started = time.time()
                auc, _ = holdout_scores(pool, inner_seed, {"folds": str(k)}, work)
                out[k]["auc"].append(auc)
                out[k]["seconds"].append(time.time() - started)
                print(f"{path.name} seed {seed}/{inner_seed} folds {k}: {auc:.4f} in {out[k]['seconds'][-1]:.0f} s",
                      file=sys.stderr, flush=True)
    return out


def row(name: str, rows: int, results: dict) -> str:
    results = {int(k): v for k, v in results.items()}
    base = np.array(results[1]["auc"])
    cells = []
    for k in FOLDS:
        if k not in results:
            cells.append("not run | ")
            continue
        diff = np.array(results[k]["auc"]) - base
        se = f" ± {diff.std(ddof=1) / len(diff) ** 0.5:.4f}" if len(diff) > 1 else ""  # one split: no error bar
        cells.append(f"{np.mean(results[k]['auc']):.4f} ({diff.mean():+.4f}{se}) | {np.mean(results[k]['seconds']):.0f} s")
    return f"| {name} | {rows:,} | {len(base)} | " + " | ".join(cells) + " |"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, help="the real file too (its 12,330 rows), if given")
    p.add_argument("--work", type=Path, default=Path("/tmp/cross-fitting"))
    p.add_argument("--sizes", type=int, nargs="*", default=list(SIZES), choices=list(SIZES))
    args = p.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    kept = args.work / "results.json"
    measured = json.loads(kept.read_text()) if kept.exists() else {}
    if args.data:
        measured[f"real ({args.data.name})|12330"] = measure(args.data, *REAL[:2], args.work)
    for rows in args.sizes:
        path = args.work / f"synthetic-{rows}.csv"
        if not path.exists():
            write_csv(generate(rows, seed=7), path)
        outer, inner, folds = SIZES[rows]
        measured[f"synthetic|{rows}"] = measure(path, outer, inner, args.work, folds)
    kept.write_text(json.dumps(measured))
    lines = ["| data | rows | splits | " + " | ".join(f"{k} fold{'s' * (k > 1)}: ROC-AUC (vs 1) | wall" for k in FOLDS)
             + " |", "|---|---:|---:|" + "---:|---:|" * len(FOLDS)]
    for key, results in sorted(measured.items(), key=lambda kv: int(kv[0].split("|")[1])):
        name, rows = key.split("|")
        lines.append(row(name, int(rows), results))
    body = f"""{__doc__.split(chr(10) + chr(10))[1]}

ROC-AUC is the mean over splits, with the paired difference from 1 fold ± its standard error; wall is one
train.py run (all folds, feature building, calibration) on this machine, shared with other work.

{chr(10).join(lines)}

Machine: {machine()}. Command: `python benchmarks/cross_fitting.py --data online_shoppers_intention.csv` (the real
file and each size can be measured alone, `--sizes`; results accumulate).
"""
    print(body)
    write_section(ROOT / "docs" / "benchmarks.md", "Cross-fitting by size", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
