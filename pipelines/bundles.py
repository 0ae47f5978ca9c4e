"""Code addressed by content: the same files always give the same bytes and URI.

This is what makes compiles byte-identical and lets SageMaker's step cache
notice a code change: the S3 URI itself changes.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from pipelines.files import user_cache

SKIPPED = ("__pycache__", ".pyc", ".pytest_cache")


def file_asset(path: Path, code_root: str) -> tuple[str, bytes]:
    """(s3 uri, bytes) of a single script."""
    data = Path(path).read_bytes()
    return f"{code_root}/{_digest(data)}/{Path(path).name}", data


def folder_asset(folder: Path, code_root: str) -> tuple[str, bytes]:
    """(s3 uri, bytes) of a folder as SageMaker's sourcedir.tar.gz, packed deterministically."""
    data = pack(folder)
    return f"{code_root}/{_digest(data)}/sourcedir.tar.gz", data


def pack(folder: Path) -> bytes:
    """tar.gz of `folder`'s files: sorted names, zero mtimes and owners, fixed modes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file() or any(part.endswith(SKIPPED) for part in path.parts):
                continue
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            data = path.read_bytes()
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", filename="", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def with_files(folder: Path, extra: dict[str, Path]) -> Path:
    """`folder` with `extra` files added (name inside -> file), as a folder of its own in the user cache
    named by its content: how a definition ships a file it was given (a plug-in) with code it shares.
    Made once, renamed into place, so concurrent builds and compiles read a whole folder."""
    names = sorted(extra)
    key = hashlib.sha256(pack(folder) + b"".join(n.encode() + b"\0" + Path(extra[n]).read_bytes() for n in names))
    target = user_cache("sources") / key.hexdigest()[:32]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".making-", dir=target.parent))
    try:
        shutil.copytree(folder, work / "folder", ignore=shutil.ignore_patterns(*(f"*{s}" for s in SKIPPED)))
        for name in names:
            (work / "folder" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(extra[name], work / "folder" / name)
        try:
            os.rename(work / "folder", target)
        except OSError:  # another process made it first: the same content
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
