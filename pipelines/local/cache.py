"""The step cache under `home.cache`: one JSON entry per key, written atomically."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from pipelines.local.records import now, write_json_atomically

# Where a request says (and a Describe response echoes) where outputs go: `{parent: field}`.
OUTPUT_FIELDS = {
    "S3Output": "S3Uri",
    "OutputDataConfig": "S3OutputPath",
    "TransformOutput": "S3OutputPath",
    "ModelArtifacts": "S3ModelArtifacts",
}


class StepCache:
    """Responses of succeeded job steps, keyed by what determines their result.

    The key is the step type and the resolved Arguments minus where outputs
    are written (those carry the execution id); code is content-addressed in
    its S3 URI, so a code change is a different key. As in SageMaker, a hit
    reuses the earlier job's response, whose outputs live where that job wrote them.
    """

    def __init__(self, root: Path, store):
        self.root = root
        self.store = store

    @staticmethod
    def key(step_type: str, arguments: dict, job_env: str) -> str:
        """`job_env` is part of it: a result computed on the host's packages is no answer for the image's."""
        stripped = json.loads(json.dumps(arguments))
        for parent, field in list(_output_fields(stripped)):
            del parent[field]
        canonical = json.dumps({"type": step_type, "arguments": stripped, "job_env": job_env}, sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def lookup(self, key: str, expire_after: timedelta | None) -> dict | None:
        """The entry for `key` if it has not expired and its outputs still exist."""
        path = self.root / f"{key}.json"
        try:
            entry = json.loads(path.read_text())
            created = datetime.fromisoformat(entry["created"])
        except (OSError, ValueError, KeyError, TypeError):  # none, or damaged outside the runner: run the step
            return None
        if expire_after is not None and created + expire_after <= datetime.now(timezone.utc):
            return None
        if not all(self._exists(parent[field]) for parent, field in _output_fields(entry["response"])):
            return None
        return entry

    def save(self, key: str, entry: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomically(self.root / f"{key}.json", {**entry, "created": now()})

    def _exists(self, uri: str) -> bool:
        return self.store.exists(uri) or bool(self.store.list(uri.rstrip("/") + "/"))


def _output_fields(tree: Any, parent_key: str | None = None) -> Iterator[tuple[dict, str]]:
    """(dict, field) for every output location in a request or response tree."""
    if isinstance(tree, dict):
        field = OUTPUT_FIELDS.get(parent_key)
        if field in tree:
            yield tree, field
        for key, value in tree.items():
            yield from _output_fields(value, key)
    elif isinstance(tree, list):
        for value in tree:
            yield from _output_fields(value, parent_key)
