"""Serving at the floor: the model's own cost per request, the local endpoint under load, batch transform.

Prepares a fresh home (one small local run without tuning, then `approve latest --local`), then:

- in process (the app itself, no HTTP, in this Python): one CSV request of --rows sessions by stage (reading and
  featurising on the fast path and on the frame path, the served model, the whole handler), and the floor:
  the faster of the served model and the fold models' own predict on the prepared array, with the ratio of
  the whole request to it;
- the endpoint: starts `deploy.py serve --local` on 127.0.0.1 (a free port) as its own process and, for
  each of --clients x --rows-list, sends exactly --requests POST /invocations from that many client threads
  of this process, each a CSV with a header, each timed. Bounded: a request gives up after 30 s and each
  load stops at --deadline seconds (what was not sent is reported). The server is stopped afterwards;
- batch transform (--batch-rows, 0 for none): the serving container's process (`serving.py`, on the Python
  of the model's image environment, or this one with PIPELINES_JOB_ENV=host)
  over one CSV object of that many generated sessions, SplitType Line, BatchStrategy MultiRecord,
  MaxPayloadInMB 6; its rows/s and peak memory (its own maximum resident set), against the floor on the
  same rows' prepared array.

Writes the section "## Serving at the floor: families <--families>" of docs/benchmarks.md with the machine
and this command.

    python benchmarks/serving_load.py [--requests 1000] [--clients 1,4,16] [--rows 10] [--rows-list 1,10,100]
        [--batch-rows 100000,1000000] [--families auto] [--deadline 300] [--no-write]
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server gets it (`_env`), for the in-process figure
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.doc import machine, write_section  # noqa: E402
from fixtures.servers import serving  # noqa: E402
from examples.purchase_intent.shoppers_data import generate, write_csv  # noqa: E402

HEADING = "Serving at the floor"  # one section per families setting
TIMEOUT = 30.0  # seconds one request may take
TARGET_P99_MS, TARGET_RPS = 50.0, 300.0


def deploy(home: Path, *args: str) -> str:
    """`python deploy.py ARGS --home HOME`; its stdout, or exit with what it said."""
    done = subprocess.run([sys.executable, "deploy.py", *args, "--home", str(home)], cwd=ROOT, env=_env(),
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"deploy.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PIPELINES_LOCAL_HOME"}
    return {**env, "SAGEMAKER_SUPPRESS_V2_WARNING": "1", "OMP_WAIT_POLICY": "PASSIVE"}


def prepare(home: Path, data: Path, families: str) -> None:
    """A registered and approved model in `home`, as a user gets one."""
    summary = json.loads(deploy(home, "run", "--local", "--json", "--definition", "examples/purchase_intent",
                                "--no-tuning", "--input-data", str(data),
                                "--families", families, "-p", "QualityThreshold=0.5"))
    if summary["status"] != "Succeeded":
        raise SystemExit(f"the preparing run failed: {summary['failure_reason']}")
    deploy(home, "approve", "latest", "--local")


@dataclass
class Load:
    """The requests still to send, and what the clients saw: one latency per answered request, every error by kind."""

    remaining: int
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    unsent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, deadline: float) -> bool:
        """Whether to send one more request: not once all were sent, nor past the deadline (the rest are unsent)."""
        with self.lock:
            if self.remaining and time.monotonic() > deadline:
                self.unsent, self.remaining = self.remaining, 0
            if not self.remaining:
                return False
            self.remaining -= 1
            return True

    def record(self, seconds: float, error: str | None) -> None:
        with self.lock:
            if error:
                self.errors[error] = self.errors.get(error, 0) + 1
            else:
                self.latencies.append(seconds)


def client(port: int, body: bytes, rows: int, load: Load, deadline: float) -> None:
    """Send requests while `load` has some left, over one kept-alive connection (a new one after an error)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    while load.take(deadline):
        started = time.perf_counter()
        try:
            connection.request("POST", "/invocations", body, {"Content-Type": "text/csv", "Accept": "text/csv"})
            response = connection.getresponse()
            answer = response.read()
            error = None if response.status == 200 else f"HTTP {response.status}"
            if error is None and len(answer.decode().split()) != rows:
                error = "wrong number of predictions"
        except (OSError, http.client.HTTPException) as e:
            error = type(e).__name__
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        load.record(time.perf_counter() - started, error)


def run_load(port: int, body: bytes, rows: int, requests: int, clients: int, deadline_s: float) -> tuple[Load, float]:
    """`requests` requests from `clients` threads; what they saw and the wall seconds it took."""
    load = Load(remaining=requests)
    started, deadline = time.perf_counter(), time.monotonic() + deadline_s
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client, port, body, rows, load, deadline) for _ in range(clients)]:
            future.result()
    return load, time.perf_counter() - started


def median_ms(call, reps: int) -> float:
    """Median milliseconds of `call()` over `reps` calls, after a few to warm up."""
    for _ in range(min(10, reps)):
        call()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - started))
    return sorted(times)[len(times) // 2]


def loaded(home: Path, root: Path):
    """(the app as one worker loads it in this Python, the unpacked model's files, the Python of the model's
    image environment) of the home's approved package."""
    from pipelines.local import endpoint
    from pipelines.local.registry import Registry

    registry = Registry.of(endpoint.LocalHome(home))
    package = registry.latest(registry.list_groups()[0]["ModelPackageGroupName"], "Approved")
    store = endpoint.local_store(endpoint.LocalHome(home))
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        app = endpoint.load_app(store, package, root)
    app.log = log.getvalue().splitlines()
    image = endpoint.image_for(endpoint._container(package).get("Image"))
    return app, endpoint.unpack(store, package, root / "batch"), endpoint.job_python(image, endpoint.default_job_env())


def crossover(app, data: Path, sizes=(1, 10, 100, 1000, 2000, 5000)) -> list[tuple[int, float, float]]:
    """[(rows, fast path ms, frame path ms)]: reading and featurising CSV bodies of each size both ways, which
    sets inference.FAST_ROWS (the size above which the frame path is cheaper)."""
    model = app.model
    inference = SimpleNamespace(**app.handlers.predict_fn.__globals__)
    spec = model["features"]
    out = []
    for rows in sizes:
        text = csv_body(data, rows).decode()
        reps = 30 if rows <= 1000 else 7
        out.append((rows, median_ms(lambda: spec.transform_columns(*inference._csv_columns(text, spec)), reps),
                    median_ms(lambda: spec.transform(inference.input_fn(text, inference.CSV).rows(spec)), reps)))
    return out


def own_predict(model, x32):
    """A call of the fold models' own predict on the prepared float32 array: XGBoost boosters by
    inplace_predict (no DMatrix), the other families by their own predict (the model as trained)."""
    ensemble = model["ensemble"]
    families = sys.modules[type(ensemble.served).__module__]

    def call():
        for name, members in ensemble.members.items():
            if name == "xgboost":
                for b in members:
                    b.inplace_predict(x32, validate_features=False)
            else:
                families.predict(name, members, x32, ensemble.task)
    return call


def stages(app, body: bytes, reps: int) -> dict[str, float]:
    """Median milliseconds of one request's stages in process (the app's own handlers and model)."""
    from pipelines.local import serving as host
    from werkzeug.test import Client

    handlers, model = app.handlers, app.model
    inference = SimpleNamespace(**handlers.predict_fn.__globals__)  # the program as the worker imported it
    text, spec = body.decode(), model["features"]
    x = inference.input_fn(text, inference.CSV).features(spec)[0]
    x32 = x.astype("float32")
    client = Client(app)
    headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
    return {
        "whole request through the app (WSGI, no network)": median_ms(
            lambda: client.post("/invocations", data=body, headers=headers), reps),
        "handlers: input_fn, predict_fn, output_fn": median_ms(
            lambda: host.invoke(handlers, model, body, "text/csv", "text/csv"), reps),
        "reading and featurising, fast path": median_ms(
            lambda: spec.transform_columns(*inference._csv_columns(text, spec)), reps),
        "reading and featurising, frame path": median_ms(
            lambda: spec.transform(inference.input_fn(text, inference.CSV).rows(spec)), reps),
        "the model, served (one booster call for every tree family)": median_ms(
            lambda: model["ensemble"].predict(x), reps),
        "the fold models, each by its own predict, on the prepared array": median_ms(own_predict(model, x32), reps),
    }


def batch_transform(files, python, data: Path, out: Path) -> dict:
    """The serving container's batch transform over `data` (one object) in its own process, on the Python of
    the model's image environment: seconds, peak MiB."""
    argv = ["serving.py", "--model-dir", str(files.model_dir), "--code-dir", str(files.code_dir), "--program",
            files.program, "--input-dir", str(data.parent), "--output-dir", str(out), "--content-type", "text/csv",
            "--accept", "text/csv", "--split-type", "Line", "--batch-strategy", "MultiRecord", "--max-payload-mb",
            "6", "--assemble-with", "Line"]
    script = ROOT / "pipelines" / "local" / "serving.py"
    program = (f"import resource, runpy, sys; sys.argv = {argv!r}; runpy.run_path({str(script)!r}, "
               "run_name='__main__'); print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    started = time.perf_counter()
    done = subprocess.run([python.python, "-c", program], env={**_env(), **python.environment()},
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"batch transform failed ({done.returncode}):\n{done.stderr[-3000:]}")
    peak = int(done.stdout.rsplit("peak", 1)[1]) / 1024
    lines = sum(1 for _ in open(out / f"{data.name}.out", "rb"))
    return {"seconds": seconds, "peak_mib": peak, "predictions": lines}


def batch_floor(app, data: Path) -> float:
    """Seconds of the model's predictions on all of `data`'s rows, prepared (not timed) as one array: the
    faster of the served model and the fold models' own predict (the floor)."""
    import pandas as pd

    spec = app.model["features"]
    x32 = spec.transform(pd.read_csv(data, dtype=str))[0].to_numpy(dtype="float32")
    seconds = []
    for call in (lambda: app.model["ensemble"].predict(x32), own_predict(app.model, x32)):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def latency_columns(seconds: list[float]) -> str:
    """p50 | p99 | max, in milliseconds."""
    if not seconds:
        return "- | - | -"
    ms = sorted(1000 * s for s in seconds)
    return " | ".join(f"{ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]:.1f}" for q in (0.50, 0.99, 1.0))


def csv_body(data: Path, rows: int) -> bytes:
    """One request's body: the header and the first `rows` sessions of `data`."""
    with open(data, newline="") as f:
        table = [row for _, row in zip(range(rows + 1), csv.reader(f))]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue().encode()


def report(args, command: str, cost: dict, loads: list, batches: list, families: list[str], facts) -> str:
    """The section. facts: (families served by their own predict in this Python, the same in the endpoint,
    FAST_ROWS, crossover's figures)."""
    whole = cost["handlers: input_fn, predict_fn, output_fn"]
    bottom = min(cost["the model, served (one booster call for every tree family)"],
                 cost["the fold models, each by its own predict, on the prepared array"])
    lines = [
        f"Measured {date.today()} on {machine()} (a shared machine: the figures are noisy; load averages beside"
        " each).", "",
        f"The model: a local run without tuning on 1,000 generated sessions, families {', '.join(families)}"
        f" (cross-fitted), served by its own `inference.py`. Tree families served by their own predict instead of"
        f" the merged booster (its check at load): in this Python {', '.join(facts[0])}; in the endpoint's"
        f" environment {', '.join(facts[1])}.", "",
        f"### One request of {args.rows} sessions in process (median of {args.reps})", "",
        "| stage | ms |", "|---|---|",
        *[f"| {stage} | {ms:.3f} |" for stage, ms in cost.items()], "",
        f"The handlers cost {whole:.2f} ms, {whole / bottom:.1f}x the floor ({bottom:.3f} ms: the faster of the"
        " served model and the fold models' own predict on the prepared array)."
        f" Target: <= 2 ms and within 5x the floor: **{'met' if whole <= 2 and whole <= 5 * bottom else 'missed'}**.",
        "", f"Reading and featurising by request size (the fast path serves up to FAST_ROWS rows,"
        f" {facts[2]}):", "", "| rows | fast path ms | frame path ms |", "|---|---|---|",
        *[f"| {rows:,} | {fast:.2f} | {frame:.2f} |" for rows, fast, frame in facts[3]],
        "", "### The endpoint under load", "",
        "`deploy.py serve --local` (gunicorn: a worker process per core, as SageMaker's serving containers run it;"
        f" one prediction at a time per worker; jobs' environment: {os.environ.get('PIPELINES_JOB_ENV') or 'image'})"
        " on 127.0.0.1; POST /invocations, each a CSV with a header, from client threads of a second process,"
        " each over one kept-alive connection.", "",
        "| clients | rows/request | sent | answered 200 | errors | not sent | p50 ms | p99 ms | max ms | requests/s |"
        " rows/s | load |", "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, rows, load, wall, before in loads:
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(load.errors.items())) or "none"
        lines.append(f"| {clients} | {rows} | {args.requests - load.unsent} | {len(load.latencies)} | {errors} |"
                     f" {load.unsent} | {latency_columns(load.latencies)} | {len(load.latencies) / wall:.0f} |"
                     f" {len(load.latencies) * rows / wall:.0f} | {before:.1f} |")
    target = [(load, wall) for clients, rows, load, wall, _ in loads if clients == 4 and rows == 10]
    if target:
        load, wall = target[0]
        p99 = sorted(load.latencies)[round(0.99 * (len(load.latencies) - 1))] * 1000 if load.latencies else float("inf")
        met = p99 <= TARGET_P99_MS and len(load.latencies) / wall >= TARGET_RPS and not load.errors
        lines += ["", f"Target, 4 clients, 10 rows: p99 <= {TARGET_P99_MS:.0f} ms and >= {TARGET_RPS:.0f}"
                  f" requests/s: **{'met' if met else 'missed'}**."]
    if batches:
        lines += ["", "### Batch transform", "",
                  f"`serving.py` (the serving container's process, on the Python of the jobs' environment:"
                  f" {os.environ.get('PIPELINES_JOB_ENV') or 'image'}) over one CSV object, SplitType Line,"
                  " BatchStrategy MultiRecord, MaxPayloadInMB 6, AssembleWith Line; peak memory is the process's"
                  " maximum resident set, its model loading included. The floor: the model's predictions on the"
                  " same rows prepared as one array (the faster of the served model and the fold models' own"
                  " predict, all cores).", "",
                  "| rows | seconds | rows/s | peak MiB | floor seconds | ratio to floor | load |",
                  "|---|---|---|---|---|---|---|"]
        for rows, result, bottom, before in batches:
            lines.append(f"| {rows:,} | {result['seconds']:.1f} | {rows / result['seconds']:,.0f} |"
                         f" {result['peak_mib']:.0f} | {bottom:.2f} | {result['seconds'] / bottom:.1f}x | {before:.1f} |")
        rows, result, bottom, _ = batches[-1]
        lines += ["", f"Target, {rows:,} rows: within 2x the floor and under 1 GB: **"
                  f"{'met' if result['seconds'] <= 2 * bottom and result['peak_mib'] < 1024 else 'missed'}**."]
    return "\n".join([*lines, "", f"Command: `{command}`"])


def _ints(text: str) -> list[int]:
    """A comma-separated list of counts; 0 (or nothing) for none."""
    return [int(v) for v in text.split(",") if v.strip() and int(v)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per load")
    parser.add_argument("--clients", type=_ints, default=[1, 4, 16])
    parser.add_argument("--rows", type=int, default=10, help="sessions of the in-process request")
    parser.add_argument("--rows-list", type=_ints, default=[1, 10, 100], help="sessions per request under load")
    parser.add_argument("--batch-rows", type=_ints, default=[100_000, 1_000_000])
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--families", default="auto", help="the model's families (deploy.py run --families)")
    parser.add_argument("--deadline", type=float, default=300, help="seconds after which no request is sent")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args(argv)
    command = "python benchmarks/serving_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="serving-load-") as tmp:
        home, data = Path(tmp) / "home", write_csv(generate(1000, seed=0), Path(tmp) / "sessions.csv")
        prepare(home, data, args.families)
        app, files, python = loaded(home, Path(tmp) / "app")
        cost = stages(app, csv_body(data, args.rows), args.reps)
        sizes = crossover(app, write_csv(generate(5000, seed=2), Path(tmp) / "sizes.csv"))
        fast_rows = app.handlers.predict_fn.__globals__["FAST_ROWS"]
        families = list(app.model["ensemble"].members)
        batches = []
        for rows in args.batch_rows:
            big = write_csv(generate(rows, seed=1).drop(columns="Revenue"), Path(tmp) / f"in-{rows}" / "rows.csv")
            before = os.getloadavg()[0]
            result = batch_transform(files, python, big, Path(tmp) / f"out-{rows}")
            if result["predictions"] != rows:
                raise SystemExit(f"batch transform of {rows} rows gave {result['predictions']} predictions")
            batches.append((rows, result, batch_floor(app, big), before))
            big.unlink()

        def serve(port: int) -> list[str]:
            return [sys.executable, "deploy.py", "serve", "--local", "--home", str(home), "--port", str(port)]

        loads = []
        with serving(serve, "/ping", Path(tmp) / "serve.log", timeout=300, cwd=ROOT, env=_env()) as url:
            port = int(url.rsplit(":", 1)[1])
            for rows in args.rows_list:
                for clients in args.clients:
                    before = os.getloadavg()[0]
                    load, wall = run_load(port, csv_body(data, rows), rows, args.requests, clients, args.deadline)
                    loads.append((clients, rows, load, wall, before))
        fallbacks = sorted({line.split(" (")[0].strip() for line in (Path(tmp) / "serve.log").read_text().splitlines()
                            if "served by its own predict" in line}) or ["none"]
        in_process = sorted({line.split(" (")[0].strip() for line in app.log if "served by its own predict" in line}) \
            or ["none"]
    section = report(args, command.strip(), cost, loads, batches, families,
                     (in_process, fallbacks, fast_rows, sizes))
    print(section)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", f"{HEADING}: families {args.families}", section)
    return 0 if all(not load.errors and not load.unsent for _, _, load, _, _ in loads) else 1


if __name__ == "__main__":
    sys.exit(main())
