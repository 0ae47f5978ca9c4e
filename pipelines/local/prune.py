"""Freeing a local home: `deploy.py prune --local [--keep N] [--older-than D] [--dry-run]`.

Three things grow with every run: the executions themselves (records, logs, the jobs' working folders,
and what their steps wrote to the store), the folders of a tuning job's losing trials (each a model,
its code and its inputs), and the models batch transforms unpack. `plan` lists what may go:

- executions beyond the newest `keep` (and, with `older_than`, started before it), their folder and
  the store objects only they reference (processing outputs, training jobs' outputs, transform
  outputs), and the step cache entries that name them;
- in the executions that stay, the folders of tuning trials that completed and were not the best;
- the working folders of batch transforms (their output stays in the store; their log stays).

Never touched: an execution that is going on (its runner alive), one whose registered model version
is not Rejected, and any store object a remaining execution or such a version reads. `apply` deletes
what a plan lists, and nothing else.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipelines.local.home import LocalHome
from pipelines.local.records import settle
from pipelines.local.registry import Registry

UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass
class Item:
    what: str  # "execution", "trial", "transform", "store", "cache"
    path: Path
    size: int
    execution: str | None = None


@dataclass
class Plan:
    store: Path  # the home's store folder: what deleting objects leaves empty there goes too
    items: list[Item] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # execution -> why it stays

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)


def parse_age(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` as a timedelta; ValueError naming the forms otherwise."""
    number, unit = text[:-1], text[-1:]
    if unit not in UNITS or not number.replace(".", "", 1).isdigit():
        raise ValueError(f"--older-than {text!r}: give a number and a unit, e.g. 30m, 12h, 7d or 2w")
    return timedelta(seconds=float(number) * UNITS[unit])


def plan(home: LocalHome, store, *, keep: int = 5, older_than: timedelta | None = None) -> Plan:
    """What may be freed in `home` (nothing is deleted)."""
    records = [settle(home.runs / r["execution_id"], r) for r in home.executions()]  # oldest first
    registered = _registered(home)
    result = Plan(home.s3)
    cutoff = datetime.now(timezone.utc) - older_than if older_than else None
    chosen = []
    for index, record in enumerate(reversed(records)):
        execution = record["execution_id"]
        why = _why_kept(record, index, keep, cutoff, registered)
        if why:
            result.kept[execution] = why
        else:
            chosen.append(record)
    staying = [r for r in records if r["execution_id"] in result.kept]
    protected = _protected(staying, registered.values())
    for record in chosen:
        run_dir = home.runs / record["execution_id"]
        result.items.append(Item("execution", run_dir, _size(run_dir), record["execution_id"]))
        for prefix in _outputs(record):
            for uri in store.list(prefix):
                if not _covered(uri, protected):
                    result.items.append(Item("store", store.path(uri), _size(store.path(uri)), record["execution_id"]))
    pruned = {r["execution_id"] for r in chosen}
    for entry in sorted(home.cache.glob("*.json")):
        if _cache_execution(entry) in pruned:
            result.items.append(Item("cache", entry, _size(entry), _cache_execution(entry)))
    for record in staying:
        if record["status"] != "Executing":
            result.items += losing_trials(home, record)
    for work in sorted((home.root / "transforms").glob("*/")):
        if cutoff and datetime.fromtimestamp(work.stat().st_mtime, timezone.utc) > cutoff:
            continue
        for part in sorted(p for p in work.iterdir() if not p.name.endswith(".log")):
            result.items.append(Item("transform", part, _size(part)))
    return result


def apply(plan: Plan) -> int:
    """Delete what `plan` lists; the bytes freed."""
    freed = 0
    for item in plan.items:
        if item.path.is_dir():
            shutil.rmtree(item.path, ignore_errors=True)
        elif item.path.exists():
            item.path.unlink()
        else:
            continue
        freed += item.size
    for folder in sorted((p for p in plan.store.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):  # the store makes folders for objects only: an empty one held deleted ones
            folder.rmdir()
    return freed


def losing_trials(home: LocalHome, record: dict) -> list[Item]:
    """The working folders of the tuning trials of `record` that ended (completed or stopped early) and were not the best."""
    items = []
    for step in record["steps"]:
        if step.get("type") == "Tuning" and step.get("job_name") and step.get("response"):
            work = home.runs / record["execution_id"] / "jobs" / step["job_name"]
            items += [Item("trial", folder, _size(folder), record["execution_id"])
                      for folder in losing_trial_folders(work, step["response"])]
    return items


def losing_trial_folders(work_dir: Path, response: dict) -> list[Path]:
    """The folders under a tuning job's `work_dir` of its trials that completed, or were stopped early,
    and were not the best (DescribeHyperParameterTuningJob's `response`; a failed trial's folder stays for
    its logs): a model, its code and its inputs each, which nothing
    reads once the tuning job has ended (its best model is the step's; every trial's model.tar.gz stays
    in the store, as SageMaker keeps them)."""
    best = (response.get("BestTrainingJob") or {}).get("TrainingJobName")
    if not best:
        return []
    return [work_dir / s["TrainingJobName"] for s in response.get("TrainingJobSummaries") or []
            if s.get("TrainingJobName") != best and s.get("TrainingJobStatus") in ("Completed", "Stopped")
            and (work_dir / s["TrainingJobName"]).is_dir()]


def _why_kept(record: dict, index: int, keep: int, cutoff: datetime | None, registered: dict) -> str | None:
    if record["status"] == "Executing":
        return "going on"
    if record["execution_id"] in registered:
        version = registered[record["execution_id"]]
        return f"registered {version['ModelPackageGroupName']} v{version['ModelPackageVersion']} " \
               f"({version['ModelApprovalStatus']})"
    if index < keep:
        return f"one of the newest {keep}"
    started = datetime.fromisoformat(record["started"]) if record.get("started") else None
    if cutoff and started and started > cutoff:
        return "newer than --older-than"
    return None


def _registered(home: LocalHome) -> dict[str, dict]:
    """execution id -> the model package version it registered that is not Rejected."""
    if not home.registry.is_file():
        return {}
    registry = Registry.of(home)
    out = {}
    for group in registry.list_groups():
        for version in registry.list_versions(group["ModelPackageGroupName"]):
            execution = version.get("PipelineExecutionId")
            if execution and version.get("ModelApprovalStatus") != "Rejected":
                out[execution] = version
    return out


def _protected(staying: list[dict], versions) -> set[str]:
    """Every store location a remaining execution reads or wrote, and every kept version's model."""
    found = set()
    for record in staying:
        found |= _uris(record) | set(_outputs(record))
    for version in versions:
        for container in (version.get("InferenceSpecification") or {}).get("Containers") or []:
            if container.get("ModelDataUrl"):
                found.add(container["ModelDataUrl"].rsplit("/", 1)[0] + "/")
    return found


def _outputs(record: dict) -> list[str]:
    """Where the steps of `record` wrote: processing outputs, training jobs' folders (a tuning job's
    trials' too), transform outputs; never a prefix other executions share."""
    prefixes = set()
    for step in record["steps"]:
        response, arguments = step.get("response") or {}, step.get("arguments") or {}
        for output in (response.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            prefixes.add(output["S3Output"]["S3Uri"].rstrip("/") + "/")
        artifacts = (response.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
        if artifacts and step.get("type") == "Training" and not step.get("reused_from"):
            prefixes.add(artifacts.rsplit("/output/", 1)[0] + "/")
        path = ((arguments.get("TrainingJobDefinition") or {}).get("OutputDataConfig") or {}).get("S3OutputPath")
        if path and step.get("type") == "Tuning" and not step.get("reused_from"):
            prefixes |= {f"{path.rstrip('/')}/{s['TrainingJobName']}/" for s in response.get("TrainingJobSummaries") or []}
        output = (response.get("TransformOutput") or {}).get("S3OutputPath")
        if output and step.get("type") == "Transform":
            prefixes.add(output.rstrip("/") + "/")
    if record.get("selective"):  # reused steps' outputs are their source execution's, not this one's
        reused = {s["name"] for s in record["steps"] if s.get("reused_from")}
        prefixes = {p for p in prefixes if not any(f"/{name}/" in p for name in reused)}
    return sorted(prefixes)


def _uris(tree) -> set[str]:
    """Every s3:// location a record names (arguments, responses, property files) but the folders its
    jobs write under, which all executions share (`OutputDataConfig.S3OutputPath`)."""
    found = set()
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key != "S3OutputPath":
                found |= _uris(value)
    elif isinstance(tree, list):
        for value in tree:
            found |= _uris(value)
    elif isinstance(tree, str) and tree.startswith("s3://"):
        found.add(tree)
    return found


def _covered(uri: str, protected: set[str]) -> bool:
    """Whether an object is one a remaining execution or version reads, or lies under such a location."""
    return any(uri == p or uri.startswith(p.rstrip("/") + "/") for p in protected)


def _cache_execution(entry: Path) -> str | None:
    try:
        return json.loads(entry.read_text()).get("execution_id")
    except (OSError, ValueError):
        return None


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0

