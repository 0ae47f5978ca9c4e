"""The inference host: a user's inference program behind SageMaker's handler contract.

`load_handlers` imports ``model_fn``, ``input_fn``, ``predict_fn``, ``output_fn``
(or a single ``transform_fn``) from the program, filling in defaults for the
missing ones as the SageMaker inference toolkit and the XGBoost serving
container do; without a program it serves a model of the built-in XGBoost
algorithm as that container's algorithm mode does (`builtin_handlers`);
`invoke` serves one request, and `InferenceApp` is the HTTP side of the contract (``GET /ping``,
``POST /invocations``). This file is the serving container's process: batch transform runs it over
files (``python -P serving.py ...``), `serve --local` runs it as a server (``--serve``), both in the
model's image environment and private filesystem, like any job; so it depends on the standard
library only (numpy and xgboost are imported by the defaults that need them, gunicorn by the server
if the environment has it, as the images do).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import pickle
import sys
import threading
import traceback
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

_UTF8_TYPES = ("application/json", "text/csv")  # bodies the toolkit hands over as str
DEFAULT_CONTENT_TYPE = "application/json"
READY = "[local runner] serving on "  # what the server prints once it listens, then its URL
_DRAIN_LIMIT = 256 * 1024 * 1024  # read (and drop) an oversized body up to this, so the client sees the 413
_CHUNK = 64 * 1024


def _media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def default_model_fn(model_dir: str):
    """The XGBoost container's default: the one booster file saved in ``model_dir``."""
    import xgboost

    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file())
    named = [p for p in files if p.name == "xgboost-model"]
    if not (named or len(files) == 1):
        raise RuntimeError(
            f"no model_fn in the inference program and {model_dir} does not hold exactly one "
            f"model file (found {[p.name for p in files]}): define model_fn(model_dir)"
        )
    booster = xgboost.Booster()
    booster.load_model(str((named or files)[0]))
    return booster


def default_input_fn(data, content_type: str):
    """Decode CSV, JSON or NPY into a numpy array."""
    import numpy as np

    media = _media_type(content_type)
    if media == "text/csv":
        return np.loadtxt(io.StringIO(data), delimiter=",", ndmin=2)
    if media == "application/json":
        return np.array(json.loads(data))
    if media == "application/x-npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    raise ValueError(f"unsupported content type {content_type!r}: define input_fn in the inference program")


def default_predict_fn(data, model):
    """``model.predict(data)``; an xgboost Booster gets the DMatrix it needs."""
    if type(model).__name__ == "Booster" and type(data).__name__ != "DMatrix":
        import xgboost

        data = xgboost.DMatrix(data)
    return model.predict(data)


def default_output_fn(prediction, accept: str):
    """Encode an array as CSV (one row per line), JSON or NPY."""
    import numpy as np

    array = np.asarray(prediction)
    media = _media_type(accept)
    if media == "text/csv":
        return "".join(",".join(str(v) for v in np.atleast_1d(row)) + "\n" for row in array)
    if media == "application/json":
        return json.dumps(array.tolist())
    if media == "application/x-npy":
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()
    raise ValueError(f"unsupported accept type {accept!r}: define output_fn in the inference program")


# --- the built-in XGBoost algorithm (aws/sagemaker-xgboost-container, algorithm_mode/serve*.py) ---

BUILTIN_ACCEPT = "text/csv"  # its default, unless SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT says otherwise


def builtin_model_fn(model_dir: str):
    """The first model file: a pickled Booster (images before 1.3-1), else one Booster.load_model reads."""
    import xgboost

    files = sorted(p for p in Path(model_dir).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise RuntimeError(f"no model file in {model_dir}")
    try:
        with open(files[0], "rb") as f:
            return pickle.load(f)
    except Exception:  # not a pickle: the container then tries xgboost's own format
        booster = xgboost.Booster()
        booster.load_model(str(files[0]))
        return booster


def builtin_input_fn(data, content_type: str):
    """text/csv rows of features (no label, no header) or text/libsvm lines, as a DMatrix."""
    import numpy as np
    import xgboost

    media = _media_type(content_type)
    text = data if isinstance(data, str) else data.decode("utf-8")
    if media == "text/csv":
        return xgboost.DMatrix(np.loadtxt(io.StringIO(text.strip()), delimiter=",", ndmin=2))
    if media in ("text/libsvm", "text/x-libsvm"):  # index:value items, column = index as written; a label is skipped
        from scipy.sparse import csr_matrix

        cells = [(row, int(index), float(value)) for row, line in enumerate(text.strip().split("\n"))
                 for item in line.split() if ":" in item for index, value in [item.split(":", 1)]]
        rows, columns, values = zip(*cells) if cells else ((), (), ())
        return xgboost.DMatrix(csr_matrix((values, (rows, columns))))
    raise ValueError(f"Content-type {content_type} is not supported by the built-in XGBoost algorithm "
                     "(use text/csv or text/libsvm)")


def builtin_output_fn(prediction, accept: str):
    """text/csv: one prediction per line; application/json: {"predictions": [{"score": ...}]}; jsonlines."""
    import numpy as np

    rows = np.asarray(prediction).tolist()
    media = _media_type(accept)
    if media == "text/csv":
        return default_output_fn(prediction, accept)
    if media == "application/json":
        return json.dumps({"predictions": [{"score": row} for row in rows]})
    if media == "application/jsonlines":
        return "".join(json.dumps({"score": row}) + "\n" for row in rows)
    raise ValueError(f"Accept type {accept} is not supported by the built-in XGBoost algorithm "
                     "(use text/csv, application/json or application/jsonlines)")


@dataclass
class Handlers:
    model_dir: str
    model_fn: Callable
    input_fn: Callable
    predict_fn: Callable
    output_fn: Callable
    transform_fn: Callable | None = None

    def load_model(self):
        return self.model_fn(self.model_dir)


def load_handlers(model_dir, code_dir, program: str | None) -> Handlers:
    """Import ``program`` (e.g. ``inference.py``) from ``code_dir`` with its siblings importable;
    no program: the built-in XGBoost algorithm's handlers."""
    if not program:
        return Handlers(str(model_dir), builtin_model_fn, builtin_input_fn, default_predict_fn, builtin_output_fn)
    path = Path(code_dir) / program
    if not path.is_file():
        raise FileNotFoundError(f"inference program {program!r} not found in {code_dir}")
    if str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Handlers(
        model_dir=str(model_dir),
        model_fn=getattr(module, "model_fn", default_model_fn),
        input_fn=getattr(module, "input_fn", default_input_fn),
        predict_fn=getattr(module, "predict_fn", default_predict_fn),
        output_fn=getattr(module, "output_fn", default_output_fn),
        transform_fn=getattr(module, "transform_fn", None),
    )


def invoke(handlers: Handlers, model, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
    """Serve one request: -> (response body, response content type)."""
    data = body.decode("utf-8") if _media_type(content_type) in _UTF8_TYPES else body
    if handlers.transform_fn is not None:
        result = handlers.transform_fn(model, data, content_type, accept)
    else:
        prediction = handlers.predict_fn(handlers.input_fn(data, content_type), model)
        result = handlers.output_fn(prediction, accept)
    response, response_type = result if isinstance(result, tuple) else (result, accept)
    return (response.encode("utf-8") if isinstance(response, str) else bytes(response)), response_type


def payloads(stream: BinaryIO, split_type: str, batch_strategy: str, max_payload: int) -> Iterator[bytes]:
    """Cut one input object (a binary file, read as it goes) into request bodies as batch transform does.

    SplitType "Line" makes each non-blank line a record; MultiRecord packs as many
    records as fit in ``max_payload`` bytes (0: unlimited), SingleRecord sends one each.
    Only one body is held at a time, so memory is bounded by MaxPayloadInMB, not the object.
    """
    if split_type != "Line":
        data = stream.read(max_payload + 1) if max_payload else stream.read()  # no more than it can refuse
        if max_payload and len(data) > max_payload:
            raise ValueError(f"the object (SplitType None) is more than {max_payload} bytes, more than "
                             "MaxPayloadInMB allows; use SplitType Line, or a larger MaxPayloadInMB")
        yield data
        return
    batch: list[bytes] = []
    size = 0
    for record in (line.rstrip(b"\r\n") for line in stream):
        if not record.strip():
            continue
        _check_size(len(record), max_payload, "a record")
        if batch and (batch_strategy != "MultiRecord" or (max_payload and size + 1 + len(record) > max_payload)):
            yield b"\n".join(batch)
            batch, size = [], 0
        size += len(record) + (1 if batch else 0)
        batch.append(record)
    if batch:
        yield b"\n".join(batch)


def _check_size(size: int, max_payload: int, what: str) -> None:
    if max_payload and size > max_payload:
        raise ValueError(f"{what} is {size} bytes, more than MaxPayloadInMB allows ({max_payload} bytes)")


def transform_file(handlers: Handlers, model, src: Path, dst: Path, options: argparse.Namespace) -> int:
    """Score one input object into ``dst``, assembling responses one per line or as-is, streaming: one
    request body in memory at a time. Written under a temporary name, renamed once whole. -> bodies sent."""
    max_payload = int(options.max_payload_mb * 1024 * 1024)
    dst.parent.mkdir(parents=True, exist_ok=True)
    partial = dst.with_name(dst.name + ".partial")
    sent = 0
    with open(src, "rb") as stream, open(partial, "wb") as out:
        for body in payloads(stream, options.split_type, options.batch_strategy, max_payload):
            response, _ = invoke(handlers, model, body, options.content_type, options.accept)
            if options.assemble_with == "Line" and not response.endswith(b"\n"):
                response += b"\n"
            out.write(response)
            sent += 1
    os.replace(partial, dst)
    return sent


# --- the HTTP side: SageMaker's serving contract ------------------------------------------------


class InferenceApp:
    """A WSGI application with SageMaker's serving contract over loaded handlers and model: ``GET /ping``
    answers 200 once the model is loaded; ``POST /invocations`` takes a body up to `max_payload_bytes`
    (413 above) and honours Accept (the default when absent or ``*/*``). A payload the handlers refuse
    (ValueError: bad CSV or JSON, a missing column) is a 4xx with a JSON message; a bug in them, a 500."""

    def __init__(self, handlers: Handlers, model, *, max_payload_bytes: int, description: str = "",
                 default_accept: str | None = None):
        self.handlers, self.model = handlers, model
        self.max_payload_bytes = max_payload_bytes
        self.description = description
        self.default_accept = default_accept or DEFAULT_CONTENT_TYPE
        self.lock = threading.Lock()  # one prediction at a time per process; /ping never waits for it

    def __call__(self, environ, start_response):
        path, method = environ.get("PATH_INFO") or "/", environ["REQUEST_METHOD"]
        routes = {"/ping": (("GET", "HEAD"), self.ping), "/invocations": (("POST",), self.invocations)}
        if path not in routes:
            status, content_type, body = _error(404, f"no {path} here: SageMaker's contract is GET /ping and "
                                                     "POST /invocations")
        elif method not in routes[path][0]:
            status, content_type, body = _error(405, f"{path} takes {' or '.join(routes[path][0])}, not {method}")
        else:
            status, content_type, body = routes[path][1](environ)
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def ping(self, environ):
        return _json(200, {"status": "Healthy", "model": self.description})

    def invocations(self, environ):
        body = self._body(environ)
        if body is None:
            return _error(413, f"the payload is larger than {self.max_payload_bytes} bytes, the limit of this "
                               f"endpoint (SageMaker real-time endpoints take at most 6 MB): send fewer rows")
        content_type = environ.get("CONTENT_TYPE") or DEFAULT_CONTENT_TYPE
        accept = environ.get("HTTP_ACCEPT")
        if not accept or accept.strip() == "*/*":
            accept = self.default_accept  # as the SageMaker inference toolkit does
        try:
            with self.lock:
                output, output_type = invoke(self.handlers, self.model, body, content_type, accept)
        except ValueError as e:  # the handlers refused the payload (UnicodeDecodeError, JSONDecodeError, ...)
            message = str(e) or type(e).__name__
            lowered = message.lower()
            status = 415 if "content type" in lowered and "unsupported" in lowered else \
                406 if "accept" in lowered and "unsupported" in lowered else 400
            return _error(status, message)
        except Exception as e:  # a bug in the handlers: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            return _error(500, f"{type(e).__name__}: {e}")
        return 200, output_type, output

    def _body(self, environ) -> bytes | None:
        """The request body, or None when it exceeds the limit (then read and dropped, within reason)."""
        stream = environ["wsgi.input"]
        length = environ.get("CONTENT_LENGTH")
        left = int(length) if length else None  # without a length, the server ends the stream (chunked)
        if left is not None and left > self.max_payload_bytes:
            _drain(stream, min(left, _DRAIN_LIMIT))
            return None
        chunks, size = [], 0
        while left is None or size < left:
            chunk = stream.read(_CHUNK if left is None else min(_CHUNK, left - size))
            if not chunk:
                break
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


def _json(status: int, document: dict) -> tuple[int, str, bytes]:
    return status, "application/json", (json.dumps(document) + "\n").encode()


def _error(status: int, message: str) -> tuple[int, str, bytes]:
    return _json(status, {"error": HTTPStatus(status).phrase, "message": message})


def serve(app: InferenceApp, *, host: str, port: int, workers: int | None = None) -> None:
    """Serve until stopped, with gunicorn where the environment has it, as SageMaker's scikit-learn and
    XGBoost serving containers do: one worker process per core (or `$SAGEMAKER_MODEL_SERVER_WORKERS`, the
    containers' own setting), forked after the model is loaded, each answering on a few threads. Prints
    READY and the URL once it listens."""
    workers = workers or int(os.environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or os.cpu_count() or 1)
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

        class Threaded(ThreadingMixIn, WSGIServer):
            daemon_threads = True

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        with make_server(host, port, app, server_class=Threaded, handler_class=Quiet) as server:
            print(f"{READY}{_url(*server.socket.getsockname()[:2])}", flush=True)
            server.serve_forever()
        return

    class Server(BaseApplication):
        def load_config(self):
            settings = {"bind": bind, "workers": workers, "worker_class": "gthread", "threads": 4,
                        "preload_app": True, "loglevel": "warning", "accesslog": None, "timeout": 60,
                        "when_ready": lambda arbiter: print(
                            f"{READY}{_url(*arbiter.LISTENERS[0].sock.getsockname()[:2])}", flush=True)}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):
            return app

    Server().run()


def _url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def main(argv: list[str] | None = None) -> None:
    """The serving container: with --serve, an HTTP server; else batch transform over every file of
    --input-dir into <name>.out under --output-dir."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--code-dir", required=True)
    parser.add_argument("--program", help="the inference program; none: the built-in XGBoost algorithm")
    parser.add_argument("--serve", action="store_true", help="serve /ping and /invocations over HTTP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--description", default="", help="what /ping names")
    parser.add_argument("--input-dir", type=Path)
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--content-type", default=DEFAULT_CONTENT_TYPE)
    parser.add_argument("--accept", default=DEFAULT_CONTENT_TYPE)
    parser.add_argument("--split-type", default="None")
    parser.add_argument("--batch-strategy", default="MultiRecord")
    parser.add_argument("--max-payload-mb", type=float, default=6)
    parser.add_argument("--assemble-with", default="None")
    options = parser.parse_args(argv)
    handlers = load_handlers(options.model_dir, options.code_dir, options.program)
    model = handlers.load_model()
    if options.serve:
        default_accept = os.environ.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT") or \
            (DEFAULT_CONTENT_TYPE if options.program else BUILTIN_ACCEPT)
        serve(InferenceApp(handlers, model, max_payload_bytes=int(options.max_payload_mb * 1024 * 1024),
                           description=options.description, default_accept=default_accept),
              host=options.host, port=options.port)
        return
    if options.input_dir is None or options.output_dir is None:
        parser.error("batch transform needs --input-dir and --output-dir (or --serve)")
    for src in sorted(p for p in options.input_dir.rglob("*") if p.is_file()):
        rel = src.relative_to(options.input_dir)
        transform_file(handlers, model, src, options.output_dir / f"{rel}.out", options)
        print(f"transformed {rel}", flush=True)


if __name__ == "__main__":
    main()
