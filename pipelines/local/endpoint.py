"""From a registered model to predictions, offline: the local twin of `pipelines.endpoints`.

Against the local registry (`registry.sqlite`) and store (`s3/`) of a `LocalHome`:

    approve / reject      set a version's approval status
    deploy-endpoint       record which version the local endpoint N serves (a new endpoint config each time)
    serve                 an HTTP server with SageMaker's serving contract over the model's own inference.py
    predict               POST rows to a local server's /invocations
    batch-transform       the local runner's Transform job over a file, a folder or an s3:// prefix

The server speaks what a SageMaker inference container speaks: ``GET /ping`` answers 200 once
the model is loaded, ``POST /invocations`` takes a text/csv or application/json body and honours
Accept. The handlers are the model archive's own (``code/inference.py``) behind
`pipelines.local.serving`, exactly as batch transform runs them, so the two score identically, and
like a batch transform it runs as a job's host: on the model image's packages, in a private
filesystem. A payload the handlers refuse (ValueError: bad CSV or JSON, a missing column) is a 4xx
with a JSON message; a body above the limit (6 MB, as SageMaker's real-time endpoints) is a 413.
"""
from __future__ import annotations

import fcntl
import io
import json
import os
import re
import shutil
import signal
import sys
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pipelines import packages
from pipelines.local import jobs, serving
from pipelines.local.container import HostRun, IsolationError, host_path, map_container_paths, run_hosts
from pipelines.local.environments import default_job_env, job_python
from pipelines.local.images import UnknownImage, image_for
from pipelines.local.home import LocalHome
from pipelines.local.records import arn, now, write_json_atomically
from pipelines.scoring import MAX_PAYLOAD_MB, transform_request

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_DRAIN_LIMIT = 256 * 1024 * 1024  # read (and drop) an oversized body up to this, so the client sees the 413
_CHUNK = 64 * 1024
_ENDPOINT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class LocalEndpointError(ValueError):
    """A local registry, endpoint or scoring request that cannot be carried out; the message says why
    (deploy.py reports it without a traceback, exit status 2)."""


def _container(package: dict) -> dict:
    containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
    if not containers or not containers[0].get("ModelDataUrl"):
        raise LocalEndpointError(f"{package['ModelPackageArn']} has no container with a ModelDataUrl to serve")
    return containers[0]


# --- local endpoints (a record of what each serves) -----------------------------------------------


def deploy(home: LocalHome, package: dict, *, endpoint_name: str, instance_type: str) -> dict:
    """Point the local endpoint `endpoint_name` at `package` through a NEW endpoint config.

    Nothing runs until `serve --local --endpoint-name N`; the record keeps every config, newest last.
    """
    path = _endpoint_path(home, endpoint_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Read-modify-write under an exclusive lock: two deploys at once must both land in EndpointConfigs.
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        existing, config = _add_config(path, home, package, endpoint_name, instance_type)
    return {"Action": "updated" if existing else "created", "EndpointName": endpoint_name,
            "EndpointConfigName": config["EndpointConfigName"], "ModelName": config["ModelName"],
            "PreviousEndpointConfigName": existing and existing["EndpointConfigName"],
            "ModelPackageArn": package["ModelPackageArn"]}


def _add_config(path: Path, home: LocalHome, package: dict, endpoint_name: str, instance_type: str):
    """(the record before, the new config): appends a config to the record at `path`, written atomically."""
    existing = json.loads(path.read_text()) if path.is_file() else None
    created = now()
    used = {c["EndpointConfigName"] for c in (existing or {}).get("EndpointConfigs", [])}
    suffix = packages.stamp()
    while packages.unique_name(endpoint_name, suffix) in used:  # deployed within the same millisecond
        time.sleep(0.001)
        suffix = packages.stamp()
    config = {
        "EndpointConfigName": packages.unique_name(endpoint_name, suffix),
        "ModelName": packages.unique_name(endpoint_name, f"v{package['ModelPackageVersion']}-{suffix}"),
        "ModelPackageArn": package["ModelPackageArn"],
        "InstanceType": instance_type,
        "CreationTime": created,
    }
    record = {
        "EndpointName": endpoint_name,
        "EndpointArn": arn(home, "endpoint", endpoint_name),
        "EndpointConfigName": config["EndpointConfigName"],
        "ModelPackageArn": package["ModelPackageArn"],
        "CreationTime": existing["CreationTime"] if existing else created,
        "LastModifiedTime": created,
        "EndpointConfigs": [*(existing or {}).get("EndpointConfigs", []), config],
    }
    write_json_atomically(path, record)
    return existing, config


def endpoint_record(home: LocalHome, endpoint_name: str) -> dict | None:
    path = _endpoint_path(home, endpoint_name)
    return json.loads(path.read_text()) if path.is_file() else None


def _endpoint_path(home: LocalHome, endpoint_name: str) -> Path:
    if not _ENDPOINT_NAME.match(endpoint_name):
        raise LocalEndpointError(f"endpoint name {endpoint_name!r}: use 1 to 63 letters, digits and hyphens")
    return home.root / "endpoints" / f"{endpoint_name}.json"


# --- the model on disk ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFiles:
    model_dir: Path  # /opt/ml/model: the unpacked model.tar.gz
    code_dir: Path  # where the inference program lives (SAGEMAKER_SUBMIT_DIRECTORY)
    program: str | None  # SAGEMAKER_PROGRAM; None: the built-in XGBoost algorithm
    env: dict  # the container's environment, /opt/ml paths mapped to `root`
    code_path: str  # `code_dir` as the container sees it
    container_env: dict  # the container's environment as written


def unpack(store, package: dict, root: Path) -> ModelFiles:
    """Lay the package's container out under `root` (playing /opt/ml), as a serving container sees it."""
    container = _container(package)
    env = dict(container.get("Environment") or {})
    program = env.get("SAGEMAKER_PROGRAM")  # none: the built-in XGBoost algorithm's handlers serve the model
    model_dir = root / "model"
    _extract(store, container["ModelDataUrl"], model_dir)
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or "/opt/ml/model/code"
    if submit.startswith("s3://"):
        code_dir, submit = root / "code", "/opt/ml/code"
        _extract(store, env["SAGEMAKER_SUBMIT_DIRECTORY"], code_dir)
    else:
        try:
            code_dir = host_path(root, submit)
        except ValueError as e:
            raise LocalEndpointError(f"SAGEMAKER_SUBMIT_DIRECTORY: {e}") from None
    if program and not (code_dir / program).is_file():
        raise LocalEndpointError(f"{package['ModelPackageArn']}: inference program {program!r} is not in "
                                 f"{env.get('SAGEMAKER_SUBMIT_DIRECTORY') or submit} of the model")
    return ModelFiles(model_dir, code_dir, program, {k: map_container_paths(v, root) for k, v in env.items()},
                      submit, env)


def _extract(store, uri: str, dest: Path) -> None:
    try:
        data = store.get_bytes(uri)
    except (FileNotFoundError, ValueError) as e:
        raise LocalEndpointError(f"cannot read the model artifact: {e}") from None
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            archive.extractall(dest, filter="data")  # refuses members that would land outside dest
    except tarfile.TarError as e:
        raise LocalEndpointError(f"cannot unpack {uri}: {e}") from None


# --- the inference server -------------------------------------------------------------------------


def load_app(store, package: dict, root: Path, *, max_payload_mb: float = MAX_PAYLOAD_MB) -> serving.InferenceApp:
    """Unpack `package` under `root`, import its inference program and load the model (once), in this
    process and its Python: a test's or a benchmark's shortcut past HTTP. `serve_package` serves the same
    app from the model's image, as SageMaker does."""
    files = unpack(store, package, root)
    os.environ.update(files.env)  # the container's environment, for handlers that read it
    handlers = serving.load_handlers(files.model_dir, files.code_dir, files.program)
    model = handlers.load_model()
    return serving.InferenceApp(handlers, model, max_payload_bytes=int(max_payload_mb * 1024 * 1024),
                                description=package["ModelPackageArn"],
                                default_accept=files.env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"))


def serve_package(home: LocalHome, package: dict, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  max_payload_mb: float = MAX_PAYLOAD_MB, announce=print, job_env: str | None = None,
                  isolation: str = "auto") -> None:
    """`deploy.py serve --local`: the model's serving container until stopped (Ctrl-C or SIGTERM). As a
    job's host: `serving.py --serve` on the Python of the model's image (`job_env`, default
    `$PIPELINES_JOB_ENV`, else "image"), in a private filesystem with the model at /opt/ml/model,
    starting in the image's working directory, listening on `host`:`port` of this machine."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: listening on {host}: whoever reaches this port can call the model "
                 f"(the local endpoint has no authentication)")
    try:
        image = image_for(_container(package).get("Image"))
    except UnknownImage as e:
        raise LocalEndpointError(f"{package['ModelPackageArn']}: {e}") from None
    folder = home.root / "serving" / packages.unique_name(f"v{package['ModelPackageVersion']}", packages.stamp())
    previous = signal.signal(signal.SIGTERM, _stop)  # so that the folder below goes, as on Ctrl-C
    try:
        files = unpack(local_store(home), package, folder / "algo-1")
        chosen = job_python(image, job_env or default_job_env(), on_build=announce)
        for line in chosen.log_lines:
            print(line, file=sys.stderr, flush=True)
        argv = [chosen.python, "-P", serving.__file__, "--serve", "--model-dir", "/opt/ml/model",
                "--code-dir", files.code_path, *(["--program", files.program] if files.program else []),
                "--host", host, "--port", str(port), "--max-payload-mb", str(max_payload_mb),
                "--description", package["ModelPackageArn"]]
        run = HostRun("algo-1", folder / "algo-1", argv, {**files.container_env, "PYTHONUNBUFFERED": "1",
                                                          **chosen.environment()},
                      cwd=image.workdir, keep=chosen.directories())
        version = f"v{package['ModelPackageVersion']}, {package['ModelApprovalStatus']}"

        def show(_, line: str) -> None:
            if line.startswith(serving.READY):
                announce(f"serving {package['ModelPackageArn']} ({version}) on {line[len(serving.READY):]} "
                         f"(POST /invocations, GET /ping; Ctrl-C stops)")
            else:
                print(line, file=sys.stderr, flush=True)

        try:
            (exit_,) = run_hosts([run], isolation=isolation, log_path=folder / "serve.log", on_line=show)
        except IsolationError as e:
            raise LocalEndpointError(str(e)) from None
        if exit_.returncode != 0:
            raise LocalEndpointError(f"the model server ended (exit status {exit_.returncode}, reason above): if "
                                     f"{host}:{port} is taken or not this machine's, choose a free --port and an "
                                     f"address of this machine for --host")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the server stopped, as asked
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(signum, frame):
    raise KeyboardInterrupt


def local_store(home: LocalHome):
    from pipelines.local.storage import open_store

    return open_store(None, root=home.s3)


# --- clients --------------------------------------------------------------------------------------


def post(url: str, body: bytes, *, content_type: str = "text/csv", accept: str = "text/csv",
         timeout: float = 60, start: str = "python deploy.py serve --local") -> bytes:
    """POST `body` to a local server's /invocations; the response body, or the server's message (with
    `start`, the command that starts a server, when none answers)."""
    target = url.rstrip("/") + "/invocations"
    request = urllib.request.Request(target, data=body, method="POST",
                                     headers={"Content-Type": content_type, "Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail)["message"]
        except (ValueError, KeyError, TypeError):
            pass
        raise LocalEndpointError(f"{target} answered {e.code}: {detail}") from None
    except urllib.error.URLError as e:
        raise LocalEndpointError(f"no endpoint answers at {url} ({e.reason}): start one with `{start}`") from None


def batch_transform(home: LocalHome, store, package: dict, *, input_uri: str, output_uri: str | None,
                    output_root: str, instance_type: str) -> dict:
    """Score an s3:// prefix or object of the local store with the local runner's Transform job (the
    same request SageMaker gets), into `output_uri` (default `<output_root>/<job name>`). Returns its
    Describe response."""
    container = _container(package)
    job_name = packages.unique_name(f"{package['ModelPackageGroupName']}-v{package['ModelPackageVersion']}",
                                     packages.stamp())
    model = {"ModelName": job_name, "PrimaryContainer": {k: container[k] for k in ("Image", "ModelDataUrl",
                                                                                   "Environment") if k in container}}
    output_uri = output_uri or f"{output_root}/{job_name}"
    request = transform_request(job_name, job_name, input_uri, output_uri, instance_type=instance_type)
    work_dir = home.root / "transforms" / job_name
    work_dir.mkdir(parents=True)
    ctx = jobs.JobContext(store=store, work_dir=work_dir, log_path=work_dir / "transform.log", region=home.region,
                          account=home.account, models={job_name: model})
    try:
        return jobs.run_transform(job_name, request, ctx)
    except jobs.JobFailed as e:
        raise LocalEndpointError(f"batch transform {job_name} failed: {e.reason} (log: {ctx.log_path})") from None
