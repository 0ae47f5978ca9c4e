"""Local data into a store, addressed by its content: how `--input-data` (a run's InputData) and
`--input` (a batch transform's) reach S3 or the local store, the same way for both.

A file goes to `<root>/<sha256 of its bytes>/<name>`, a folder's files under `<root>/<sha256 of
their names and digests>/`, keeping paths below the folder (one object each, so instances can share
them; hidden files such as `.DS_Store` are left out). The same data always lands at the same URI, so
an unchanged file is uploaded once and a changed one never hides behind a cached step. Standard
library only: both targets use it.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

_CHUNK = 1 << 20


class InputError(ValueError):
    """A path that names no data; the message says what to give instead."""


def stage_input(path_or_uri: str, root: str, put: Callable[[str, Path], None], *, flag: str = "--input-data") -> str:
    """An s3:// URI as it is; a local file or folder put with `put(uri, path)` under `root`; the URI."""
    if path_or_uri.startswith("s3://"):
        return path_or_uri
    path = Path(path_or_uri).expanduser()
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file() and not _hidden(f.relative_to(path)))
        if not files:
            raise InputError(f"{flag} {path_or_uri}: the folder has no files (give CSV/Parquet files)")
        names = {f: f.relative_to(path).as_posix() for f in files}
        prefix = f"{root}/" + hashlib.sha256("".join(f"{names[f]}\0{digest(f)}\0" for f in files).encode()).hexdigest()
        for f in files:  # one at a time: a big data set need not fit in memory
            put(f"{prefix}/{names[f]}", f)
        return prefix
    if not path.is_file():
        raise InputError(f"{flag} {path_or_uri}: no such file or folder (give CSV/Parquet files or an s3:// URI)")
    uri = f"{root}/{digest(path)}/{path.name}"
    put(uri, path)
    return uri


def digest(path: Path) -> str:
    """sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
