"""Executions in words: the summary of `deploy.py run`, the listing of `runs`, the comparison of `compare`.

All work on views, one plain dict per execution whatever ran it: the local runner's record
(`local_view`) or SageMaker's answers (`executions.view`). A view has `execution_id`, `pipeline_name`,
`status`, `started`, `seconds`, `parameters`, `definition`, `steps` (name, type, status, and what each
step answered), `metrics` (the model-quality report), `report_file` (the first report a condition
read), `registered` and `failure_reason`, so nothing here knows where a run happened.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from typing import Callable

from pipelines import quality
from pipelines.spec import Definition

_CODE_URI = re.compile(r"s3://[^\s\"']+/code/[0-9a-f]{64}/[^\s\"']+")
# Parameters that choose the rows a model is tested on, besides the data itself.
_SPLIT = re.compile(r"split|seed|fold", re.IGNORECASE)


def local_view(record: dict, definition: Definition | None) -> dict:
    """A local execution record as a view."""
    steps = record.get("steps") or []
    reports = [doc for step in steps for doc in (step.get("property_files") or {}).values()]
    registered = next((s["response"] for s in steps if s.get("type") == "RegisterModel"
                       and s.get("status") == "Succeeded" and s.get("response")), None)
    return {
        **{k: record.get(k) for k in ("execution_id", "execution_arn", "pipeline_name", "status", "started",
                                      "seconds", "failure_reason", "failed_step", "stop_reason", "selective",
                                      "report", "model_card", "runner_gone")},
        "stopped_steps": record.get("stopped_steps") or [],
        "parameters": record.get("parameters") or {}, "definition": definition, "steps": steps,
        "metrics": next((doc for doc in reports if quality.is_report(doc)), None),
        "report_file": next(iter(reports), None),
        "registered": registered and {k: registered.get(k) for k in
                                      ("ModelPackageArn", "ModelPackageVersion", "ModelPackageGroupName",
                                       "ModelApprovalStatus")},
    }


def registered_groups(definition: Definition | None) -> list[str]:
    """The model package groups a definition's RegisterModel steps register into, in order."""
    return list(dict.fromkeys(placed.step.arguments["ModelPackageGroupName"]
                              for placed in (definition.flat if definition else ())
                              if placed.step.type == "RegisterModel"))


def gate(view: dict) -> dict | None:
    """The execution's quality gate: the first comparison of a Condition step with a report value (as the
    report shows it), with the rule and baseline behind its threshold when the report states them."""
    from pipelines.report.gather import quality_gates

    steps = {s["name"]: s for s in view.get("steps") or []}
    found = next(iter(quality_gates(view.get("definition"), steps, view.get("parameters") or {},
                                    view.get("report_file"))), None)
    if found is None:
        return None
    stated = (view.get("report_file") or {}).get("gate") or {}
    return {"metric": found["path"], "value": found["value"], "operator": found["operator"],
            "threshold": found["threshold"], "outcome": found["outcome"],
            "passed": stated.get("passed") if found["outcome"] is None else found["outcome"] == "True",
            "rule": stated.get("rule"), "baseline": stated.get("baseline")}


def summary(view: dict) -> dict:
    """What a person or a script wants to know about a run (the `run --json` document)."""
    failed = next((s for s in view.get("steps") or [] if s["name"] == view.get("failed_step")), {})
    return {
        **{k: view.get(k) for k in ("execution_id", "pipeline_name", "status", "failure_reason", "failed_step",
                                    "stop_reason", "stopped_steps", "seconds", "selective", "report", "model_card")},
        "failure_log": failed.get("log"),
        "steps": [{"name": s["name"], "type": s.get("type"), "status": s.get("status"),
                   "cache_hit": bool(s.get("cache_hit")), "reused_from": s.get("reused_from"),
                   "seconds": s.get("seconds")} for s in view.get("steps") or []],
        "gate": gate(view),
        "registered_model": view.get("registered"),
        "metrics": view.get("report_file"),
    }


def run_row(view: dict) -> dict:
    """One line of `deploy.py runs`: id, pipeline, status, start, duration, gate, registered version."""
    return {
        "execution_id": view["execution_id"], "pipeline": view.get("pipeline_name"), "status": view["status"],
        "started": view["started"], "seconds": view["seconds"], "gate": gate(view),
        "model_version": (view["registered"] or {}).get("ModelPackageVersion"),
        "selective": view.get("selective"), "runner_gone": view.get("runner_gone"),
    }


def compare(a: dict, b: dict, read: Callable[[str], bytes | None]) -> dict:
    """Two views side by side: parameters, metrics with their deltas (b - a), model versions, the
    code that changed between the definitions (`read(uri)` fetches a bundle, None if gone), and
    `warnings`: why their metrics may not be comparable (another pipeline, other data, another split)."""
    names = list(dict.fromkeys([*a["parameters"], *b["parameters"]]))
    metrics_a, metrics_b = quality.scalar_metrics(a["metrics"]), quality.scalar_metrics(b["metrics"])
    return {
        "runs": [{k: view.get(k) for k in ("execution_id", "pipeline_name", "status", "started", "seconds")}
                 for view in (a, b)],
        "warnings": not_comparable(a, b),
        "parameters": [{"name": n, "a": a["parameters"].get(n), "b": b["parameters"].get(n),
                        "changed": str(a["parameters"].get(n)) != str(b["parameters"].get(n))} for n in names],
        "metrics": [{"name": n, "a": metrics_a.get(n), "b": metrics_b.get(n),
                     "delta": metrics_b[n] - metrics_a[n] if n in metrics_a and n in metrics_b else None}
                    for n in dict.fromkeys([*metrics_a, *metrics_b])],
        "models": [(view["registered"] or {}).get("ModelPackageVersion") for view in (a, b)],
        "code": code_changes(a["definition"], b["definition"], read),
    }


def not_comparable(a: dict, b: dict) -> list[str]:
    """Why two executions' metrics do not measure the same thing: another pipeline, other input data
    (the InputData parameter; a file given by path is addressed by its content), or another test split
    (a parameter that chooses it: a split, seed or fold)."""
    warnings = []
    if a.get("pipeline_name") != b.get("pipeline_name"):
        warnings.append(f"different pipelines: A ran {a.get('pipeline_name')}, B ran {b.get('pipeline_name')}")
    pa, pb = a["parameters"], b["parameters"]
    if "InputData" in pa or "InputData" in pb:
        if str(pa.get("InputData")) != str(pb.get("InputData")):
            warnings.append(f"different input data: A read {pa.get('InputData')}, B read {pb.get('InputData')}")
    for name in dict.fromkeys([*pa, *pb]):
        if _SPLIT.search(name) and str(pa.get(name)) != str(pb.get(name)):
            warnings.append(f"different test split: {name} is {pa.get(name)} in A, {pb.get(name)} in B")
    return warnings


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
