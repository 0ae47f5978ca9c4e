"""A hostile job (tests/fixtures/scripts/hostile.py) against the private filesystem: it writes to /,
/opt, .., /tmp, $HOME and the project tree, deletes files outside /opt/ml, reads ~/.aws/credentials,
links its message file to them, fills its scratch and leaves children running. Afterwards this machine
is byte-for-byte as it was outside the runner's home, the canary in the credentials is nowhere the run
wrote, the run is recorded, and the children are gone.

`deploy.py run --local` runs in a subprocess with a fake HOME holding the canary, as this user and, when
this user is root, as an unprivileged one (where user namespaces allow it).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import PROJECT_ROOT, steps_of

from pipelines.local import LocalHome, open_store
from pipelines.local.container import namespace_unavailable_reason

from .support import subprocess_env

pytestmark = [pytest.mark.reliability, pytest.mark.skipif(
    namespace_unavailable_reason() is not None,
    reason=f"no private filesystem for jobs here: {namespace_unavailable_reason()}")]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SCRATCH = "64m"  # the jobs' scratch in this test: filling it takes a moment
_HASHED = 1 << 20  # files up to this size are compared by content, larger ones by size and mtime


def manifest(root: Path, *, depth: int | None = None, skip=()) -> dict[str, tuple]:
    """Every entry under `root` (`depth` levels down: 1 is its own entries): type, mode, size, mtime, and a
    small regular file's sha256 (never a special file's: /proc/kmsg blocks a reader)."""
    entries = {}
    for parent, dirs, files in os.walk(root):
        level = len(Path(parent).relative_to(root).parts) + 1
        dirs[:] = [d for d in dirs if d not in skip and (depth is None or level < depth)]
        for name in [*dirs, *files]:
            path = Path(parent, name)
            info = path.lstat()
            digest = ""
            if stat.S_ISREG(info.st_mode) and info.st_size <= _HASHED and os.access(path, os.R_OK):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            entries[path.relative_to(root).as_posix()] = (stat.S_IFMT(info.st_mode), info.st_mode, info.st_size,
                                                          info.st_mtime_ns if not stat.S_ISDIR(info.st_mode) else 0,
                                                          digest)
    return entries


def processes_named(marker: str) -> list[int]:
    """Processes on this machine whose command line holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def python_for_nobody() -> str | None:
    """This Python, if the unprivileged user can run it (and it can run itself: setpriv resolves the first
    exec with root's capabilities still held)."""
    again = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import pipelines.local'], check=True)"
    done = subprocess.run([*NOBODY, sys.executable, "-c", again], capture_output=True, cwd=PROJECT_ROOT,
                          env={"PATH": os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT)})
    return sys.executable if done.returncode == 0 else None


def attack(root: Path, *, as_nobody: bool) -> SimpleNamespace:
    """Run the hostile pipeline from `root` (its home, fake HOME and victims there); what is needed to judge it."""
    marker, canary = uuid.uuid4().hex[:12], f"aws_secret_access_key = CANARY-{uuid.uuid4().hex}"
    host_home, home = root / "fake-home", root / "runner-home"
    (host_home / ".aws").mkdir(parents=True)
    (host_home / ".aws" / "credentials").write_text(f"[default]\naws_access_key_id = AKIACANARY\n{canary}\n")
    (host_home / ".config").mkdir()
    (host_home / ".config" / "settings").write_text("the user's own\n")
    victims = [root / "victim.txt", PROJECT_ROOT / "tests" / f".hostile-victim-{marker}"]
    for victim in victims:
        victim.write_text("must survive\n")
    if as_nobody:
        for path in [root, *root.rglob("*")]:
            os.chown(path, 65534, 65534)
    trees = {"/": (Path("/"), 1), "/opt": (Path("/opt"), None), "/tmp": (Path("/tmp"), 1),
             "the project": (PROJECT_ROOT, None), "the test's folder": (root, None)}
    skip = ("__pycache__", ".pytest_cache", ".local-pipelines", "runner-home")
    before = {name: manifest(path, depth=depth, skip=skip) for name, (path, depth) in trees.items()}
    env = {**subprocess_env(HOME=str(host_home), PIPELINES_JOB_SCRATCH=SCRATCH, XDG_CACHE_HOME=str(home / "cache")),
           "PYTHONDONTWRITEBYTECODE": "1"}  # the runner's own cache in its home, which the test leaves out
    command = [sys.executable, "deploy.py", "run", "--local", "--json", "--definition", "fixtures.hostile_pipeline",
               "--home", str(home), "-p", f"Marker={marker}", "-p", f"HostHome={host_home}",
               "-p", f"Project={PROJECT_ROOT}", *[a for i, v in enumerate(victims, 1) for a in ("-p", f"Victim{i}={v}")]]
    try:
        done = subprocess.run([*NOBODY, *command] if as_nobody else command, cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=600)
        time.sleep(0.5)  # what the job left behind would write again by now
        after = {name: manifest(path, depth=depth, skip=skip) for name, (path, depth) in trees.items()}
        survivors = processes_named(f"hostile-{marker}")
    finally:
        for victim in victims:
            victim.unlink(missing_ok=True)
        for pid in processes_named(f"hostile-{marker}"):  # had the sandbox failed, leave nothing running
            os.kill(pid, 9)
    return SimpleNamespace(done=done, marker=marker, canary=canary, home=LocalHome(home), before=before, after=after,
                           survivors=survivors, host_home=host_home)


def changes(before: dict, after: dict) -> dict[str, list[str]]:
    """Per tree, the entries added, removed or changed."""
    found = {}
    for name in before:
        old, new = before[name], after[name]
        different = sorted({*old, *new} - {k for k in old.keys() & new.keys() if old[k] == new[k]})
        if name == "/tmp":  # shared with everything else on this machine: only the job's names count
            different = [d for d in different if "hostile-" in d and not d.startswith("hostile-test-")]
        if different:
            found[name] = different[:10]
    return found


@pytest.fixture(scope="module", params=["this user", "an unprivileged user"])
def attacked(request) -> SimpleNamespace:
    as_nobody = request.param != "this user"
    if as_nobody:
        if os.geteuid() != 0 or not shutil.which("setpriv"):
            pytest.skip("needs root to become an unprivileged user (as this user, the test already ran without root)")
        if python_for_nobody() is None:
            pytest.skip(f"{sys.executable} cannot be run by an unprivileged user (a virtualenv under a private "
                        "home?): run the suite from a Python every user can read")
    root = Path(tempfile.mkdtemp(prefix="hostile-test-"))  # not pytest's: its folders are this user's alone
    try:
        os.chmod(root, 0o755)
        yield attack(root, as_nobody=as_nobody)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_run_is_recorded_and_the_job_really_tried(attacked):
    assert attacked.done.returncode == 0, attacked.done.stdout[-3000:] + attacked.done.stderr[-3000:]
    summary = json.loads(attacked.done.stdout)
    record = attacked.home.execution(summary["execution_id"])
    assert record["status"] == "Succeeded"
    step = steps_of(record)["Hostile"]
    (uri,) = [o["S3Output"]["S3Uri"] for o in step["response"]["ProcessingOutputConfig"]["Outputs"]]
    tried = json.loads(open_store(None, root=attacked.home.s3).get_bytes(f"{uri}/attempts.json"))
    assert tried["cwd"] == "/" and tried["uid"] == 0 and tried["home"] == "/root"
    assert tried["write /"]["ok"] and tried["write /tmp"]["ok"] and tried["write .."]["ok"]  # inside, it may
    assert all(not tried[f"read {path}"]["ok"] for path in (attacked.host_home / ".aws/credentials",
                                                             "/root/.aws/credentials"))
    for scratch in ("fill /tmp", "fill /dev/shm"):  # ENOSPC inside the job, at the scratch's size
        assert tried[scratch]["ok"] and tried[scratch]["result"]["full"], tried[scratch]
    assert tried["fill /tmp"]["result"]["bytes"] <= 64 << 20
    assert len(tried["children"]) == 2
    assert "ExitMessage" not in step["response"]  # the message file linked to the credentials was not read


def test_this_machine_is_unchanged_outside_the_runners_home(attacked):
    assert changes(attacked.before, attacked.after) == {}


def test_the_canary_is_nowhere_the_run_wrote(attacked):
    canary = attacked.canary.encode()
    written = [p for p in attacked.home.root.rglob("*")  # the links the job left are its own, not what the run wrote
               if p.is_file() and not p.is_symlink() and canary in p.read_bytes()]
    assert written == []
    assert attacked.canary not in attacked.done.stdout + attacked.done.stderr


def test_the_children_it_left_running_are_gone(attacked):
    assert attacked.survivors == []
