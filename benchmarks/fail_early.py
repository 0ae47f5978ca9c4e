"""How fast a run with a misspelt label is refused: `deploy.py run --local --input-data T --label teir`.

The tabular pipeline reads the header and first rows of a local input before anything is recorded, so the
refusal should cost little more than starting Python. Each repetition times, from outside and alternately,
the refused command and `python -c pass` (the floor no command beats). Writes the section
"## Fail early" of docs/benchmarks.md.

    python benchmarks/fail_early.py [--reps 7] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402

HEADING = "Fail early"
TARGET = 1.0  # seconds, the refusal end to end


def timed(command: list[str], *, expect: int) -> float:
    began = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != expect:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}, not {expect}:\n{done.stderr[-2000:]}")
    return seconds


def table(path: Path, rows: int = 10_000) -> None:
    """A customer table of `rows` rows whose label is `tier`."""
    rng = np.random.default_rng(0)
    spend = rng.gamma(2, 50, rows)
    pd.DataFrame({"spend": spend.round(2), "visits": rng.poisson(5, rows),
                  "tier": np.where(spend > 120, "gold", np.where(spend > 60, "silver", "bronze"))}).to_csv(path, index=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    refused, bare = [], []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tiers.csv"
        table(data)
        command = [sys.executable, "deploy.py", "run", "--local", "--home", str(Path(tmp) / "home"),
                   "--input-data", str(data), "--label", "teir", "--problem-type", "multiclass"]
        for _ in range(args.reps):
            bare.append(timed([sys.executable, "-c", "pass"], expect=0))
            refused.append(timed(command, expect=2))
        if (Path(tmp) / "home" / "runs").exists():
            raise SystemExit("the refused run recorded an execution")
    median = statistics.median(refused)
    verdict = "meets" if median <= TARGET else "misses"
    body = f"""Measured {time.strftime('%Y-%m-%d')} on {machine()}; load average {load:.1f} at the start.

Command: `python benchmarks/fail_early.py --reps {args.reps}`

A misspelt label on a local table of 10,000 rows (`run --local --input-data tiers.csv --label teir`), refused
before anything is recorded, timed from outside in a new interpreter each time, {args.reps} times, alternately with
an interpreter doing nothing.

| what | median | min | max |
|---|---|---|---|
| `deploy.py run --local ... --label teir` (refused, exit 2) | {median:.2f} s | {min(refused):.2f} s | {max(refused):.2f} s |
| `python -c pass` (the floor) | {statistics.median(bare):.2f} s | {min(bare):.2f} s | {max(bare):.2f} s |

Target: under {TARGET:.0f} s; this {verdict} it.
"""
    print(body)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
