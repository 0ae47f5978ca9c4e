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
`pipelines.local.serving`, exactly as batch transform runs them, so the two score identically.
A payload the handlers refuse (ValueError: bad CSV or JSON, a missing column) is a 4xx with a
JSON message; a body above the limit (6 MB, as SageMaker's real-time endpoints) is a 413.
"""
from __future__ import annotations

import fcntl
import io
import json
import os
import re
import sys
import tempfile
import tarfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from pipelines import packages
from pipelines.local import jobs, serving
from pipelines.local.container import host_path, map_container_paths
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


def unpack(store, package: dict, root: Path) -> ModelFiles:
    """Lay the package's container out under `root` (playing /opt/ml), as a serving container sees it."""
    container = _container(package)
    env = dict(container.get("Environment") or {})
    program = env.get("SAGEMAKER_PROGRAM")  # none: the built-in XGBoost algorithm's handlers serve the model
    model_dir = root / "model"
    _extract(store, container["ModelDataUrl"], model_dir)
    submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY") or "/opt/ml/model/code"
    if submit.startswith("s3://"):
        code_dir = root / "code"
        _extract(store, submit, code_dir)
    else:
        try:
            code_dir = host_path(root, submit)
        except ValueError as e:
            raise LocalEndpointError(f"SAGEMAKER_SUBMIT_DIRECTORY: {e}") from None
    if program and not (code_dir / program).is_file():
        raise LocalEndpointError(f"{package['ModelPackageArn']}: inference program {program!r} is not in "
                                 f"{submit} of the model")
    return ModelFiles(model_dir, code_dir, program, {k: map_container_paths(v, root) for k, v in env.items()})


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


class InferenceApp:
    """A WSGI application with SageMaker's serving contract over loaded handlers and model."""

    def __init__(self, handlers: serving.Handlers, model, *, max_payload_bytes: int, description: str = "",
                 default_accept: str | None = None):
        self.handlers, self.model = handlers, model
        self.max_payload_bytes = max_payload_bytes
        self.description = description
        self.default_accept = default_accept or serving.DEFAULT_CONTENT_TYPE
        self.lock = threading.Lock()  # one prediction at a time; /ping never waits for it
        self.urls = Map([Rule("/ping", endpoint="ping", methods=["GET"]),
                         Rule("/invocations", endpoint="invocations", methods=["POST"])])

    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, _ = self.urls.bind_to_environ(environ).match()
            response = self.ping() if endpoint == "ping" else self.invocations(request)
        except HTTPException as e:
            response = _error(e.code, e.description)
        return response(environ, start_response)

    def ping(self):
        return _json(200, {"status": "Healthy", "model": self.description})

    def invocations(self, request):
        body = self._body(request)
        if body is None:
            return _error(413, f"the payload is larger than {self.max_payload_bytes} bytes, the limit of this "
                               f"endpoint (SageMaker real-time endpoints take at most 6 MB): send fewer rows")
        content_type = request.headers.get("Content-Type") or serving.DEFAULT_CONTENT_TYPE
        accept = request.headers.get("Accept")
        if not accept or accept.strip() == "*/*":
            accept = self.default_accept  # as the SageMaker inference toolkit does
        try:
            with self.lock:
                output, output_type = serving.invoke(self.handlers, self.model, body, content_type, accept)
        except ValueError as e:  # the handlers refused the payload (UnicodeDecodeError, JSONDecodeError, ...)
            message = str(e) or type(e).__name__
            lowered = message.lower()
            status = 415 if "content type" in lowered and "unsupported" in lowered else \
                406 if "accept" in lowered and "unsupported" in lowered else 400
            return _error(status, message)
        except Exception as e:  # a bug in the handlers: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            return _error(500, f"{type(e).__name__}: {e}")
        return Response(output, status=200, content_type=output_type)

    def _body(self, request) -> bytes | None:
        """The request body, or None when it exceeds the limit (then read and dropped, within reason)."""
        stream = request.stream
        if request.content_length is not None and request.content_length > self.max_payload_bytes:
            _drain(stream, min(request.content_length, _DRAIN_LIMIT))
            return None
        chunks, size = [], 0
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > self.max_payload_bytes:
                _drain(stream, _DRAIN_LIMIT)
                return None
            chunks.append(chunk)
        return b"".join(chunks)


def _drain(stream, limit: int) -> None:
    read = 0
    while read < limit and (chunk := stream.read(min(_CHUNK, limit - read))):
        read += len(chunk)


def _json(status: int, document: dict):
    return Response(json.dumps(document) + "\n", status=status, content_type="application/json")


def _error(status: int, message: str):
    return _json(status, {"error": HTTPStatus(status).phrase, "message": message})


def load_app(store, package: dict, root: Path, *, max_payload_mb: float = MAX_PAYLOAD_MB) -> InferenceApp:
    """Unpack `package` under `root`, import its inference program and load the model (once)."""
    files = unpack(store, package, root)
    os.environ.update(files.env)  # the container's environment, for handlers that read it
    handlers = serving.load_handlers(files.model_dir, files.code_dir, files.program)
    model = handlers.load_model()
    return InferenceApp(handlers, model, max_payload_bytes=int(max_payload_mb * 1024 * 1024),
                        description=package["ModelPackageArn"],
                        default_accept=files.env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"))


def serve(app: InferenceApp, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, on_ready=None,
          workers: int | None = None) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM) with gunicorn, as SageMaker's scikit-learn and XGBoost
    serving containers do: one worker process per core (or `$SAGEMAKER_MODEL_SERVER_WORKERS`, the
    containers' own setting), forked after the model is loaded (so it loads once), each answering on a
    few threads, so predictions run on every core. `on_ready(url)` once it listens."""
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):
        def load_config(self):
            settings = {"bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                        "workers": workers or int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1),
                        "worker_class": "gthread", "threads": 4,
                        "preload_app": True, "loglevel": "warning", "accesslog": None, "timeout": 60,
                        "when_ready": lambda arbiter: on_ready and on_ready(_url(arbiter)),
                        "proc_name": "deploy.py-serve"}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    master = os.getpid()
    try:
        Server().run()
    except SystemExit as e:
        if os.getpid() != master:  # a worker ending: leave the master's clean-up (the model folder) to it
            os._exit(e.code if isinstance(e.code, int) else 1)
        if e.code not in (0, None):
            raise LocalEndpointError(f"cannot serve on {host}:{port} (reason above): choose a free --port "
                                     f"and an address of this machine for --host") from None


def _url(arbiter) -> str:
    host, port = arbiter.LISTENERS[0].sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def serve_package(home: LocalHome, package: dict, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  max_payload_mb: float = MAX_PAYLOAD_MB, announce=print) -> None:
    """`deploy.py serve --local`: load `package` once, then serve it until stopped."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"warning: listening on {host}: whoever reaches this port can call the model "
                 f"(the local endpoint has no authentication)")
    store = local_store(home)
    with tempfile.TemporaryDirectory(prefix="endpoint-") as root:
        app = load_app(store, package, Path(root), max_payload_mb=max_payload_mb)
        version = f"v{package['ModelPackageVersion']}, {package['ModelApprovalStatus']}"
        serve(app, host=host, port=port,
              on_ready=lambda url: announce(f"serving {package['ModelPackageArn']} ({version}) on {url} "
                                            f"(POST /invocations, GET /ping; Ctrl-C stops)"))


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
