"""SageMaker SDK v2 or v3: what each costs a user, measured on fresh virtualenvs.

For each way of installing an SDK (v2; v3's `sagemaker` meta-package; v3's four parts with
--no-deps plus only what compiling imports), in a new virtualenv with no pip cache:
install time and size, the time to import what compile imports, and a cold
`deploy.py compile` (new process). Then README's first command with each SDK extra
(`pip install -e '.[sdk-vN,test]' && deploy.py run --local`), each in its own new
virtualenv. End of support is the vendor's published date, not a measurement.

Installs take their wall time from the machine's other load as much as from the packages, so
each is repeated (`--installs`), the SDKs taking turns, and its CPU time (user + system of pip
and everything it starts) is reported beside the wall time: CPU time barely moves with load.

Writes the section "## SageMaker SDK v2 or v3" of docs/benchmarks.md.

    python benchmarks/sdk_choice.py [--installs 2] [--reps 3] [--no-readme] [--no-write] [--save F | --load F]

--save keeps the raw measurements as JSON (benchmarks/sdk_choice.json holds those the section
shows); --load writes the section from them without measuring again, when only the default or
the reasoning below changed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
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
        timings = [checked([str(python), "-m", "pip", "install", "-q", *step], env=env) for step in steps]
        install, install_cpu = sum(w for w, _ in timings), sum(c for _, c in timings)
        grown = size(venv) - before
        checked([str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], env=env)
        load = "import time; t = time.perf_counter(); from pipelines.compiler import sdk; sdk.load(); " \
               "print(time.perf_counter() - t)"
        imports = [float(subprocess.run([str(python), "-c", load], capture_output=True, text=True, env=env,
                                        cwd=tmp, check=True).stdout) for _ in range(reps)]
        out = Path(tmp) / "pipeline.json"
        compiles = [checked([str(python), str(ROOT / "deploy.py"), "compile", "--region", REGION, "--output",
                             str(out)], env=env, cwd=ROOT)[0] for _ in range(reps)]
        version = subprocess.run([str(python), "-c", "from pipelines.compiler import sdk; print(sdk.installed()[1])"],
                                 capture_output=True, text=True, env=env, check=True).stdout.strip()
        return {"install": install, "install_cpu": install_cpu, "size": grown, "import": median(imports),
                "compile": median(compiles), "version": version,
                "definition_sha256": hashlib.sha256(out.read_bytes()).hexdigest()}


def readme_first_command(extra: str, env: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        python = new_venv(Path(tmp) / "venv")
        install, install_cpu = checked([str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra},test]"],
                                       env=env)
        runs, _ = checked([str(python), str(ROOT / "deploy.py"), "run", "--local", "--home", str(Path(tmp) / "home")],
                          env=env, cwd=ROOT)
        return {"install": install, "install_cpu": install_cpu, "run": runs, "size": size(Path(tmp) / "venv")}


def taking_turns(measure, names: list, installs: int) -> dict:
    """{name: [measurement per install]}, the names in turn (reversed every other round), so the
    machine's changing load falls on each alike."""
    out = {name: [] for name in names}
    for round_ in range(installs):
        for name in (names if round_ % 2 == 0 else names[::-1]):
            out[name].append(measure(name))
    return out


def medians(runs: list[dict]) -> dict:
    """Each numeric field's median over the runs; other fields from the first run."""
    return {k: median([r[k] for r in runs]) if isinstance(v, (int, float)) else v for k, v in runs[0].items()}


def default_sdk() -> str:
    """The SDK README's first command installs: the sdk-* extra that `dev` names."""
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    return next(f"v{n}" for n in (2, 3) if any(f"sdk-v{n}" in entry for entry in dev))


def each(runs: list[dict], key: str, digits: int = 0) -> str:
    return ", ".join(f"{r[key]:.{digits}f}" for r in runs)


def report(sdks: dict, readme: dict, reps: int, installs: int, loads: tuple, command: str, date: str) -> str:
    mb = 2**20
    lines = [f"Measured {date} on {machine()}; load average at start {loads[0]:.1f}, at end {loads[1]:.1f} "
             f"(a shared machine: wall times of installs move with its other load; CPU times barely do).", "",
             f"Command: `{command}`. Every install is into a new virtualenv with pip's cache off, so packages "
             f"download as on a new machine; each is done {installs} times, the SDKs taking turns (medians, "
             f"then each run).", "",
             "**The SDK alone** (import: what compile imports, `sdk.load()`, in a new process; compile: "
             f"`deploy.py compile` in a new process; medians of {reps} per install):", "",
             "| install | packages | install wall | install CPU | size on disk | import | compile | end of support |",
             "|---|---|---|---|---|---|---|---|"]
    for name, runs in sdks.items():
        m, major = medians(runs), "v3" if name.startswith("v3") else "v2"
        lines.append(f"| {name} | {m['version']} | {m['install']:.0f} s ({each(runs, 'install')}) | "
                     f"{m['install_cpu']:.0f} s ({each(runs, 'install_cpu')}) | {m['size'] / mb:.0f} MB | "
                     f"{m['import']:.1f} s | {m['compile']:.1f} s | {END_OF_SUPPORT[major]} |")
    v3s = {r["definition_sha256"] for name, runs in sdks.items() if name.startswith("v3") for r in runs}
    lines += ["", f"Both v3 installs compile byte-identical JSON: {'yes' if len(v3s) == 1 else 'NO'}."]
    if readme:
        lines += ["", "**README's first command** with each SDK (`pip install -e '.[sdk-vN,test]'`, then "
                  "`deploy.py run --local` in a fresh home; the whole project's dependencies):", "",
                  "| SDK | install wall | install CPU | run --local | wall total | virtualenv size |",
                  "|---|---|---|---|---|---|"]
        for name, runs in readme.items():
            m = medians(runs)
            lines.append(f"| {name} | {m['install']:.0f} s ({each(runs, 'install')}) | {m['install_cpu']:.0f} s "
                         f"({each(runs, 'install_cpu')}) | {m['run']:.0f} s | {m['install'] + m['run']:.0f} s | "
                         f"{m['size'] / mb:.0f} MB |")
        if {"v2", "v3"} <= readme.keys():
            v2, v3 = medians(readme["v2"]), medians(readme["v3"])
            wall = (v3["install"] + v3["run"]) / (v2["install"] + v2["run"])
            cpu = v3["install_cpu"] / v2["install_cpu"]
            lines += ["", f"README's first command with v3 takes {wall:.2f}x the wall time it takes with v2, and "
                      f"its install {cpu:.2f}x the CPU time (the limit for v3 as the default: under 2x)."]
    lines += ["", f"**Default: {default_sdk()}** (pyproject's `dev` extra, which README's first command installs).",
              "", CHOICE]
    return "\n".join(lines)


# Why the default is what it is; the figures above are what it rests on.
CHOICE = """Why v2, for now. Both SDKs compile the same definition JSON (`tests/test_same_json.py`), and CI
compiles and runs the pipeline under the other SDK as well, so the default decides only what README's
first command installs. There, v3 costs about twice what v2 does: its install takes about twice the
CPU time and most of twice the wall time, because v3's parts require mlflow, pyarrow, pyiceberg and
s3fs (about 500 MB) that a compile never imports. Twice is the limit this project set for making v3
the default, so v2 stays. The light v3 install (its four parts with --no-deps, plus only what compile
imports) costs about what v2 does and compiles byte-identical JSON, but pip cannot say --no-deps in
an extra, so README cannot offer it as one command. What v2 costs instead: its support ends on
2027-07-06, and `import sagemaker` says so in a warning, which the compiler keeps off the terminal
(`test_compile_says_one_line_even_when_warnings_are_errors`). Compile time does not decide it: a
cold compile takes about as long under either. Switch the default (one line: the `dev` extra in
pyproject.toml; nothing else changes, since the JSON is the same) when v3's parts make those
dependencies optional, or by April 2027 at the latest, three months before v2's end of support."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installs", type=int, default=2, help="installs of each kind, taking turns (median)")
    parser.add_argument("--reps", type=int, default=3, help="imports and compiles per install (median)")
    parser.add_argument("--no-readme", action="store_true", help="skip README's first command per SDK")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    parser.add_argument("--save", type=Path, help="keep the raw measurements in this JSON file")
    parser.add_argument("--load", type=Path, help="write the section from measurements --save kept")
    args = parser.parse_args(argv)
    if args.load:
        measured = json.loads(args.load.read_text())
    else:
        env, start = environ(), os.getloadavg()[0]
        sdks = taking_turns(lambda name: sdk_variant(VARIANTS[name], args.reps, env), list(VARIANTS), args.installs)
        readme = {} if args.no_readme else taking_turns(
            lambda name: readme_first_command(f"sdk-{name}", env), ["v2", "v3"], args.installs)
        command = "python benchmarks/sdk_choice.py" + (f" --installs {args.installs}" if args.installs != 2 else "") \
            + (f" --reps {args.reps}" if args.reps != 3 else "") + (" --no-readme" if args.no_readme else "")
        measured = {"sdks": sdks, "readme": readme, "reps": args.reps, "installs": args.installs,
                    "loads": (start, os.getloadavg()[0]), "command": command, "date": str(date.today())}
        if args.save:
            args.save.write_text(json.dumps(measured))
    section = report(**measured)
    if args.no_write:
        print(section)
    else:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, section)
        print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
