"""SageMaker SDK v2 or v3: what each costs a user, measured on fresh virtualenvs.

For each way of installing an SDK (v2; v3's `sagemaker` meta-package; v3's four parts with
--no-deps plus only what compiling imports), in a new virtualenv with no pip cache:
install time and size, the time to import what compile imports, and a cold
`deploy.py compile` (new process). Then README's first command with each SDK extra
(`pip install -e '.[sdk-vN,test]' && deploy.py run --local`), each in its own new
virtualenv. End of support is the vendor's published date, not a measurement.

Writes the section "## SageMaker SDK v2 or v3" of docs/benchmarks.md.

    python benchmarks/sdk_choice.py [--reps 3] [--no-readme] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402

HEADING = "SageMaker SDK v2 or v3"
REGION = "us-east-1"
# What compile imports from v3's parts when they are installed with --no-deps: their declared
# requirements less mlflow, sagemaker-mlflow, pyiceberg, pyarrow and s3fs (never imported by a
# compile), plus docker, which sagemaker.serve imports without declaring it.
V3_PARTS = ["sagemaker-core>=2,<3", "sagemaker-train>=1,<2", "sagemaker-serve>=1,<2", "sagemaker-mlops>=1,<2"]
V3_PARTS_REQUIREMENTS = [
    "boto3", "pydantic>=2", "PyYAML>=6", "jsonschema<5", "platformdirs>=4", "rich>=13,<15", "mock>4,<5",
    "importlib-metadata<7", "typing_extensions>=4.9", "pytz", "requests", "attrs", "packaging", "protobuf>=3.12,<7",
    "pandas", "numpy", "smdebug_rulesconfig", "schema", "omegaconf", "scipy", "cloudpickle", "paramiko", "tblib",
    "cryptography>=46", "graphene>=3,<4", "jinja2>=3", "nest_asyncio", "deepdiff", "psutil",
    "sagemaker_schema_inference_artifacts", "tqdm", "docker",
]
VARIANTS = {  # name -> pip install steps (each a list of arguments)
    "v2 (`sagemaker>=2.257,<3`)": [["sagemaker>=2.257,<3"]],
    "v3 (`sagemaker>=3,<4`)": [["sagemaker>=3,<4"]],
    "v3 parts (--no-deps + compile's imports)": [["--no-deps", *V3_PARTS], V3_PARTS_REQUIREMENTS],
}
# The vendor's published lifecycle (PyPI release notes of sagemaker 2.257.4 and 3.0.0).
END_OF_SUPPORT = {"v2": "2027-07-06 (maintenance mode since 2026-07-06)", "v3": "none announced (GA 2025-11-19)"}


def run(cmd: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    return done, time.perf_counter() - started


def checked(cmd: list[str], **kwargs) -> float:
    done, seconds = run(cmd, **kwargs)
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return seconds


def size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() or p.is_symlink())


def environ() -> dict[str, str]:
    """No pip cache, so every install downloads as on a new machine; no AWS settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", AWS_EC2_METADATA_DISABLED="true")
    return env


def new_venv(root: Path) -> Path:
    checked([sys.executable, "-m", "venv", str(root)])
    return root / "bin" / "python"


def median(values: list[float]) -> float:
    return statistics.median(values)


def sdk_variant(steps: list[list[str]], reps: int, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        python = new_venv(venv)
        before = size(venv)
        install = sum(checked([str(python), "-m", "pip", "install", "-q", *step], env=env) for step in steps)
        grown = size(venv) - before
        checked([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], env=env)
        load = "import time; t = time.perf_counter(); from pipelines.compiler import sdk; sdk.load(); " \
               "print(time.perf_counter() - t)"
        imports = [float(subprocess.run([str(python), "-c", load], capture_output=True, text=True, env=env,
                                        cwd=tmp, check=True).stdout) for _ in range(reps)]
        out = Path(tmp) / "pipeline.json"
        compiles = [checked([str(python), str(ROOT / "deploy.py"), "compile", "--region", REGION, "--output",
                             str(out)], env=env, cwd=ROOT) for _ in range(reps)]
        version = subprocess.run([str(python), "-c", "from pipelines.compiler import sdk; print(sdk.installed()[1])"],
                                 capture_output=True, text=True, env=env, check=True).stdout.strip()
        return {"install": install, "size": grown, "import": median(imports), "compile": median(compiles),
                "version": version, "definition": out.read_text()}


def readme_first_command(extra: str, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        python = new_venv(Path(tmp) / "venv")
        install = checked([str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra},test]"], env=env)
        runs = checked([str(python), str(ROOT / "deploy.py"), "run", "--local", "--home", str(Path(tmp) / "home")],
                       env=env, cwd=ROOT)
        return {"install": install, "run": runs, "size": size(Path(tmp) / "venv")}


def default_sdk() -> str:
    """The SDK README's first command installs: the sdk-* extra that `dev` names."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    return next(f"v{n}" for n in (2, 3) if any(f"sdk-v{n}" in entry for entry in dev))


def report(sdks: dict, readme: dict, reps: int, loads: tuple, command: str) -> str:
    mb = 2**20
    lines = [f"Measured {date.today()} on {machine()}; load average at start {loads[0]:.1f}, at end {loads[1]:.1f} "
             f"(a shared machine: one install per row, so read install times as ±20%).", "",
             f"Command: `{command}`. Every install is into a new virtualenv with pip's cache off, so packages "
             f"download as on a new machine.", "",
             "**The SDK alone** (import: what compile imports, `sdk.load()`, in a new process; compile: "
             f"`deploy.py compile` in a new process; medians of {reps}):", "",
             "| install | packages | install time | size on disk | import | compile | end of support |",
             "|---|---|---|---|---|---|---|"]
    for name, m in sdks.items():
        major = "v3" if name.startswith("v3") else "v2"
        lines.append(f"| {name} | {m['version']} | {m['install']:.0f} s | {m['size'] / mb:.0f} MB | "
                     f"{m['import']:.1f} s | {m['compile']:.1f} s | {END_OF_SUPPORT[major]} |")
    definitions = {name: m["definition"] for name, m in sdks.items()}
    v3s = [d for n, d in definitions.items() if n.startswith("v3")]
    lines += ["", f"Both v3 installs compile byte-identical JSON: {'yes' if len(set(v3s)) == 1 else 'NO'}."]
    if readme:
        lines += ["", "**README's first command** with each SDK (`pip install -e '.[sdk-vN,test]'`, then "
                  "`deploy.py run --local` in a fresh home; the whole project's dependencies, one run each):", "",
                  "| SDK | install | run --local | total | virtualenv size |", "|---|---|---|---|---|"]
        for name, m in readme.items():
            lines.append(f"| {name} | {m['install']:.0f} s | {m['run']:.0f} s | {m['install'] + m['run']:.0f} s "
                         f"| {m['size'] / mb:.0f} MB |")
        if {"v2", "v3"} <= readme.keys():
            ratio = (readme["v3"]["install"] + readme["v3"]["run"]) / (readme["v2"]["install"] + readme["v2"]["run"])
            lines += ["", f"README's first command with v3 takes {ratio:.2f}x as long as with v2 (target if v3 "
                      f"is the default: under 2x)."]
    lines += ["", f"**Default: {default_sdk()}** (pyproject's `dev` extra, which README's first command installs).",
              "", CHOICE]
    return "\n".join(lines)


# Why the default is what it is; the figures above are what it rests on.
CHOICE = """Why. Both SDKs compile the same definition JSON (`tests/test_same_json.py`), so the choice
is about what a user pays and for how long the SDK is supported. v2's end of support is seven
months away (2027-07-06) and it is already in maintenance mode: a new project started on it has to
move within its first year, and every `import sagemaker` carries a deprecation warning that this
project must keep hidden. v3 is the supported major. What it costs is in the tables: a larger
install (mlflow, pyarrow and pyiceberg come with its parts, although compile imports none of them)
and a slower import, paid on every cold compile but not by a memoised one (`run --local` reuses its
compile when nothing changed). The lighter v3 install (its parts with --no-deps) saves most of that
size, but pip cannot express it as an extra, so it stays a measured option rather than the default.
v2 stays one line away (`pip install -e '.[sdk-v2,test]'`) and CI runs compile and a local pipeline
under it, so a team still on v2 loses nothing."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="imports and compiles per install (median)")
    parser.add_argument("--no-readme", action="store_true", help="skip README's first command per SDK")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args(argv)
    env, start = environ(), os.getloadavg()[0]
    sdks = {name: sdk_variant(steps, args.reps, env) for name, steps in VARIANTS.items()}
    readme = {} if args.no_readme else {f"v{n}": readme_first_command(f"sdk-v{n}", env) for n in (2, 3)}
    command = "python benchmarks/sdk_choice.py" + (f" --reps {args.reps}" if args.reps != 3 else "") \
        + (" --no-readme" if args.no_readme else "")
    section = report(sdks, readme, args.reps, (start, os.getloadavg()[0]), command)
    if args.no_write:
        print(section)
    else:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, section)
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
