"""Stopping an execution: Ctrl-C, SIGTERM, a closed terminal (SIGHUP), or `deploy.py stop` from another terminal.

A stop is a request, not a crash: the scheduler starts nothing new, every running job's process
group is ended (`container.run_hosts`), and the execution is recorded `Stopped`, SageMaker's own
status, with the steps it cut short marked `Stopped`, so `--resume` can finish it later.

Another process asks by writing `runs/<id>/stop` (the reason, as text), which the scheduler polls:
a file works whatever the runner's pid, user or terminal, and survives a runner that is starting.
"""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

from pipelines.files import write_atomically
from pipelines.local import liveness
from pipelines.local.home import LocalHome
from pipelines.local.plan import RunError
from pipelines.local.records import now, save_record

REQUEST_FILE = "stop"
REASONS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM to the runner",
           signal.SIGHUP: "its terminal closed (SIGHUP)"}


class Stop:
    """Whether, and why, an execution was asked to stop; shared by the scheduler and its jobs."""

    def __init__(self):
        self._event = threading.Event()
        self.reason: str | None = None

    def request(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    def __bool__(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early on a stop; whether one was requested."""
        return self._event.wait(seconds)


class JobStopped(Exception):
    """A job ended because its execution was asked to stop (not a failure: nothing to retry)."""


@contextlib.contextmanager
def on_signals(stop: Stop, again: Callable[[str], None]) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP (the terminal closed) request `stop` while the block runs (on the
    main thread only: Python delivers signals there); a repeated signal calls `again` instead of
    killing the runner half-way through recording what it stopped."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum, frame):
        name = signal.Signals(signum).name
        if stop:
            again(name)
        else:
            stop.request(REASONS.get(signum, f"{name} to the runner"))

    previous = {sig: signal.signal(sig, handle) for sig in REASONS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def requested(home: LocalHome, execution_id: str) -> str | None:
    """The reason another process wrote, if it asked this execution to stop."""
    try:
        return (home.runs / execution_id / REQUEST_FILE).read_text().strip() or "a stop request"
    except FileNotFoundError:
        return None


def clear(home: LocalHome, execution_id: str) -> None:
    """Forget an earlier request (a resumed execution runs until asked again)."""
    (home.runs / execution_id / REQUEST_FILE).unlink(missing_ok=True)


def request_stop(home: LocalHome, execution_id: str, reason: str = "deploy.py stop") -> dict:
    """Ask the runner of a local execution to stop it; the record as it is now. An execution whose
    runner is gone (killed, machine rebooted) has nobody to ask, so it is recorded `Stopped` here."""
    try:
        record = home.execution(execution_id)
    except FileNotFoundError as exc:
        raise RunError(f"{exc}; `deploy.py runs --local` lists them") from None
    if record["status"] != "Executing":
        raise RunError(f"execution {execution_id} is {record['status']}: only an executing run can be stopped")
    write_atomically(home.runs / execution_id / REQUEST_FILE, f"{reason} at {now()}")
    if liveness.gone(home.runs / execution_id, record):
        record = mark_stopped(record, f"{reason} (its runner had already ended)")
        save_record(home.runs / execution_id, record)
    return record


def mark_stopped(record: dict, reason: str) -> dict:
    """The record of an execution stopped by `reason`: what was still running is Stopped."""
    ended = now()
    steps = [{**s, "status": "Stopped", "ended": ended} if s["status"] in ("Starting", "Executing") else s
             for s in record["steps"]]
    return {**record, "steps": steps, "status": "Stopped", "stop_reason": reason, "ended": ended,
            "stopped_steps": [s["name"] for s in steps if s["status"] == "Stopped"]}

