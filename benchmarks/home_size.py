"""How big a local home grows: after README's first command, after 20 runs, and after `prune`.

    python benchmarks/home_size.py [--runs 20] [--job-env image|host]

Each run is README's first command (the worked example, offline) with its own SplitSeed, so no step
is a cache hit and every run trains and tunes anew, as a user changing things would. Losing tuning
trials' folders are removed when each tuning step ends (the default). Every run registers a version, and
prune never frees a run whose version is registered and not rejected: so `prune --local` is measured
twice, with every version pending, then after rejecting all but the newest (the user kept one model).
Writes the section "Local home size" of docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402

GROUP = "purchase-intent-revenue-binary"  # the worked example's model package group


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def deploy(*args: str, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, str(ROOT / "deploy.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"deploy.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--job-env", choices=("image", "host"), default="image")
    args = parser.parse_args(argv)
    env = {**os.environ, "PIPELINES_JOB_ENV": args.job_env}
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        flags = ["--local", "--definition", "examples/purchase_intent", "--home", str(home), "--quiet"]
        began = time.monotonic()
        deploy("run", *flags, env=env)
        first = size(home)
        sizes = [first]
        for seed in range(1, args.runs):
            deploy("run", *flags, "-p", f"SplitSeed={seed}", env=env)
            sizes.append(size(home))
        after = size(home)
        parts = {p.name: size(p) for p in home.iterdir() if p.is_dir()}
        deploy("prune", "--local", "--home", str(home), env=env)
        pending = size(home)
        for version in range(1, args.runs):
            deploy("reject", str(version), "--local", "--home", str(home), "--group", GROUP, env=env)
        dry = deploy("prune", "--local", "--home", str(home), "--dry-run", env=env).stdout
        deploy("prune", "--local", "--home", str(home), env=env)
        pruned = size(home)
        minutes = (time.monotonic() - began) / 60
    mb = 1 / 2**20
    body = f"""Written by `python benchmarks/home_size.py --runs {args.runs} --job-env {args.job_env}` on {machine()},
load average {load[0]:.1f} when it started, {minutes:.0f} minutes in all.

| home after | size |
| --- | --- |
| README's first command (`run --local --definition examples/purchase_intent`) | {first * mb:.1f} MB |
| {args.runs} such runs, each with its own `SplitSeed` | {after * mb:.1f} MB ({(after - first) / max(1, args.runs - 1) * mb:.1f} MB a run) |
| then `prune --local`, every version pending (every run stays) | {pending * mb:.1f} MB |
| then `prune --local` after rejecting all versions but the newest (the newest 5 runs stay) | {pruned * mb:.1f} MB |

After {args.runs} runs: {", ".join(f"`{name}/` {value * mb:.1f} MB" for name, value in sorted(parts.items()))}.
Losing tuning trials' folders are gone when each tuning step ends (`--keep-trials` keeps them), so a run
keeps the best trial's folder, its outputs in the store and its records. The last `prune --dry-run` said:

```
{dry.strip()[-1500:]}
```
"""
    write_section(ROOT / "docs" / "benchmarks.md", "Local home size", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
