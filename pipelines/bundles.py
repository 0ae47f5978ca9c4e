"""Code addressed by content: the same files always give the same bytes and URI.

This is what makes compiles byte-identical and lets SageMaker's step cache
notice a code change: the S3 URI itself changes.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
