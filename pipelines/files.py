"""Writing a file whole: a reader, or a crash, never sees half of it."""
from __future__ import annotations

import os
import threading
from pathlib import Path


def write_atomically(path: Path | str, data: str | bytes) -> Path:
    """Write beside the target, then rename over it; the folder is created if need be.

    A failed write leaves the old file, if any, and no stray temporary one. The temporary name
    carries the process and thread, so concurrent writers never share one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        if isinstance(data, bytes):
            tmp.write_bytes(data)
        else:
            tmp.write_text(data, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
