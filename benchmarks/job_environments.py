"""Image environments and the private filesystem: what they cost a job.

(a) Set-up: `environments.ensure` for each image, into a fresh environment cache, once with uv's
    download cache cold (a fresh UV_CACHE_DIR: every wheel comes from the package index) and once
    warm (the wheels already downloaded, as for every later image or a rebuilt environment).
(b) Warm overhead: the same small processing job (imports pandas and scikit-learn, reads a CSV,
    writes one) run alternately with ``job_env="host"`` and ``"image"`` (cached), median wall time.
(c) The private filesystem (`pipelines.local.sandbox`): the same job on the host's Python, run
    alternately with isolation "namespace" and "paths" (no private filesystem), median wall time.

Writes the sections "## Image environments" ((a), (b)) and "## Private filesystem per job" ((c)) of
docs/benchmarks.md.

    python benchmarks/job_environments.py [--reps 7] [--parts setup,overhead,sandbox] [--no-write]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.doc import machine, write_section  # noqa: E402
from pipelines.local import environments  # noqa: E402
from pipelines.local.images import IMAGES  # noqa: E402
from pipelines.local.jobs import JobContext, run_processing  # noqa: E402
from pipelines.local.storage import LocalStore  # noqa: E402

HEADING = "Image environments"
SANDBOX_HEADING = "Private filesystem per job"
SANDBOX_TARGET = 0.2  # seconds a job may pay for its private filesystem
SET_UP = [("sagemaker-scikit-learn", "1.4-2"), ("sagemaker-xgboost", "3.0-5"), ("sagemaker-scikit-learn", "0.23-1")]
JOB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
SCRIPT = """
import sys, pandas, sklearn.preprocessing
frame = pandas.read_csv(sys.argv[1] + "/rows.csv")
frame.assign(scaled=sklearn.preprocessing.scale(frame["x"])).to_csv(sys.argv[2] + "/out.csv")
"""
# (c)'s job: the same input and output, the standard library only, so that the job's own work does not
# drown what its private filesystem costs
SMALL_SCRIPT = """
import sys
rows = open(sys.argv[1] + "/rows.csv").read().splitlines()
open(sys.argv[2] + "/out.csv", "w").write(f"{len(rows) - 1}\\n")
"""


def set_up(key: tuple[str, str], uv_cache: Path | None) -> float:
    """Seconds to build one image's environment into an empty environment cache."""
    with tempfile.TemporaryDirectory() as envs:
        os.environ[environments.CACHE_ENV] = envs
        if uv_cache is not None:
            os.environ["UV_CACHE_DIR"] = str(uv_cache)
        started = time.perf_counter()
        manifest = environments.ensure(IMAGES[key])
        seconds = time.perf_counter() - started
        os.environ.pop("UV_CACHE_DIR", None)
        os.environ.pop(environments.CACHE_ENV)
    if manifest["kind"] != "venv":
        raise RuntimeError(f"{key}: no environment was built: {manifest['notes']}")
    return seconds


def job_seconds(job_env: str, root: Path, index: int, isolation: str = "auto", script: str = "job.py") -> float:
    store = LocalStore(root / "s3")
    work = root / f"{job_env}-{isolation}-{index}"
    work.mkdir()
    ctx = JobContext(store=store, work_dir=work, log_path=root / f"{work.name}.log", job_env=job_env,
                     isolation=isolation)
    request = {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
        "AppSpecification": {"ImageUri": JOB_IMAGE,
                             "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
                             # paths as arguments: isolation "paths" maps them (it cannot map a script's own)
                             "ContainerArguments": ["/opt/ml/processing/input/data", "/opt/ml/processing/output"]},
        "ProcessingInputs": [
            {"InputName": "data", "S3Input": {"S3Uri": "s3://bench/rows.csv", "LocalPath": "/opt/ml/processing/input/data",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "code", "S3Input": {"S3Uri": f"s3://bench/{script}", "LocalPath": "/opt/ml/processing/input/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://bench/out/{work.name}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        "RoleArn": "arn:aws:iam::123456789012:role/bench",
    }
    started = time.perf_counter()
    run_processing(f"bench-{work.name}", request, ctx)
    return time.perf_counter() - started


def prepared(root: Path) -> None:
    store = LocalStore(root / "s3")
    store.put_bytes("s3://bench/rows.csv", ("x\n" + "\n".join(str(i) for i in range(10_000)) + "\n").encode())
    store.put_bytes("s3://bench/job.py", SCRIPT.encode())
    store.put_bytes("s3://bench/small.py", SMALL_SCRIPT.encode())


def set_up_section(reps: int) -> str:
    """(a) and (b)."""
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as cold_cache:
        for key in SET_UP:
            cold = set_up(key, Path(cold_cache) / "-".join(key))  # its own empty download cache
            warm = set_up(key, None)
            rows.append(f"| {key[0]}:{key[1]} | {len(IMAGES[key].packages)} | {cold:.1f} s | {warm:.1f} s |")
            print(rows[-1], flush=True)
    environments.ensure(IMAGES[("sagemaker-scikit-learn", "1.4-2")])  # the cached one (b) uses
    times = {"host": [], "image": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepared(root)
        for index in range(reps):
            for job_env in ("host", "image"):
                times[job_env].append(job_seconds(job_env, root, index))
    host, image = statistics.median(times["host"]), statistics.median(times["image"])
    print(f"host {host:.2f} s, image {image:.2f} s", flush=True)
    return f"""Measured {datetime.now().date()} on {machine()}; load average at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} (a shared machine).

Command: `python benchmarks/job_environments.py --reps {reps} --parts setup,overhead`

**(a) One-time set-up** of an image's environment (`pipelines.local.environments.ensure`, uv, into an empty environment cache): every package the image's build installs (the table's count; their dependencies come too). *Cold*: uv's download cache empty too, so every wheel comes from the package index over this machine's network; *warm*: the wheels already downloaded. These three are the images the test suite (so CI, on a fresh machine) builds. Where an image's exact versions have no wheels for Python 3.11 (psutil 5.x, in all three), the time includes the failed exact attempt (a resolution only) and the nearest-version install.

| image | packages | cold | warm |
|---|---|---|---|
{chr(10).join(rows)}

**(b) Warm overhead**: a small processing job (imports pandas and scikit-learn, scales 10,000 rows, writes a CSV) on sagemaker-scikit-learn:1.4-2, run {reps} times each way, alternately; median wall time of `run_processing` (staging, the subprocess, the upload). The image environment is cached, so what it adds is reading the environment's manifest and starting a different interpreter; the rest is the difference between the image's package versions and the host's (pandas {environments._host_versions(IMAGES[("sagemaker-scikit-learn", "1.4-2")])["pandas"]} here against the image's 2.3.2).

| job environment | median | min | max |
|---|---|---|---|
| host (`--job-env host`) | {host:.2f} s | {min(times["host"]):.2f} s | {max(times["host"]):.2f} s |
| image (cached) | {image:.2f} s | {min(times["image"]):.2f} s | {max(times["image"]):.2f} s |
| **image − host** | **{image - host:+.2f} s** | | |
"""


def sandbox_section(reps: int) -> str:
    """(c): the same job, with and without its private filesystem."""
    load_before = os.getloadavg()[0]
    times = {"namespace": [], "paths": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        prepared(root)
        job_seconds("host", root, -1, "namespace", "small.py")  # warm: page cache, imports
        for index in range(reps):
            for isolation in ("namespace", "paths"):
                times[isolation].append(job_seconds("host", root, index, isolation, "small.py"))
    private, bare = statistics.median(times["namespace"]), statistics.median(times["paths"])
    print(f"namespace {private:.3f} s, paths {bare:.3f} s", flush=True)
    verdict = "meets" if private - bare < SANDBOX_TARGET else "misses"
    return f"""Measured {datetime.now().date()} on {machine()}; load average at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} (a shared machine).

Command: `python benchmarks/job_environments.py --reps {reps} --parts sandbox`

A small processing job (reads a CSV of 10,000 rows and writes its row count, standard library only, on the host's Python: `job_env="host"`), {reps} times each way, alternately: with its private filesystem (isolation "namespace": `pipelines.local.sandbox` sets up user, mount, PID and IPC namespaces, a tmpfs scratch, an overlay per host directory, /proc, /sys, /dev, pivot_root, and tears them down when the job ends) and without (isolation "paths", which protects nothing). Median wall time of `run_processing` (staging, the subprocess, the upload).

| isolation | median | min | max |
|---|---|---|---|
| namespace (private filesystem) | {private:.3f} s | {min(times["namespace"]):.3f} s | {max(times["namespace"]):.3f} s |
| paths (none) | {bare:.3f} s | {min(times["paths"]):.3f} s | {max(times["paths"]):.3f} s |
| **added per job** | **{private - bare:+.3f} s** | | |

Target: under {SANDBOX_TARGET} s added per job; this {verdict} it. A job of several hosts pays it once per host, in parallel.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--parts", default="setup,overhead,sandbox",
                        help="setup,overhead (section Image environments) and/or sandbox")
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    parts = set(options.parts.split(","))
    sections = []
    if parts & {"setup", "overhead"}:
        sections.append((HEADING, set_up_section(options.reps)))
    if "sandbox" in parts:
        sections.append((SANDBOX_HEADING, sandbox_section(options.reps)))
    for heading, body in sections:
        if not options.no_write:
            write_section(ROOT / "docs" / "benchmarks.md", heading, body)
        print(body)


if __name__ == "__main__":
    main()
