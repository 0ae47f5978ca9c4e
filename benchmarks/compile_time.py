"""`deploy.py compile` in a fresh process: with nothing compiled yet, and once the definition was compiled before.

Compiled definitions are kept per user by the fingerprint of everything compile depends on
(`commands.compile_cache`), so a second compile, from any directory or local home, reads the JSON
instead of importing the SageMaker SDK. Each measurement is a new interpreter, timed from outside
(`python deploy.py compile -o FILE`), alternating cold (an empty cache folder each time) and warm.
Writes the section "## Compile in a fresh process" of docs/benchmarks.md.

    python benchmarks/compile_time.py [--reps 5] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402

HEADING = "Compile in a fresh process"
TARGET = 2.0  # seconds, warm


def compile_once(cache: Path, out: Path) -> float:
    env = {**os.environ, "PIPELINES_COMPILE_CACHE": str(cache), "SAGEMAKER_SUPPRESS_V2_WARNING": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "deploy.py", "compile", "--definition", "examples/purchase_intent", "-o", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"deploy.py compile failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    cold, warm, loads = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        warm_cache = Path(tmp) / "warm"
        compile_once(warm_cache, Path(tmp) / "first.json")
        for rep in range(args.reps):
            loads.append(os.getloadavg()[0])
            cold.append(compile_once(Path(tmp) / f"cold-{rep}", Path(tmp) / f"cold-{rep}.json"))
            warm.append(compile_once(warm_cache, Path(tmp) / f"warm-{rep}.json"))
            same = (Path(tmp) / f"cold-{rep}.json").read_bytes() == (Path(tmp) / f"warm-{rep}.json").read_bytes()
            if not same:
                raise SystemExit("a cached compile differs from a fresh one")
    verdict = "meets" if statistics.median(warm) <= TARGET else "misses"

    def row(name, values):
        return (f"| {name} | **{statistics.median(values):.2f} s** | {min(values):.2f} s | {max(values):.2f} s |")

    body = "\n".join([
        f"Command: `python benchmarks/compile_time.py --reps {args.reps}` ({date.today().isoformat()}). "
        f"Machine: {machine()}; load average (1 min) during the runs {min(loads):.1f}–{max(loads):.1f} "
        "(the machine is shared).",
        "",
        "Each figure is a new interpreter running `python deploy.py compile -o FILE` of the worked example, timed from "
        "outside. Cold: an empty compile cache, so the SageMaker SDK is imported and the definition built. Warm: the "
        "same definition was compiled before (by any command, in any directory or local home), so the JSON is read "
        "from the per-user cache by its fingerprint and the SDK is not imported. Both give the same bytes (checked).",
        "",
        "| compile | median | min | max |",
        "| --- | --- | --- | --- |",
        row("cold (nothing cached)", cold),
        row("warm (compiled before)", warm),
        "",
        f"Target: warm <= {TARGET:.0f} s. The warm compile {verdict} it.",
    ])
    print(body)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, body)


if __name__ == "__main__":
    main()
