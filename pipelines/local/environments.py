"""The Python a job runs on: a cached virtualenv with its image's package versions, or the host's.

"It passed locally" means little when the job ran on newer pandas or xgboost
than the image carries, so by default every job runs in a virtualenv holding
the framework versions of the image its definition names (`pipelines.local.images`).
Each environment is built once per image, Python and requirements, with uv,
in a per-user cache (``$PIPELINES_ENV_CACHE``, else ``$XDG_CACHE_HOME`` or
``~/.cache``, ``/ml-pipelines/envs``), under a file lock, into a
temporary folder that is renamed into place: concurrent jobs share one
build and an interrupted build leaves nothing half made.

Old images need old Pythons. Where the image's versions do not install (or
do not import) on the runner's Python, the environment takes the nearest
versions that do (the lowest release at or above each pin), and where even
that fails, the host's packages; the job's log says which. A run never fails
for it. ``job_env="host"`` skips all this and runs jobs on the runner's own
interpreter, as fast as before.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable

from pipelines.files import user_cache
from pipelines.local.images import BOTO3_FLOOR, MODULES, Image

JOB_ENVS = ("image", "host")
JOB_ENV_VAR = "PIPELINES_JOB_ENV"  # the default of --job-env (a test suite sets "host")
CACHE_ENV = "PIPELINES_ENV_CACHE"
_MANIFEST = "local-env.json"
MODULES_FIRST = ("xgboost", "scikit-learn", "pandas", "numpy", "scipy", "pyarrow", "boto3")  # in a job's log
_RECIPE = 10  # bump when what goes into an environment changes, so older builds are not reused
_INSTALL_TIMEOUT = 900
# Wheels only, so that a version without a build for this Python fails at once instead of compiling numpy
# for an hour, except these, built in seconds: pure Python or a few lines of C (the training toolkits'
# gethostname) with no wheels at all, and MarkupSafe, whose C speed-ups are optional (1.x has no wheel
# for Python 3.11, and an image pins MarkupSafe<2.0).
_SOURCE_ONLY = ("sagemaker-training", "sagemaker-containers", "sagemaker-inference", "retrying", "inotify-simple",
                "future", "enum-compat", "typing", "markupsafe")
_BINARIES = ("--only-binary", ":all:", *[arg for name in _SOURCE_ONLY for arg in ("--no-binary", name)])
_NETWORK_ERRORS = ("Failed to fetch", "error sending request", "dns error", "Connection refused", "timed out")


class EnvironmentFailure(RuntimeError):
    """uv is missing or an environment could not be prepared at all."""


@dataclass(frozen=True)
class JobPython:
    """The interpreter a job runs and what its log says about it."""

    python: str
    bin_dir: str | None  # put first on PATH (python3, pip) when the job runs in a virtualenv
    log_lines: tuple[str, ...]

    def directories(self) -> list[str]:
        """What of this machine the job needs for its Python (a job's private filesystem hides the cache)."""
        return [str(Path(self.bin_dir).parent)] if self.bin_dir else []

    def environment(self) -> dict[str, str]:
        """Variables that make `python3` and `pip` in a job's shell mean this environment."""
        if not self.bin_dir:
            return {}
        return {"VIRTUAL_ENV": str(Path(self.bin_dir).parent),
                "PATH": os.pathsep.join([self.bin_dir, os.environ.get("PATH", os.defpath)])}


def default_job_env() -> str:
    """`$PIPELINES_JOB_ENV`, else "image"."""
    return check_job_env(os.environ.get(JOB_ENV_VAR) or "image")


def check_job_env(job_env: str) -> str:
    if job_env not in JOB_ENVS:
        raise ValueError(f"unknown job environment {job_env!r}: use {' or '.join(JOB_ENVS)}")
    return job_env


def cache_root() -> Path:
    return user_cache("envs", CACHE_ENV)


def job_python(image: Image, job_env: str, *, requirements: Path | None = None,
               on_build: Callable[[str], None] = lambda line: None) -> JobPython:
    """The Python for one job on `image`: its cached environment (built now if missing, after telling
    `on_build`, since that takes a while) or the host's."""
    if check_job_env(job_env) == "host":
        versions = _host_versions(image)
        return JobPython(sys.executable, None, _describe(image, "host", versions, [
            "--job-env host: the runner's own interpreter and packages, not the image's"]))
    try:
        manifest = ensure(image, requirements, on_build)
    except EnvironmentFailure as exc:  # never fail a run for its environment: say so and use the host's
        return JobPython(sys.executable, None, _describe(image, "host", _host_versions(image), [str(exc)]))
    if manifest["kind"] == "host":
        return JobPython(sys.executable, None, _describe(image, "host", manifest["versions"], manifest["notes"]))
    bin_dir = str(Path(manifest["path"]) / "bin")
    return JobPython(str(Path(bin_dir) / "python"), bin_dir,
                     _describe(image, manifest["path"], manifest["versions"], manifest["notes"]))


def ensure(image: Image, requirements: Path | None = None,
           on_build: Callable[[str], None] = lambda line: None) -> dict:
    """The manifest of `image`'s environment (+ a training requirements.txt), built once and cached."""
    req_text = requirements.read_text() if requirements else ""
    key = _key(image, req_text)
    root = cache_root()
    target = root / key
    manifest_path = target / _MANIFEST
    if manifest_path.is_file():
        return json.loads(manifest_path.read_text())
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per key; others wait, then read its manifest
        if manifest_path.is_file():
            return json.loads(manifest_path.read_text())
        on_build(f"[local runner] building the environment of {image.name} into {target} (once; uv)")
        work = Path(tempfile.mkdtemp(prefix=f"{key}.partial-", dir=root))
        try:
            manifest = _build(image, work, req_text, target)
            (work / _MANIFEST).write_text(json.dumps(manifest, indent=1))
            if manifest["kind"] == "host":  # nothing to keep but the manifest
                shutil.rmtree(work / "venv", ignore_errors=True)
            work.rename(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return manifest


def _key(image: Image, requirements: str) -> str:
    identity = {"recipe": _RECIPE, "image": image.name, "packages": image.packages, "boto3_floor": BOTO3_FLOOR,
                "python": platform.python_version(), "executable": sys.base_prefix,
                "machine": platform.machine(), "requirements": requirements}
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return f"{image.family}-{image.version}-py{sys.version_info[0]}{sys.version_info[1]}-{digest}"


def _build(image: Image, work: Path, requirements: str, target: Path) -> dict:
    """Make the virtualenv under `work/venv`: the image's versions, else the nearest, else the host's."""
    venv = work / "venv"
    python = venv / "bin" / "python"
    _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    failures = []
    for attempt, (first, then, options, forced) in enumerate(_attempts(image)):
        result = _install(python, *_listed(work / "overrides.txt", "--overrides", forced), *options, *first)
        if result.returncode == 0 and then:
            result = _then(image, python, work, then)
        if result.returncode == 0:
            imported = _imports(python, image)
            if imported is None:
                break
            failures.append(imported)
        elif any(hint in result.stderr for hint in _NETWORK_ERRORS):  # not the versions' fault: retry next job
            raise EnvironmentFailure(f"the package index is unreachable ({_last_line(result.stderr)}); "
                                     "this job runs on the host's packages")
        else:
            failures.append(_last_line(result.stderr))
        if attempt == 0:  # start the nearest-version attempt from a clean environment
            shutil.rmtree(venv)
            _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    else:
        return {"kind": "host", "path": None, "versions": _host_versions(image),
                "notes": [f"the image's versions and the nearest ones do not install on Python "
                          f"{platform.python_version()} ({'; '.join(failures)}); this job runs on the host's packages"]}
    notes = []
    if requirements:  # after the image's packages, as the training toolkit runs pip at the job's start
        (work / "requirements.txt").write_text(requirements)
        result = _uv("pip", "install", "--quiet", "--compile-bytecode", "--python", str(python),
                     "-r", str(work / "requirements.txt"), check=False)
        if result.returncode != 0:
            notes.append(f"requirements.txt did not install: {_last_line(result.stderr)}")
    versions = _env_versions(python, image)
    notes += _differences(image, versions)
    if failures:
        notes.append(f"the image's exact versions do not install on Python {platform.python_version()} "
                     f"({failures[0]}); the nearest installable ones are used")
    notes += [f"not here: {what}" for what in image.absent]
    return {"kind": "venv", "path": str(target / "venv"), "versions": versions, "notes": notes}


def _attempts(image: Image) -> list[tuple[list[str], list[str], list[str], list[str]]]:
    """Each attempt: what to install first, what after, uv's options for the first, and the overrides.

    First the image's exact versions, as overrides too: the build installed them whatever its other
    packages declared (pip's old resolver did not check). Then the lowest release at or above each `==`
    pin (uv's lowest-direct), and only after it, at the newest that fits, what the build leaves open (a
    range, or no version), as pip chose it; no overrides there, since a `>=` override would also void
    what a newer release needs (scipy's numpy). boto3 is at least BOTO3_FLOOR, with the botocore that
    version needs rather than the image's."""
    boto3 = max(image.version_of("boto3") or BOTO3_FLOOR, BOTO3_FLOOR, key=_numeric)
    raised = boto3 != image.version_of("boto3")
    packages = {name: spec for name, spec in image.packages.items()
                if name != "boto3" and not (raised and name == "botocore")}
    pinned = {name: spec for name, spec in packages.items() if spec and spec[0] not in "<>=!~"}
    ranges = [f"{name}{spec}" for name, spec in packages.items() if spec and name not in pinned]
    # pip, setuptools and wheel are in every image (its Python's installer), at the image's version if it names
    # one; setuptools from before 81, which dropped the pkg_resources that the images' older packages import
    ranges += ["setuptools<81"] if not packages.get("setuptools") else []
    unpinned = [name for name, spec in packages.items() if not spec and name != "setuptools"] + \
        [name for name in ("pip", "wheel") if name not in packages]
    exact = [f"{name}=={spec}" for name, spec in pinned.items()] + [f"boto3=={boto3}", *ranges]
    nearest = [f"{name}>={spec.rstrip('.*')}" for name, spec in pinned.items()] + [f"boto3>={boto3}"]
    return [(exact, unpinned, [], exact),
            (nearest, [*ranges, *unpinned], ["--resolution", "lowest-direct"], [])]


def _then(image: Image, python: Path, work: Path, then: list[str]) -> subprocess.CompletedProcess:
    """Install what comes after the pins against what is installed, which uv would otherwise move (it
    resolves only what it is given: requests<2.21 would take urllib3 below what botocore needs); where
    the image's own requirements conflict (that requests beside urllib3==1.25.9), force them as its pip did."""
    coming = {re.split(r"[\[<>=!~]", spec)[0].lower() for spec in then}
    frozen = [line for line in _uv("pip", "freeze", "--python", str(python)).stdout.split()
              if line.split("==")[0].lower() not in coming]
    result = _install(python, *_listed(work / "installed.txt", "--constraints", frozen), *then)
    if result.returncode == 0 and not _broken(python, coming):  # (requests 2.15, which fits, breaks on 3.11)
        return result
    named = {name.split("[")[0] for name in image.packages}
    forced = [line for line in frozen if line.split("==")[0].lower() in named] + \
        [spec for spec in then if any(c in spec for c in "<>=!~")]
    return _install(python, *_listed(work / "forced.txt", "--overrides", forced),
                    *[arg for name in sorted(coming) for arg in ("--upgrade-package", name)], *then)


def _broken(python: Path, names: set[str]) -> str | None:
    """The first of the modules named like `names` (requests, tqdm...) that is installed but fails to import
    (the installers aside: setuptools's distutils shim refuses a bare import where distutils came first)."""
    code = ("import importlib, importlib.util, sys\n"
            f"for name in {sorted(n.replace('-', '_') for n in names - {'pip', 'setuptools', 'wheel'})!r}:\n"
            "    if importlib.util.find_spec(name):\n"
            "        try:\n            importlib.import_module(name)\n"
            "        except Exception as e:\n            sys.exit(f'{name}: {type(e).__name__}: {e}')\n")
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return None if result.returncode == 0 else _last_line(result.stderr)


def _listed(path: Path, option: str, requirements: list[str]) -> list[str]:
    """`option path` with `requirements` written to `path`, or nothing when there are none."""
    if not requirements:
        return []
    path.write_text("\n".join(requirements) + "\n")
    return [option, str(path)]


def _install(python: Path, *args: str) -> subprocess.CompletedProcess:
    return _uv("pip", "install", "--quiet", "--compile-bytecode", "--python", str(python), *_BINARIES, *args,
               check=False)


def _numeric(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def _imports(python: Path, image: Image) -> str | None:
    """None when every framework module imports in the environment, else the error."""
    modules = ", ".join(MODULES[name] for name in _names(image) if name in MODULES)
    result = subprocess.run([str(python), "-c", f"import {modules}"], capture_output=True, text=True)
    return None if result.returncode == 0 else f"import failed: {_last_line(result.stderr)}"


def _names(image: Image) -> list[str]:
    """The image's distributions for the job log: the framework's first (MODULES), then the rest by name."""
    names = {name.split("[")[0] for name in image.packages} | {"boto3"}
    return [n for n in MODULES_FIRST if n in names] + sorted(names - set(MODULES_FIRST))


def _env_versions(python: Path, image: Image) -> dict[str, str]:
    code = ("import json, importlib.metadata as m\n"
            "def version(name):\n"
            "    try:\n        return m.version(name)\n"
            "    except m.PackageNotFoundError:\n        return 'missing'\n"
            f"print(json.dumps({{n: version(n) for n in {json.dumps(_names(image))}}}))")
    return json.loads(subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout)


def _host_versions(image: Image) -> dict[str, str]:
    versions = {}
    for name in _names(image):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def _differences(image: Image, versions: dict[str, str]) -> list[str]:
    notes = []
    for name in versions:
        spec, installed = image.version_of(name), versions[name]
        if spec and spec[0] not in "<>=!~" and installed != spec and not installed.startswith(spec.rstrip("*.") + "."):
            reason = " (AWS_ENDPOINT_URL_S3 needs it)" if name in ("boto3", "botocore") else ""
            notes.append(f"{name}=={installed} instead of the image's {spec}{reason}")
    return notes


def _describe(image: Image, where: str, versions: dict[str, str], notes: list[str]) -> tuple[str, ...]:
    """The job log's first lines: image, Python, `name==version`s, and what differs from the image."""
    lines = [f"[local runner] image {image.name} (its Python: {image.python}); job environment: {where}",
             f"[local runner] Python {platform.python_version()} ({sys.implementation.name})",
             "[local runner] " + " ".join(f"{name}=={version}" for name, version in versions.items())]
    return tuple(lines + [f"[local runner] note: {note}" for note in notes])


def _uv(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run uv; --compile-bytecode on installs matters: with PYTHONDONTWRITEBYTECODE set (as many
    machines and the images set it) an environment without .pyc files recompiles pandas at every job."""
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    try:
        result = subprocess.run([_uv_binary(), *args], capture_output=True, text=True, env=env,
                                timeout=_INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired as exc:
        raise EnvironmentFailure(f"uv {args[0]} took longer than {_INSTALL_TIMEOUT} s") from exc
    if check and result.returncode != 0:
        raise EnvironmentFailure(f"uv {' '.join(args[:2])} failed: {_last_line(result.stderr)}")
    return result


def _uv_binary() -> str:
    try:
        from uv import find_uv_bin
        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if not found:
            raise EnvironmentFailure("uv is not installed: pip install uv (or run with --job-env host)") from None
        return found


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"
