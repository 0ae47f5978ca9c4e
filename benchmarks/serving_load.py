"""The local endpoint under load: a fixed number of requests against `deploy.py serve --local`.

Prepares a fresh home (one small local run without tuning, then `approve latest --local`), starts
`deploy.py serve --local` on 127.0.0.1 (a free port) as its own process, and sends exactly
--requests POST /invocations from --clients threads of this process, each a CSV of --rows sessions
with a header, each timed. Bounded: a request gives up after 30 s and the load stops at --deadline
seconds (what was not sent is reported). The server is stopped afterwards, whatever happened.

Writes the section "## Local endpoint under load" of docs/benchmarks.md: errors, p50/p99 latency,
throughput, the machine and this command.

    python benchmarks/serving_load.py [--requests 2000] [--clients 4] [--rows 10] [--deadline 300] [--no-write]
"""
from __future__ import annotations

import argparse
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

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the server gets it (`_env`), for the in-process figure
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from benchmarks.doc import machine, write_section  # noqa: E402
from fixtures.servers import serving  # noqa: E402
from examples.purchase_intent.shoppers_data import generate, write_csv  # noqa: E402

HEADING = "Local endpoint under load"
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


def prepare(home: Path, data: Path) -> None:
    """A registered and approved model in `home`, as a user gets one."""
    summary = json.loads(deploy(home, "run", "--local", "--json", "--no-tuning", "--input-data", str(data),
                                "-p", "QualityThreshold=0.5"))
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


def report(load: Load, wall: float, args, command: str, loads: tuple[float, float], ceiling_ms: float) -> str:
    errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(load.errors.items())) or "none"
    return "\n".join([
        f"Measured {date.today()} on {machine()}; load average {loads[0]:.1f} before the load, {loads[1]:.1f} after"
        " (a shared machine: the figures are noisy).", "",
        f"`deploy.py serve --local` (gunicorn: a worker process per core, as SageMaker's serving containers run it;"
        f" one prediction at a time per worker) on 127.0.0.1, serving a model from"
        f" a local run without tuning on 1,000 generated sessions; {args.requests} POST /invocations, each a CSV of"
        f" {args.rows} sessions with a header, from {args.clients} client threads of a second process, each over one"
        " kept-alive connection.", "",
        "| requests sent | answered 200 | errors | not sent (deadline) | p50 ms | p99 ms | max ms |"
        " requests/s | sessions/s | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| {args.requests - load.unsent} | {len(load.latencies)} | {errors} | {load.unsent} |"
        f" {latency_columns(load.latencies)} | {len(load.latencies) / wall:.0f} |"
        f" {len(load.latencies) * args.rows / wall:.0f} | {wall:.1f} |",
        "", f"One request of the same body through the app in one process, without HTTP or other load: median"
        f" {ceiling_ms:.1f} ms, almost all of it the model's own `inference.py` (feature building in pandas, then"
        f" xgboost). {os.cpu_count()} cores can therefore answer at most about"
        f" {os.cpu_count() * 1000 / ceiling_ms:.0f} requests/s whatever the server, before the load generator's"
        " own share of the cores.",
        f"Target: p99 <= {TARGET_P99_MS:.0f} ms and >= {TARGET_RPS:.0f} requests/s.",
        "", f"Command: `{command}`",
    ])


def in_process_ms(home: Path, body: bytes, reps: int = 200) -> float:
    """Median milliseconds of one POST /invocations through the app itself (no server, no network)."""
    from werkzeug.test import Client

    from pipelines.local import endpoint
    from pipelines.local.registry import Registry

    registry = Registry.of(endpoint.LocalHome(home))
    package = registry.latest(registry.list_groups()[0]["ModelPackageGroupName"], "Approved")
    with tempfile.TemporaryDirectory() as root:
        client = Client(endpoint.load_app(endpoint.local_store(endpoint.LocalHome(home)), package, Path(root)))
        headers = {"Content-Type": "text/csv", "Accept": "text/csv"}
        for _ in range(10):
            client.post("/invocations", data=body, headers=headers)
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            client.post("/invocations", data=body, headers=headers)
            times.append(1000 * (time.perf_counter() - started))
    return sorted(times)[len(times) // 2]


def latency_columns(seconds: list[float]) -> str:
    """p50 | p99 | max, in milliseconds."""
    if not seconds:
        return "- | - | -"
    ms = sorted(1000 * s for s in seconds)
    return " | ".join(f"{ms[min(len(ms) - 1, round(q * (len(ms) - 1)))]:.1f}" for q in (0.50, 0.99, 1.0))


def csv_body(data: Path, rows: int) -> bytes:
    """One request's body: the header and the first `rows` sessions of `data`."""
    with open(data, newline="") as f:
        table = list(csv.reader(f))[: rows + 1]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue().encode()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rows", type=int, default=10, help="sessions per request")
    parser.add_argument("--deadline", type=float, default=300, help="seconds after which no request is sent")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    args = parser.parse_args(argv)
    command = "python benchmarks/serving_load.py " + " ".join(argv if argv is not None else sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="serving-load-") as tmp:
        home, data = Path(tmp) / "home", write_csv(generate(1000, seed=0), Path(tmp) / "sessions.csv")
        prepare(home, data)
        def serve(port: int) -> list[str]:
            return [sys.executable, "deploy.py", "serve", "--local", "--home", str(home), "--port", str(port)]

        with serving(serve, "/ping", Path(tmp) / "serve.log", timeout=120, cwd=ROOT, env=_env()) as url:
            before = os.getloadavg()[0]
            load, wall = run_load(int(url.rsplit(":", 1)[1]), csv_body(data, args.rows), args.rows, args.requests, args.clients,
                                  args.deadline)
        ceiling = in_process_ms(home, csv_body(data, args.rows))
    section = report(load, wall, args, command.strip(), (before, os.getloadavg()[0]), ceiling)
    print(section)
    if not args.no_write:
        write_section(ROOT / "docs" / "benchmarks.md", HEADING, section)
    return 0 if not load.errors and not load.unsent else 1


if __name__ == "__main__":
    sys.exit(main())
