"""A user without root gets the same private filesystem and /opt/ml view (a user namespace, as root also
runs jobs in), where the kernel allows one."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pipelines.local import container

CONTAINER = Path(container.__file__)
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
# container.py loaded on its own (it needs only the standard library), run as nobody: it probes, then runs a
# host whose script reads and writes through hard-coded /opt/ml paths.
PROBE = f"""
import importlib.util, os, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("container", {str(CONTAINER)!r})
c = importlib.util.module_from_spec(spec); sys.modules["container"] = c; spec.loader.exec_module(c)
root = Path(sys.argv[1])
mode = c.resolve_isolation("auto")
[exit_] = c.run_hosts([c.HostRun("algo-1", root, ["sh", "-c", "cat /opt/ml/in.txt > /opt/ml/out.txt"])],
                      isolation="auto", log_path=root / "log")
print(os.geteuid(), mode, exit_.returncode)
"""


def _python_for_nobody() -> str | None:
    """A Python the unprivileged user can run, and run again from itself (setpriv resolves the path
    it starts with root's capabilities still held, so a first start proves nothing)."""
    again = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'pass'], check=True)"
    for candidate in (sys.executable, "/usr/bin/python3"):
        if shutil.which(candidate) and subprocess.run([*NOBODY, candidate, "-c", again],
                                                      capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user")
def test_a_user_without_root_runs_hard_coded_opt_ml_paths_in_a_user_namespace():
    python = _python_for_nobody()
    if python is None:
        pytest.skip("no Python that the unprivileged user can run")
    root = Path(tempfile.mkdtemp(prefix="unprivileged-job-"))
    try:
        (root / "in.txt").write_text("staged input\n")
        os.chown(root, 65534, 65534)
        os.chown(root / "in.txt", 65534, 65534)
        done = subprocess.run([*NOBODY, python, "-c", PROBE, str(root)], capture_output=True, text=True,
                              cwd="/tmp", env={"PATH": os.environ["PATH"], "HOME": "/tmp"})
        if "namespace" not in done.stdout and container.namespace_unavailable_reason() is None:
            pytest.fail(f"root has namespaces but nobody got none: {done.stdout} {done.stderr}")
        uid, mode, code = done.stdout.split()
        if mode == "paths":
            pytest.skip("this kernel does not let unprivileged users create user namespaces")
        assert (uid, mode, code) == ("65534", "namespace", "0"), done.stderr
        assert (root / "out.txt").read_text() == "staged input\n"
    finally:
        shutil.rmtree(root)


def test_asking_for_a_namespace_where_there_is_none_says_what_to_do(monkeypatch):
    monkeypatch.setattr(container, "namespace_unavailable_reason", lambda: "unshare failed: Operation not permitted")
    with pytest.raises(container.IsolationError) as refused:
        container.resolve_isolation("namespace")
    message = str(refused.value)
    assert "Operation not permitted" in message and "user.max_user_namespaces" in message
    assert "'paths', which does not protect this machine" in message
