"""Whether an execution's runner is alive: its pid and its heartbeat.

A runner records who it is (pid, host, when it started) and touches `runs/<id>/heartbeat` every few
seconds while it runs. A record still `Executing` whose runner is gone without a word (SIGKILL, an
out-of-memory kill, a power cut) would otherwise look alive forever: on the runner's host its pid is
asked (and a pid reused by another process, started after the last heartbeat, does not count); on
another host sharing the home, a heartbeat older than `STALE_SECONDS` is the answer.
"""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

HEARTBEAT_FILE = "heartbeat"
BEAT_SECONDS = 5.0
STALE_SECONDS = 120.0  # on another host: no heartbeat for this long means the runner is gone


def runner() -> dict:
    """Who runs an execution: what its record keeps to tell later whether it still does."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}


def beat(run_dir: Path) -> None:
    """The runner is alive now."""
    path = run_dir / HEARTBEAT_FILE
    try:
        os.utime(path)
    except FileNotFoundError:
        path.touch()


def gone(run_dir: Path, record: dict) -> str | None:
    """Why the runner of an `Executing` record is gone, or None while it may be running."""
    if record.get("status") != "Executing":
        return None
    who = record.get("runner") or {"pid": record.get("runner_pid"), "host": socket.gethostname()}
    pid = who.get("pid")
    if not isinstance(pid, int):
        return None  # a runner that has not recorded itself yet is starting
    last = _last_beat(run_dir)
    if who.get("host") not in (None, socket.gethostname()):
        if last is not None and time.time() - last > STALE_SECONDS:
            return f"its runner on {who['host']} has not been heard from since {_when(last)}"
        return None
    if not alive(pid) or pid == os.getpid():  # this process asks: its run of it is over (a crash it survived)
        return f"its runner (pid {pid}) ended without recording an end (killed, or the machine stopped)"
    began = _process_start(pid)
    if began is not None and last is not None and began > last + BEAT_SECONDS:
        return f"its runner (pid {pid}) is gone: that pid is another process's now"
    return None


def alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _last_beat(run_dir: Path) -> float | None:
    try:
        return (run_dir / HEARTBEAT_FILE).stat().st_mtime
    except FileNotFoundError:
        return None


def _process_start(pid: int) -> float | None:
    """When process `pid` started (Linux's /proc), None where that cannot be read."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            boot = next(float(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))

