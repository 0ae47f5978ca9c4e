"""The process side of the container contract: run a job's hosts as subprocesses.

Every host of a job gets its own directory playing ``/opt/ml``. Under
"namespace" isolation each subprocess starts in a private mount namespace
where that directory is bind-mounted at ``/opt/ml``, so scripts with
hard-coded SageMaker paths run unchanged and concurrent jobs never see each
other's files. Where that is impossible (not Linux, not root, no ``unshare``)
"paths" isolation rewrites ``/opt/ml`` in the command line, working directory
and environment instead, which covers scripts that take their paths from
arguments or ``SM_*`` variables (as the project's scripts do).
"""

from __future__ import annotations

import collections
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CONTAINER_ROOT = "/opt/ml"
_TAIL_LINES = 20
_POLL_SECONDS = 0.05
_STOP_GRACE_SECONDS = 2.0  # a stopped job gets SIGTERM, then SIGKILL after this (SageMaker waits 120 s)
_CONTAINER_PATH = re.compile(r"(?<![\w./-])/opt/ml\b")
# Binds the host directory at /opt/ml, enters the working directory, then
# becomes the job's command (exec keeps the pid, so signals and exit codes are the job's).
_NAMESPACE_SCRIPT = 'mkdir -p /opt/ml && mount --bind "$1" /opt/ml && cd "$2" && shift 2 && exec "$@"'
# Without root there may be no /opt/ml to bind over, and /opt is not writable even to the namespace's root:
# a shadow /opt (each entry bound back in, plus an empty ml/) is mounted over /opt first.
_SHADOW_OPT = ('[ -d /opt/ml ] || { shadow=$(mktemp -d) && for entry in /opt/* /opt/.[!.]*; do '
               '[ -e "$entry" ] || continue; name=${entry##*/}; '
               'if [ -d "$entry" ]; then mkdir "$shadow/$name"; else : > "$shadow/$name"; fi; '
               'mount --rbind "$entry" "$shadow/$name" || exit 1; done; '
               'mkdir "$shadow/ml" && mount --rbind "$shadow" /opt; } && ')
NAMESPACE_HINT = ("run as root, or allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, "
                  "and kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0 "
                  "where the kernel has them), or give scripts their paths through arguments or SM_* "
                  "variables (isolation 'paths')")
_LOG_LOCK = threading.Lock()
_AWS_KEPT = frozenset({"AWS_REGION", "AWS_DEFAULT_REGION"})  # what a container's environment also has


class IsolationError(RuntimeError):
    """The requested isolation cannot work on this machine."""


@dataclass
class HostRun:
    """One host's process, described with container paths (``/opt/ml/...``)."""

    name: str
    root: Path  # the host directory that plays /opt/ml
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = CONTAINER_ROOT
    hosts_file: Path | None = None  # bound at /etc/hosts: how a job's hosts find each other by name


@dataclass
class HostExit:
    name: str
    returncode: int
    tail: list[str]
    stopped: str | None = None  # why the runner stopped it: "timeout", "peer failed" or "stop requested"


def host_path(root: Path, container_path: str) -> Path:
    """Where a container path (``/opt/ml/...``) of the host rooted at ``root`` lives here."""
    path = Path(container_path)
    if not path.is_relative_to(CONTAINER_ROOT) or ".." in path.parts:
        raise ValueError(f"{container_path!r} is not a path under {CONTAINER_ROOT}")
    return root / path.relative_to(CONTAINER_ROOT)


@functools.cache
def namespace_unavailable_reason() -> str | None:
    """Probe once whether a private mount namespace can place a directory at /opt/ml."""
    if not sys.platform.startswith("linux") or not shutil.which("unshare"):
        return "needs Linux with the unshare command"
    with tempfile.TemporaryDirectory() as probe_dir:
        Path(probe_dir, "probe").touch()
        try:
            result = subprocess.run(
                _wrap_namespace(Path(probe_dir), "/", ["test", "-f", "/opt/ml/probe"]),
                capture_output=True, text=True, timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"unshare failed: {exc}"
    return None if result.returncode == 0 else f"unshare failed: {result.stderr.strip()}"


def resolve_isolation(mode: str) -> str:
    """"auto" -> "namespace" when it works here, else "paths"; validate explicit modes."""
    if mode not in ("auto", "namespace", "paths"):
        raise IsolationError(f"unknown isolation {mode!r}: use 'namespace', 'paths' or 'auto'")
    if mode == "paths":
        return mode
    reason = namespace_unavailable_reason()
    if reason is None:
        return "namespace"
    if mode == "namespace":
        raise IsolationError(f"namespace isolation is unavailable ({reason}): {NAMESPACE_HINT}")
    return "paths"


def map_container_paths(text: str, root: Path) -> str:
    """Replace every ``/opt/ml`` path in ``text`` (also inside JSON) by ``root``."""
    return _CONTAINER_PATH.sub(lambda _: str(root), text)


def _wrap_namespace(root: Path, cwd: str, argv: list[str]) -> list[str]:
    """Run argv in a private mount namespace with `root` at /opt/ml; without root, in a user
    namespace too (``--map-root-user``), where the kernel lets unprivileged users make one."""
    if os.geteuid() == 0:
        return ["unshare", "--mount", "--propagation", "private",
                "sh", "-c", _NAMESPACE_SCRIPT, "sh", str(root), cwd, *argv]
    return ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private",
            "sh", "-c", _SHADOW_OPT + _NAMESPACE_SCRIPT, "sh", str(root), cwd, *argv]


def host_environment() -> dict[str, str]:
    """This process's environment without its AWS settings: a SageMaker container never sees the
    caller's credentials or profile (it gets its role's), so a job script must not see them either."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_") or key in _AWS_KEPT}
    # nor the caller's ~/.aws files or an instance profile: a job reaches S3 only as `s3_endpoint` allows
    env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_EC2_METADATA_DISABLED="true")
    # A SageMaker job owns its instance's cores; local jobs share this machine's, and OpenMP threads
    # (xgboost's) that spin while waiting for a busy core slow every job down many times over.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


@functools.cache
def _die_with_runner() -> tuple[str, ...]:
    """A prefix that kills the job when the thread that started it dies, where Linux can (setpriv).

    Jobs run in their own session so that Ctrl-C reaches the runner first; without this, a runner
    killed with SIGKILL would leave its jobs running. The signal survives the exec chain to the job."""
    return ("setpriv", "--pdeathsig", "KILL") if sys.platform.startswith("linux") and shutil.which("setpriv") else ()


def _command(run: HostRun, isolation: str) -> tuple[list[str], dict[str, str], Path]:
    """The argv, environment and working directory that realise ``run`` under ``isolation``."""
    env = {**host_environment(), **run.env}
    if isolation == "namespace":
        argv = run.argv if run.hosts_file is None else \
            ["sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(run.hosts_file), *run.argv]
        return [*_die_with_runner(), *_wrap_namespace(run.root, run.cwd, argv)], env, run.root
    argv = [map_container_paths(arg, run.root) for arg in run.argv]
    env = {key: map_container_paths(value, run.root) for key, value in env.items()}
    return [*_die_with_runner(), *argv], env, Path(map_container_paths(run.cwd, run.root))


def run_hosts(
    runs: list[HostRun],
    *,
    isolation: str,
    log_path: Path,
    log_label: str = "",
    timeout: float | None = None,
    on_line: Callable[[str, str], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> list[HostExit]:
    """Run every host concurrently; stream their output to ``log_path``.

    Lines are prefixed with ``[label/host]`` when there is a label or more than
    one host. When one host fails the others are stopped (as SageMaker stops a
    cluster); past ``timeout`` seconds all are, and once ``stop()`` is true (the
    execution is stopping). ``on_line(host, line)`` sees each output line (metric
    parsing). Returns one exit per run, in order.
    """
    mode = resolve_isolation(isolation)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "paths":
        for run in runs:
            append_log(log_path, f"[local runner] isolation=paths: /opt/ml of {run.name} is {run.root}"
                       + (", and other hosts cannot be reached by name" if run.hosts_file else ""))
    procs, readers, tails = [], [], []
    for run in runs:
        prefix = "/".join(part for part in (log_label, run.name if len(runs) > 1 else "") if part)
        argv, env, cwd = _command(run, mode)
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        tail = collections.deque(maxlen=_TAIL_LINES)
        reader = threading.Thread(target=_pump, args=(proc, run.name, prefix, log_path, tail, on_line), daemon=True)
        reader.start()
        procs.append(proc)
        readers.append(reader)
        tails.append(tail)
    try:
        stopped = _supervise(procs, timeout, stop)
    except BaseException:  # interrupted (Ctrl-C, runner shutdown): leave no orphan jobs behind
        for proc in procs:
            _kill_group(proc)
        raise
    for reader in readers:
        reader.join()
    return [HostExit(run.name, proc.returncode, list(tail), stopped.get(i))
            for i, (run, proc, tail) in enumerate(zip(runs, procs, tails))]


def _supervise(procs: list[subprocess.Popen], timeout: float | None, stop: Callable[[], bool]) -> dict[int, str]:
    """Wait for all processes, stopping the rest on the first failure or at the deadline, and all of
    them on a stop request: SIGTERM to each process group first, so a script can end cleanly."""
    deadline = None if timeout is None else time.monotonic() + timeout
    stopped: dict[int, str] = {}
    terminated_at = None
    while any([proc.poll() is None for proc in procs]):  # a list: poll every host, not up to the first running one
        failed = any(proc.returncode not in (None, 0) for proc in procs)
        expired = deadline is not None and time.monotonic() > deadline
        if terminated_at is None and (stop() or expired):  # as SageMaker ends a job: SIGTERM, then SIGKILL
            terminated_at = time.monotonic()
            for i, proc in enumerate(procs):
                if proc.poll() is None:
                    stopped[i] = "timeout" if expired else "stop requested"
                    _kill_group(proc, signal.SIGTERM)
        late = terminated_at is not None and time.monotonic() > terminated_at + _STOP_GRACE_SECONDS
        if failed or late:
            for i, proc in enumerate(procs):
                if proc.poll() is None:
                    stopped.setdefault(i, "peer failed")
                    _kill_group(proc)
        time.sleep(_POLL_SECONDS)
    return stopped


def _kill_group(proc: subprocess.Popen, sig: signal.Signals = signal.SIGKILL) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _pump(proc, host, prefix, log_path, tail, on_line) -> None:
    for raw in proc.stdout:
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        tail.append(line)
        append_log(log_path, f"[{prefix}] {line}" if prefix else line)
        if on_line is not None:
            on_line(host, line)
    proc.stdout.close()


def append_log(log_path: Path, line: str) -> None:
    """Add one line to a job's log; the lock keeps lines of concurrent hosts whole."""
    with _LOG_LOCK, open(log_path, "a", encoding="utf-8") as log:
        log.write(line + "\n")
