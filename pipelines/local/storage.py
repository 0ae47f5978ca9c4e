"""S3-addressed object storage for the local runner.

Jobs address data as ``s3://bucket/key`` exactly as the definition JSON does.
`LocalStore` keeps objects as files under a root directory (the embedded
default: no AWS, no network); `Boto3Store` talks to real S3 or to moto.
Both share the prefix semantics of S3 (`list` is a plain string-prefix match)
and of SageMaker's ``S3Prefix`` data type (`download` keeps each object's path
relative to the prefix), so a job behaves the same on either.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Protocol

import boto3

_TMP_MARK = ".~partial-"  # in-flight uploads; never listed, renamed into place when complete


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); the key may be empty (whole bucket)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, key


def relative_key(prefix_key: str, key: str) -> str:
    """Path an object gets when the S3Prefix ``prefix_key`` is downloaded.

    Objects "inside" the prefix keep their path below it; an exact key, or a key
    that only shares a partial name (prefix ``data/tr`` matching ``data/train/a``),
    keeps its path below the prefix's parent "directory", so an exact key lands
    under its basename, as SageMaker does.
    """
    inside = prefix_key.rstrip("/") + "/"
    if prefix_key and key.startswith(inside):
        return key[len(inside):]
    parent = prefix_key[: prefix_key.rfind("/") + 1]
    return key[len(parent):]


class Store(Protocol):
    def put_bytes(self, uri: str, data: bytes) -> None: ...
    def put_file(self, uri: str, path: Path) -> None: ...
    def get_bytes(self, uri: str) -> bytes: ...
    def exists(self, uri: str) -> bool: ...
    def delete(self, uri: str) -> None: ...
    def list(self, prefix_uri: str) -> list[str]: ...
    def download(self, uri: str, dest_dir: Path, *, keys: list[str] | None = None) -> list[Path]: ...
    def upload_dir(self, src_dir: Path, prefix_uri: str) -> list[str]: ...


class _PrefixOps:
    """`download` and `upload_dir`, written once over each store's primitives."""

    def download(self, uri: str, dest_dir: Path, *, keys: list[str] | None = None) -> list[Path]:
        """Fetch every object under the S3Prefix ``uri`` (or just ``keys``, object
        URIs as `list` returns them, e.g. one host's shard) into ``dest_dir``."""
        _, prefix_key = split_uri(uri)
        objects = self.list(uri) if keys is None else keys
        if keys is None and not objects:
            raise FileNotFoundError(f"No S3 objects found under S3 URL {uri}")
        written = []
        for object_uri in objects:
            rel = relative_key(prefix_key, split_uri(object_uri)[1])
            dest = dest_dir / _safe_relpath(rel, object_uri)
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._fetch(object_uri, dest)
            written.append(dest)
        return written

    def upload_dir(self, src_dir: Path, prefix_uri: str) -> list[str]:
        """Upload every file below ``src_dir`` to ``prefix_uri/<relative path>``."""
        base = prefix_uri.rstrip("/")
        uploaded = []
        for path in sorted(p for p in Path(src_dir).rglob("*") if p.is_file()):
            uri = f"{base}/{path.relative_to(src_dir).as_posix()}"
            self.put_file(uri, path)
            uploaded.append(uri)
        return uploaded

    def _fetch(self, uri: str, dest: Path) -> None:
        raise NotImplementedError


def _safe_relpath(key: str, uri: str) -> Path:
    """A key as a relative path, refusing anything that could leave the target directory."""
    parts = key.split("/")
    if key.startswith("/") or any(part in ("..", ".") for part in parts) or not key:
        raise ValueError(
            f"refusing S3 key {key!r} of {uri}: '..', '.', empty or absolute parts "
            "would escape the storage directory"
        )
    return Path(*parts)


class LocalStore(_PrefixOps):
    """``s3://bucket/key`` stored at ``<root>/<bucket>/<key>``.

    Like a file system and unlike S3, a key cannot be both an object and a
    "directory" of other objects (``a/b`` and ``a/b/c``).
    """

    def __init__(self, root: Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, uri: str) -> Path:
        bucket, key = split_uri(uri)
        _safe_relpath(bucket, uri)
        return self.root / bucket / _safe_relpath(key, uri)

    def put_bytes(self, uri: str, data: bytes) -> None:
        self._commit(uri, lambda tmp: tmp.write_bytes(data))

    def put_file(self, uri: str, path: Path) -> None:
        self._commit(uri, lambda tmp: shutil.copyfile(path, tmp))

    def _commit(self, uri: str, write) -> None:
        """Write under a temporary name beside the target, then rename: readers
        never see a half-written object."""
        dest = self.path(uri)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{_TMP_MARK}{dest.name}-{uuid.uuid4().hex}")
        try:
            write(tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    def get_bytes(self, uri: str) -> bytes:
        path = self.path(uri)
        if not path.is_file():
            raise FileNotFoundError(f"no such object: {uri} (looked at {path})")
        return path.read_bytes()

    def exists(self, uri: str) -> bool:
        return self.path(uri).is_file()

    def delete(self, uri: str) -> None:
        self.path(uri).unlink(missing_ok=True)

    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = split_uri(prefix_uri)
        bucket_dir = self.root / _safe_relpath(bucket, prefix_uri)
        # Only walk the deepest directory the prefix fully names.
        start = bucket_dir / prefix[: prefix.rfind("/") + 1] if "/" in prefix else bucket_dir
        if ".." in Path(start).relative_to(bucket_dir).parts:
            raise ValueError(f"refusing prefix {prefix_uri}: '..' would escape the storage directory")
        found = []
        for dirpath, _, files in os.walk(start):
            for name in files:
                if name.startswith(_TMP_MARK):
                    continue
                key = (Path(dirpath) / name).relative_to(bucket_dir).as_posix()
                if key.startswith(prefix):
                    found.append(f"s3://{bucket}/{key}")
        return sorted(found)

    def _fetch(self, uri: str, dest: Path) -> None:
        shutil.copyfile(self.path(uri), dest)


class Boto3Store(_PrefixOps):
    """The same interface over a boto3 S3 client (real S3, moto, or AWS_ENDPOINT_URL)."""

    def __init__(self, client):
        self.client = client

    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def put_file(self, uri: str, path: Path) -> None:
        bucket, key = split_uri(uri)
        self.client.upload_file(str(path), bucket, key)

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"no such object: {uri}") from None

    def exists(self, uri: str) -> bool:
        bucket, key = split_uri(uri)
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except self.client.exceptions.ClientError as exc:
            if exc.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def delete(self, uri: str) -> None:
        bucket, key = split_uri(uri)
        self.client.delete_object(Bucket=bucket, Key=key)

    def list(self, prefix_uri: str) -> list[str]:
        bucket, prefix = split_uri(prefix_uri)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        keys = (obj["Key"] for page in pages for obj in page.get("Contents", []))
        return sorted(f"s3://{bucket}/{key}" for key in keys if not key.endswith("/"))

    def _fetch(self, uri: str, dest: Path) -> None:
        bucket, key = split_uri(uri)
        self.client.download_file(bucket, key, str(dest))


def open_store(spec: str | None, *, root: Path) -> Store:
    """``None``/``"local"`` -> files under ``root``; ``"s3"`` -> boto3's default S3 client."""
    if spec in (None, "local"):
        return LocalStore(root)
    if spec == "s3":
        return Boto3Store(boto3.client("s3"))
    raise ValueError(f"unknown store {spec!r}: use 'local' (files under {root}) or 's3' (boto3)")
