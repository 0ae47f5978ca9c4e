"""Runs side by side: the listing of `deploy.py runs` and the comparison of `deploy.py compare`.

Both work on views, one plain dict per execution whatever ran it: the local runner's record
(`local_view`) or SageMaker's answers (`executions.view`). A view has `execution_id`, `status`,
`started`, `seconds`, `parameters`, `definition`, `metrics` (the model-quality report) and
`registered` (ModelPackageArn and ModelPackageVersion), so nothing here knows where a run happened.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from typing import Callable

from pipelines.problems import PROBLEMS
from pipelines.spec import Definition

_SECTIONS = [p.metrics_key for p in PROBLEMS.values()]
_CODE_URI = re.compile(r"s3://[^\s\"']+/code/[0-9a-f]{64}/[^\s\"']+")


def local_view(record: dict, definition: Definition | None) -> dict:
    """A local execution record as a view."""
    steps = record.get("steps") or []
    metrics = next((doc for step in steps for doc in (step.get("property_files") or {}).values()
                    if any(section in doc for section in _SECTIONS)), None)
    registered = next((s["response"] for s in steps if s.get("type") == "RegisterModel"
                       and s.get("status") == "Succeeded" and s.get("response")), None)
    return {
        "execution_id": record["execution_id"], "execution_arn": record.get("execution_arn"),
        "status": record["status"], "started": record.get("started"), "seconds": record.get("seconds"),
        "parameters": record.get("parameters") or {}, "definition": definition,
        "failure_reason": record.get("failure_reason"), "metrics": metrics,
        "registered": registered and {k: registered.get(k) for k in ("ModelPackageArn", "ModelPackageVersion")},
        "selective": record.get("selective"),
    }


def scalar_metrics(evaluation: dict | None) -> dict[str, float]:
    """The model-quality section's scalar metrics, e.g. {"roc_auc": 0.93, ...}."""
    section = next((evaluation[s] for s in _SECTIONS if evaluation and s in evaluation), None) or {}
    values = {name: value.get("value") if isinstance(value, dict) else value for name, value in section.items()}
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def gate(evaluation: dict | None) -> dict | None:
    """The gate section evaluate.py writes: metric, value, threshold, passed."""
    stated = (evaluation or {}).get("gate")
    if not isinstance(stated, dict) or stated.get("value") is None:
        return None
    return {k: stated.get(k) for k in ("metric", "value", "threshold", "passed", "rule")}


def run_row(view: dict) -> dict:
    """One line of `deploy.py runs`: id, status, start, duration, gate metric, registered version."""
    return {
        "execution_id": view["execution_id"], "status": view["status"], "started": view["started"],
        "seconds": view["seconds"], "gate": gate(view["metrics"]),
        "model_version": (view["registered"] or {}).get("ModelPackageVersion"),
        "selective": view.get("selective"),
    }


def compare(a: dict, b: dict, read: Callable[[str], bytes | None]) -> dict:
    """Two views side by side: parameters, metrics with their deltas (b - a), model versions, and
    the code that changed between the definitions (`read(uri)` fetches a bundle, None if gone)."""
    names = list(dict.fromkeys([*a["parameters"], *b["parameters"]]))
    metrics_a, metrics_b = scalar_metrics(a["metrics"]), scalar_metrics(b["metrics"])
    return {
        "runs": [{k: view[k] for k in ("execution_id", "status", "started", "seconds")} for view in (a, b)],
        "parameters": [{"name": n, "a": a["parameters"].get(n), "b": b["parameters"].get(n),
                        "changed": str(a["parameters"].get(n)) != str(b["parameters"].get(n))} for n in names],
        "metrics": [{"name": n, "a": metrics_a.get(n), "b": metrics_b.get(n),
                     "delta": metrics_b[n] - metrics_a[n] if n in metrics_a and n in metrics_b else None}
                    for n in dict.fromkeys([*metrics_a, *metrics_b])],
        "models": [(view["registered"] or {}).get("ModelPackageVersion") for view in (a, b)],
        "code": code_changes(a["definition"], b["definition"], read),
    }


def code_uris(definition: Definition | None) -> dict[str, list[str]]:
    """Step name -> the content-addressed code bundles it runs (`s3://.../code/<sha256>/<name>`)."""
    out = {}
    for placed in definition.flat if definition else ():
        found = sorted(set(_CODE_URI.findall(json.dumps(placed.step.arguments).replace('\\"', '"'))))
        if found:
            out[placed.name] = found
    return out


def code_changes(a: Definition | None, b: Definition | None, read: Callable[[str], bytes | None]) -> list[dict]:
    """Per step whose code differs: the bundle names and, where both bundles can be read, the files
    inside them that were added, removed or changed."""
    before, after = code_uris(a), code_uris(b)
    changes = []
    for step in dict.fromkeys([*before, *after]):
        old, new = before.get(step, []), after.get(step, [])
        if old == new:
            continue
        files = None
        if len(old) == len(new) == 1:
            files = _file_changes(read(old[0]), read(new[0]), old[0].rsplit("/", 1)[-1])
        changes.append({"step": step, "a": [u.rsplit("/", 1)[-1] for u in old], "b": [u.rsplit("/", 1)[-1] for u in new],
                        "files": files})
    return changes


def _file_changes(old: bytes | None, new: bytes | None, name: str) -> list[str] | None:
    if old is None or new is None:
        return None
    if not name.endswith(".tar.gz"):
        return [f"changed {name}"]
    digests = [_members(data) for data in (old, new)]
    return ([f"added {n}" for n in sorted(digests[1].keys() - digests[0].keys())]
            + [f"removed {n}" for n in sorted(digests[0].keys() - digests[1].keys())]
            + [f"changed {n}" for n in sorted(digests[0].keys() & digests[1].keys()) if digests[0][n] != digests[1][n]])


def _members(archive: bytes) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: hashlib.sha256(tar.extractfile(m).read()).hexdigest() for m in tar.getmembers() if m.isfile()}
