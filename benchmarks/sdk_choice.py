"""What installing the project costs, without the SageMaker SDK and with v2 or v3, on fresh virtualenvs.

The compiler spells the definition JSON itself, so the SDK is needed only by the tests (the oracle
the compiler is held to, and AWS's sample pipelines) and by pipelines written with the plain SDK.
For each install README could offer (`pip install -e .`, its first command; `-e '.[dev]'`, the
tests' install with SDK v2; `-e '.[sdk-v3,test]'`), in a new virtualenv with no pip cache: install
wall and CPU time (user + system of pip and everything it starts, which barely moves with the
machine's other load), the virtualenv's size, and `deploy.py run --local` in a fresh home. Each
install is repeated (`--installs`), the variants taking turns.

Writes the section "## Installing: without the SageMaker SDK, or with v2 or v3" of docs/benchmarks.md.

    python benchmarks/sdk_choice.py [--installs 2] [--no-write] [--save F | --load F]

--save keeps the raw measurements as JSON (benchmarks/sdk_choice.json holds those the section
shows); --load writes the section from them without measuring again.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
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

HEADING = "Installing: without the SageMaker SDK, or with v2 or v3"
VARIANTS = {  # name -> the extras of `pip install -e .[extras]`
    "`-e .` (README's first command)": "",
    "`-e '.[dev]'` (the tests: SDK v2, pytest)": "dev",
    "`-e '.[sdk-v3,test]'`": "sdk-v3,test",
}
# Run in the new virtualenv: which SageMaker SDK it holds.
SDK_VERSION = """
import importlib.metadata as m
found = []
for package in ("sagemaker", "sagemaker-mlops"):
    try:
        found.append(f"{package} {m.version(package)}")
    except m.PackageNotFoundError:
        pass
print(", ".join(found) or "none")
"""
# The vendor's published lifecycle (PyPI release notes of sagemaker 2.257.4 and 3.0.0).
END_OF_SUPPORT = {"v2": "2027-07-06 (maintenance mode since 2026-07-06)", "v3": "none announced (GA 2025-11-19)"}


def checked(cmd: list[str], **kwargs) -> tuple[float, float]:
    """Run `cmd` to success: (wall seconds, CPU seconds of its whole process tree)."""
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    wall, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def environ() -> dict[str, str]:
    """No pip cache, so every install downloads as on a new machine; no AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", AWS_EC2_METADATA_DISABLED="true")
    return env


def install(extras: str, env: dict) -> dict:
    """One install into a new virtualenv, then a local run of the worked example with it."""
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        checked([sys.executable, "-m", "venv", str(venv)])
        python = str(venv / "bin" / "python")
        target = f"{ROOT}[{extras}]" if extras else str(ROOT)
        wall, cpu = checked([python, "-m", "pip", "install", "-q", "-e", target], env=env)
        run, _ = checked([python, str(ROOT / "deploy.py"), "run", "--local", "--home", str(Path(tmp) / "home")],
                         env=env, cwd=ROOT)
        sdk = subprocess.run([python, "-c", SDK_VERSION], capture_output=True, text=True, env=env, check=True)
        return {"install": wall, "install_cpu": cpu, "size": size(venv), "run": run, "sdk": sdk.stdout.strip()}


def taking_turns(names: list, installs: int, measure) -> dict:
    """{name: [measurement per install]}, the names in turn (reversed every other round), so the
    machine's changing load falls on each alike."""
    out = {name: [] for name in names}
    for round_ in range(installs):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            out[name].append(measure(name))
    return out


def medians(runs: list[dict]) -> dict:
    return {k: statistics.median([r[k] for r in runs]) if isinstance(v, (int, float)) else v
            for k, v in runs[0].items()}


def each(runs: list[dict], key: str) -> str:
    return ", ".join(f"{r[key]:.0f}" for r in runs)


def report(installs: dict, loads: tuple, command: str, date: str) -> str:
    mb = 2**20
    lines = [f"Measured {date} on {machine()}; load average at start {loads[0]:.1f}, at end {loads[1]:.1f} "
             "(a shared machine: wall times of installs move with its other load; CPU times barely do).", "",
             f"Command: `{command}`. Every install is into a new virtualenv with pip's cache off, so packages "
             "download as on a new machine, the variants taking turns (medians, then each install); then "
             "`deploy.py run --local` of the worked example in a fresh home, with that virtualenv.", "",
             "| install | SageMaker SDK | install wall | install CPU | virtualenv size | run --local |",
             "|---|---|---|---|---|---|"]
    for name, runs in installs.items():
        m = medians(runs)
        lines.append(f"| {name} | {m['sdk']} | {m['install']:.0f} s ({each(runs, 'install')}) | "
                     f"{m['install_cpu']:.0f} s ({each(runs, 'install_cpu')}) | {m['size'] / mb:.0f} MB | "
                     f"{m['run']:.0f} s |")
    base, dev = (medians(installs[name]) for name in list(VARIANTS)[:2])
    lines += ["", f"Without the SDK and the test tools, README's first command installs "
              f"{(dev['size'] - base['size']) / mb:.0f} MB less ({1 - base['size'] / dev['size']:.0%} of the tests' "
              f"install), in {1 - base['install'] / dev['install']:.0%} less wall time and "
              f"{1 - base['install_cpu'] / dev['install_cpu']:.0%} less CPU time.", "", CHOICE]
    return "\n".join(lines)


# What the figures above decided.
CHOICE = f"""**README's first command installs no SageMaker SDK** (`pip install -e .`): compile, `run --local`,
the report and every cloud command need none, since the compiler writes the JSON itself. The base
dependencies never held the SDK; now README's first command does not install it either, nor pytest and
moto, which roughly halves that install's time. What remains is mostly XGBoost, whose Linux wheel
brings NVIDIA's NCCL (467 MB) whether or not a GPU is there, pyarrow and SciPy. The tests install the
`dev` extra: SDK v2 as the oracle the compiler is held to byte for byte (`tests/test_same_json.py`),
AWS's sample pipelines (v2 code), pytest and moto's server. Pipelines written with the plain SDK
(`pipelines/sdk_pipelines.py`) need an SDK and moto: `pip install -e '.[sdk-v2]'` or `'.[sdk-v3]'`.

Why v2 as the tests' SDK: the compiler writes v2's bytes, and the differences to v3 are listed and
checked (docs/ARCHITECTURE.md, "SDK v2 and v3"); CI compares with the other SDK in a virtualenv of its
own. v3's install costs about twice v2's time (its parts require mlflow, pyiceberg and s3fs, which the
oracle never imports). v2's support ends {END_OF_SUPPORT["v2"]}; v3: {END_OF_SUPPORT["v3"]}. When v2
goes, the oracle moves to v3 and the compiler's spelling with it (the `dev` extra in pyproject.toml,
and the documented differences change sides)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installs", type=int, default=2, help="installs of each kind, taking turns (median)")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    parser.add_argument("--save", type=Path, help="keep the raw measurements in this JSON file")
    parser.add_argument("--load", type=Path, help="write the section from measurements --save kept")
    args = parser.parse_args(argv)
    if args.load:
        measured = json.loads(args.load.read_text())
    else:
        env, start = environ(), os.getloadavg()[0]
        installs = taking_turns(list(VARIANTS), args.installs, lambda name: install(VARIANTS[name], env))
        command = "python benchmarks/sdk_choice.py" + (f" --installs {args.installs}" if args.installs != 2 else "")
        measured = {"installs": installs, "loads": (start, os.getloadavg()[0]), "command": command,
                    "date": str(date.today())}
        if args.save:
            args.save.write_text(json.dumps(measured, indent=1))
    section = report(**measured)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
