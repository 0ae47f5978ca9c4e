"""The process side of the container contract: run a job's hosts as subprocesses.

Every host of a job gets its own directory playing ``/opt/ml``. Under "namespace" isolation each
host runs in a private filesystem (`pipelines.local.sandbox`): the machine's files copy-on-write,
its writes outside ``/opt/ml`` in a scratch of its own that ends with it, the runner's home, /root
and /tmp empty, its own /proc, and that directory at ``/opt/ml``, so scripts with hard-coded
SageMaker paths run unchanged, concurrent jobs never see each other's files, and nothing a job
does reaches the host. It needs Linux user namespaces (and overlayfs in them, Linux 5.11). Where
that is impossible, "paths" isolation rewrites ``/opt/ml`` in the command line, working directory
and environment instead, which covers scripts that take their paths from arguments or ``SM_*``
variables (as the project's scripts do), and protects nothing: the log says so.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import pwd
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
_SANDBOX = str(Path(__file__).with_name("sandbox.py"))
NAMESPACE_HINT = ("allow unprivileged user namespaces (sysctl user.max_user_namespaces > 0, and "
                  "kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0 where "
                  "the kernel has them; Linux 5.11 or later, for overlayfs in them), or give scripts their paths "
                  "through arguments or SM_* variables (isolation 'paths', which does not protect this machine)")
# A host's writes outside /opt/ml (its root filesystem, /tmp, /dev/shm, $HOME) share this much memory:
# a job filling it gets ENOSPC, as on a full volume, and the machine never does. $PIPELINES_JOB_SCRATCH sets it.
SCRATCH_ENV = "PIPELINES_JOB_SCRATCH"
SCRATCH_SIZE = "1g"
JOB_HOME = "/root"  # SageMaker containers run as root
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
    keep: list[str] = field(default_factory=list)  # host directories the command needs (its environment)


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


def stays_inside(root: Path, path: Path) -> bool:
    """Whether `path`, below `root` (the host's /opt/ml), stays in it with its links followed as the job
    sees them. The runner reads what a job leaves behind, and a link to ~/.aws/credentials must not
    make it read, upload or quote this machine's files."""
    for _ in range(40):  # the kernel's own limit on a chain of links
        if not path.is_symlink():
            break
        target = os.readlink(path)
        if os.path.isabs(target):
            if not Path(target).is_relative_to(CONTAINER_ROOT) or ".." in Path(target).parts:
                return False
            path = host_path(root, target)
        else:
            path = path.parent / target
    else:
        return False
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def links_out(root: Path, directory: Path) -> list[str]:
    """The links under `directory` (and it, if one) that lead out of `root`, as container paths."""
    found = [directory] if not stays_inside(root, directory) else []
    if directory.is_dir() and not directory.is_symlink():
        for parent, dirs, files in os.walk(directory):
            found += [Path(parent, name) for name in [*dirs, *files]
                      if Path(parent, name).is_symlink() and not stays_inside(root, Path(parent, name))]
    return [f"{CONTAINER_ROOT}/{p.relative_to(root).as_posix()}" for p in found]


@functools.cache
def namespace_unavailable_reason() -> str | None:
    """Probe once whether a job can get its private filesystem here."""
    if not sys.platform.startswith("linux"):
        return "needs Linux"
    with tempfile.TemporaryDirectory() as probe_dir:
        root = Path(probe_dir, "algo-1")
        root.mkdir()
        (root / "probe").touch()
        run = HostRun("probe", root, ["test", "-f", "/opt/ml/probe"], cwd="/")
        argv, env, cwd = _command(run, "namespace", _scratch(run))
        try:
            result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"the sandbox did not start: {exc}"
    return None if result.returncode == 0 else (result.stderr.strip() or f"exit status {result.returncode}")


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


def _command(run: HostRun, isolation: str, scratch: Path) -> tuple[list[str], dict[str, str], Path]:
    """The argv, environment and working directory that realise ``run`` under ``isolation``; `scratch`
    is the host directory the private filesystem is mounted on, or holds HOME and TMPDIR ("paths")."""
    env = {**host_environment(), **run.env}
    if isolation == "namespace":
        for name in ("TMPDIR", "TEMP", "TMP"):  # the host's temporary folder is not there: /tmp is the job's
            env.pop(name, None)
        spec = {"opt_ml": str(run.root), "scratch": str(scratch), "size": scratch_size(),
                "cwd": run.cwd, "hosts": str(run.hosts_file) if run.hosts_file else None,
                "masks": _masks(), "keep": _needed(run), "parent": os.getpid()}
        return [sys.executable, "-I", "-S", _SANDBOX, json.dumps(spec), *run.argv], {**env, "HOME": JOB_HOME}, run.root
    for name in ("home", "tmp"):
        (scratch / name).mkdir(exist_ok=True)
    env.update(HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"))
    argv = [map_container_paths(arg, run.root) for arg in run.argv]
    env = {key: map_container_paths(value, run.root) for key, value in env.items()}
    return [*_die_with_runner(), *argv], env, Path(map_container_paths(run.cwd, run.root))


def scratch_size() -> str:
    """The size of a host's scratch: `$PIPELINES_JOB_SCRATCH` (bytes, or with k, m or g), else SCRATCH_SIZE."""
    size = os.environ.get(SCRATCH_ENV) or SCRATCH_SIZE
    if not re.fullmatch(r"[1-9][0-9]*[kmgKMG]?", size):
        raise IsolationError(f"{SCRATCH_ENV}={size!r} is not a size: give bytes, or a number with k, m or g (2g)")
    return size


def _masks() -> list[str]:
    """What a job must not see of this machine: the runner's home (credentials, ~/.aws, ~/.config),
    /root, and what is temporary or per boot; each is an empty directory in the job."""
    homes = {os.path.expanduser("~"), pwd.getpwuid(os.geteuid()).pw_dir}
    return sorted({"/root", "/tmp", "/var/tmp", "/run", *homes})


def _needed(run: HostRun) -> list[str]:
    """What a job needs of the masked directories: this Python (a venv's and its base installation,
    often under a home), the runner's package (the serving and algorithm files run as scripts), its
    import path (jobs on `--job-env host`), and the job's own environment."""
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, str(Path(__file__).parent),
             *sys.path, *run.keep]
    return sorted({os.path.abspath(p) for p in paths if p and os.path.isdir(p)})


def _scratch(run: HostRun) -> Path:
    """An empty directory beside the host's (in the job's own work directory)."""
    return Path(tempfile.mkdtemp(prefix=f".{run.name}-scratch-", dir=run.root.parent))


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
            append_log(log_path, f"[local runner] isolation=paths: {run.name} runs on this machine's own files as "
                       f"this user, and can read and change whatever you can (for a private filesystem: "
                       f"{NAMESPACE_HINT.split(', or give')[0]}); its /opt/ml is {run.root}"
                       + (", and other hosts cannot be reached by name" if run.hosts_file else ""))
    procs, readers, tails, scratches = [], [], [], []
    try:
        for run in runs:
            prefix = "/".join(part for part in (log_label, run.name if len(runs) > 1 else "") if part)
            scratches.append(_scratch(run))
            argv, env, cwd = _command(run, mode, scratches[-1])
            proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            tail = collections.deque(maxlen=_TAIL_LINES)
            reader = threading.Thread(target=_pump, args=(proc, run.name, prefix, log_path, tail, on_line),
                                      daemon=True)
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
    finally:
        for scratch in scratches:
            shutil.rmtree(scratch, ignore_errors=True)
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
