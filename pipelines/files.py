"""Files of the project's own: written whole (a reader, or a crash, never sees half of one), and the
per-user cache folder that outlives any one local home."""
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


PRODUCT = "ml-pipelines"  # the distribution, its command, and the per-user cache folder
EARLIER_CACHE = "purchase-pipelines"  # the cache folder's name before 0.2 (the product was named after its example)


def user_cache(name: str, override: str | None = None) -> Path:
    """`$<override>` when set, else `$XDG_CACHE_HOME` (or `~/.cache`) / `ml-pipelines/<name>`.

    An earlier version's `purchase-pipelines` folder is used where it is while no `ml-pipelines` folder
    exists, so an upgrade keeps its built job environments (minutes of downloads) and compiled
    definitions; `mv ~/.cache/purchase-pipelines ~/.cache/ml-pipelines` moves it for good."""
    if override and os.environ.get(override):
        return Path(os.environ[override])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    earlier = base / EARLIER_CACHE
    folder = earlier if earlier.is_dir() and not (base / PRODUCT).exists() else base / PRODUCT
    return folder / name
