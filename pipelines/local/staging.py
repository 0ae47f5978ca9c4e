"""Put local files and folders into the local store at the s3:// URIs a definition reads.

A definition JSON written elsewhere names its data and code by s3:// URI;
`--stage s3://bucket/key=LOCAL_PATH` puts a file at that key (under it, when
the key ends with ``/``), or every file of a folder under that prefix (keeping
paths below the folder), so the definition runs unchanged.
"""
from __future__ import annotations

from pathlib import Path

from pipelines.local.storage import Store, split_uri


class StagingError(ValueError):
    """A --stage argument that cannot be carried out; the message names it."""


def parse(pair: str) -> tuple[str, Path]:
    """``s3://bucket/key=LOCAL_PATH`` -> (uri, path), checked. A key may hold "=" itself (Hive-style
    partitions, `year=2024/`, and Redshift's UNLOAD prefixes write them), so the pair splits at the first
    "=" after which a local path exists, else at the first."""
    splits = [i for i, char in enumerate(pair) if char == "="]
    found = [i for i in splits if pair[i + 1:] and Path(pair[i + 1:]).expanduser().exists()]
    at = (found or splits or [len(pair)])[0]
    uri, local = pair[:at], pair[at + 1:]
    if not splits or not uri.startswith("s3://") or not local:
        raise StagingError(f"--stage {pair!r}: write it as s3://bucket/key=LOCAL_PATH")
    try:
        split_uri(uri)
    except ValueError as exc:
        raise StagingError(f"--stage {pair!r}: {exc}") from None
    path = Path(local).expanduser()
    if not path.exists():
        raise StagingError(f"--stage {pair!r}: {local} does not exist")
    return uri, path


def stage(store: Store, pairs: list[str]) -> list[str]:
    """Put each pair's file or folder into `store`; return the object URIs written.

    Every pair is checked before anything is written, so a typo stages nothing."""
    parsed = [parse(pair) for pair in pairs]
    written = []
    for uri, path in parsed:
        if path.is_dir():
            written += store.upload_dir(path, uri)
        else:
            target = uri + path.name if uri.endswith("/") else uri
            store.put_file(target, path)
            written.append(target)
    return written
