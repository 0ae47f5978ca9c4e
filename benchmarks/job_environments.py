"""Image environments: what the one-time set-up costs, and what a job pays once it is cached.

(a) Set-up: `environments.ensure` for each image, into a fresh environment cache, once with uv's
    download cache cold (a fresh UV_CACHE_DIR: every wheel comes from the package index) and once
    warm (the wheels already downloaded, as for every later image or a rebuilt environment).
(b) Warm overhead: the same small processing job (imports pandas and scikit-learn, reads a CSV,
    writes one) run alternately with ``job_env="host"`` and ``"image"`` (cached), median wall time.

Writes the section "## Image environments" of docs/benchmarks.md.

    python benchmarks/job_environments.py [--reps 7] [--no-write]
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
SET_UP = [("sagemaker-scikit-learn", "1.4-2"), ("sagemaker-xgboost", "3.0-5"), ("sagemaker-scikit-learn", "0.23-1")]
JOB_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.4-2-cpu-py3"
SCRIPT = """
import sys, pandas, sklearn.preprocessing
frame = pandas.read_csv("/opt/ml/processing/input/data/rows.csv")
frame.assign(scaled=sklearn.preprocessing.scale(frame["x"])).to_csv("/opt/ml/processing/output/out.csv")
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


def job_seconds(job_env: str, root: Path, index: int) -> float:
    store = LocalStore(root / "s3")
    work = root / f"{job_env}-{index}"
    work.mkdir()
    ctx = JobContext(store=store, work_dir=work, log_path=root / f"{job_env}-{index}.log", job_env=job_env)
    request = {
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}},
        "AppSpecification": {"ImageUri": JOB_IMAGE,
                             "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/job.py"]},
        "ProcessingInputs": [
            {"InputName": "data", "S3Input": {"S3Uri": "s3://bench/rows.csv", "LocalPath": "/opt/ml/processing/input/data",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}},
            {"InputName": "code", "S3Input": {"S3Uri": "s3://bench/job.py", "LocalPath": "/opt/ml/processing/input/code",
                                              "S3DataType": "S3Prefix", "S3InputMode": "File"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
            "S3Uri": f"s3://bench/out/{job_env}-{index}", "LocalPath": "/opt/ml/processing/output",
            "S3UploadMode": "EndOfJob"}}]},
        "RoleArn": "arn:aws:iam::123456789012:role/bench",
    }
    started = time.perf_counter()
    run_processing(f"bench-{job_env}-{index}", request, ctx)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    options = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as cold_cache:
        for key in SET_UP:
            cold = set_up(key, Path(cold_cache) / "-".join(key))  # its own empty download cache
            warm = set_up(key, None)
            rows.append(f"| {key[0]}:{key[1]} | {cold:.1f} s | {warm:.1f} s |")
            print(rows[-1], flush=True)
    environments.ensure(IMAGES[("sagemaker-scikit-learn", "1.4-2")])  # the cached one (b) uses
    times = {"host": [], "image": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = LocalStore(root / "s3")
        store.put_bytes("s3://bench/rows.csv", ("x\n" + "\n".join(str(i) for i in range(10_000)) + "\n").encode())
        store.put_bytes("s3://bench/job.py", SCRIPT.encode())
        for index in range(options.reps):
            for job_env in ("host", "image"):
                times[job_env].append(job_seconds(job_env, root, index))
    host, image = statistics.median(times["host"]), statistics.median(times["image"])
    print(f"host {host:.2f} s, image {image:.2f} s", flush=True)
    body = f"""Measured {datetime.now().date()} on {machine()}; load average at start {load_before:.1f}, at end {os.getloadavg()[0]:.1f} (a shared machine).

Command: `python benchmarks/job_environments.py --reps {options.reps}`

**(a) One-time set-up** of an image's environment (`pipelines.local.environments.ensure`, uv, into an empty environment cache). *Cold*: uv's download cache empty too, so every wheel comes from the package index over this machine's network; *warm*: the wheels already downloaded. sagemaker-scikit-learn:0.23-1's exact versions have no wheels for Python 3.11, so its time includes the failed exact attempt and the nearest-version install.

| image | cold | warm |
|---|---|---|
{chr(10).join(rows)}

**(b) Warm overhead**: a small processing job (imports pandas and scikit-learn, scales 10,000 rows, writes a CSV) on sagemaker-scikit-learn:1.4-2, run {options.reps} times each way, alternately; median wall time of `run_processing` (staging, the subprocess, the upload). The image environment is cached, so what it adds is reading the environment's manifest and starting a different interpreter; the rest is the difference between the image's package versions and the host's (pandas {environments._host_versions(IMAGES[("sagemaker-scikit-learn", "1.4-2")])["pandas"]} here against the image's 2.3.2).

| job environment | median | min | max |
|---|---|---|---|
| host (`--job-env host`) | {host:.2f} s | {min(times["host"]):.2f} s | {max(times["host"]):.2f} s |
| image (cached) | {image:.2f} s | {min(times["image"]):.2f} s | {max(times["image"]):.2f} s |
| **image − host** | **{image - host:+.2f} s** | | |
"""
    if not options.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, body)
    print(body)


if __name__ == "__main__":
    main()
