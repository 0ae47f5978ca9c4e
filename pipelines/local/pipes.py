"""Pipe input mode for augmented manifest channels, as SageMaker streams them to a training container.

A channel with `S3DataType: AugmentedManifestFile` names a JSON Lines file; for each line, SageMaker sends
the values of the channel's `AttributeNames`, in that order, one record each: an attribute whose name ends
in `-ref` as the bytes of the S3 object it names, any other as its string representation (`1` for 1, the
text of a string, JSON for arrays and objects). With `RecordWrapperType: RecordIO` each record is wrapped in
RecordIO framing; with `None` the records follow each other as they are. The stream reaches the container
through a named pipe per epoch, `/opt/ml/input/data/<channel>_<epoch>`, read in order from epoch 0; SageMaker
accepts augmented manifests in Pipe mode only (the API refuses File mode). See the Developer Guide's
"Provide Dataset Metadata to Training Jobs with an Augmented Manifest File".
"""
from __future__ import annotations

import errno
import json
import os
import struct
import threading
from pathlib import Path
from typing import Callable, Iterator

RECORDIO_MAGIC = 0xCED7230A  # MXNet's RecordIO, as the SageMaker SDK's amazon.common writes and reads it
POLL_SECONDS = 0.02  # how often a pipe's writer looks for its reader
MAX_RECORD = (1 << 29) - 1  # the length field's 29 bits; longer records would need RecordIO's continuation


class ManifestError(ValueError):
    """A manifest line the channel cannot stream; the message names the line and the attribute."""


def recordio(data: bytes) -> bytes:
    """One RecordIO record: magic, length, the data, zero padding to four bytes."""
    if len(data) > MAX_RECORD:
        raise ManifestError(f"a record of {len(data)} bytes is longer than RecordIO's {MAX_RECORD}")
    return struct.pack("<II", RECORDIO_MAGIC, len(data)) + data + b"\0" * (-len(data) % 4)


def records(manifest: bytes, attributes: list[str], fetch: Callable[[str], bytes], where: str) -> Iterator[bytes]:
    """The records of an augmented manifest: per line, each attribute's value in `attributes`' order."""
    for number, line in enumerate(manifest.decode("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise ManifestError(f"{where} line {number} is not JSON: {e}") from None
        for name in attributes:
            if not isinstance(obj, dict) or name not in obj:
                raise ManifestError(f"{where} line {number} has no attribute {name!r} (AttributeNames lists it)")
            value = obj[name]
            if name.endswith("-ref"):
                if not isinstance(value, str) or not value.startswith("s3://"):
                    raise ManifestError(f"{where} line {number}: {name} is {value!r}, not an s3:// URI")
                yield fetch(value)
            else:
                yield (value if isinstance(value, str) else json.dumps(value)).encode("utf-8")


def write_stream(path: Path, manifest: bytes, attributes: list[str], wrapper: str,
                 fetch: Callable[[str], bytes], where: str) -> None:
    """The bytes one epoch of the channel streams, written to `path` once (every epoch repeats them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as out:
        for record in records(manifest, attributes, fetch, where):
            out.write(recordio(record) if wrapper == "RecordIO" else record)


class Feeder:
    """Feeds a stream into `<folder>/<channel>_0`, `_1`, ...: the FIFO of each epoch is made before the
    previous one closes, and its writer waits for the container to open it, as SageMaker's pipes do."""

    def __init__(self, folder: Path, channel: str, stream: Path):
        self.folder, self.channel, self.stream = folder, channel, stream
        self._stopped = threading.Event()
        self._epoch = 0
        self._thread = threading.Thread(target=self._feed, name=f"pipe-{channel}", daemon=True)

    def fifo(self, epoch: int) -> Path:
        return self.folder / f"{self.channel}_{epoch}"

    def start(self) -> Feeder:
        self.folder.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.fifo(0))  # there before the container starts
        self._thread.start()
        return self

    def _feed(self) -> None:
        while (fd := self._open(self.fifo(self._epoch))) is not None:
            try:
                os.set_blocking(fd, True)
                os.mkfifo(self.fifo(self._epoch + 1))  # the next epoch's pipe exists when this one ends
                with open(self.stream, "rb") as data:
                    while chunk := data.read(1 << 20):
                        _write_all(fd, chunk)
            except BrokenPipeError:
                pass  # the reader stopped before the end of the epoch, as it may
            finally:
                os.close(fd)
            self._epoch += 1

    def _open(self, fifo: Path) -> int | None:
        """The pipe opened for writing once the container opens it to read; None once stopped."""
        while not self._stopped.is_set():
            try:
                return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            self._stopped.wait(POLL_SECONDS)
        return None

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
