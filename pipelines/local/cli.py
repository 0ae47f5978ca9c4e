"""`deploy.py run --local` and `models --local`: the local runner behind the command line.

The runner itself only reads definition JSON; this module compiles, puts the
code bundles and the input data into the local store (what upsert does for
S3), starts the run and prints progress and the summary.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from pipelines import cli
from pipelines.problems import PROBLEMS

SYNTHETIC_ROWS = 12_330  # the size of the real data set
SYNTHETIC_SEED = 0


def run_local(args) -> int:
    from pipelines.local import open_store
    from pipelines.report import publish_local_run

    home = cli._home(args)
    store = open_store(None, root=home.s3)
    cfg = cli._config(args)
    events = None if args.json else _print_event
    _stage(store, args.stage)
    if args.resume:  # the recorded definition and pipeline name, not the current ones
        record = _run(None, home=home, store=store, resume=args.resume, job_env=args.job_env,
                      max_parallel_steps=args.max_parallel_steps, on_event=events)
    elif args.definition_json:  # any definition, as SageMaker would get it; -p values are typed by the runner
        path = Path(args.definition_json)
        if not path.is_file():
            raise cli.UserError(f"--definition-json {path}: no such file")
        malformed = [pair for pair in args.parameter if "=" not in pair]
        if malformed:
            raise cli.UserError(f"-p {malformed[0]!r}: write parameters as Name=Value")
        overrides = dict(pair.partition("=")[::2] for pair in args.parameter)
        record = _run(path.read_text(), pipeline_name=path.stem, parameters=overrides, home=home, store=store,
                      job_env=args.job_env, max_parallel_steps=args.max_parallel_steps, on_event=events)
    else:
        compiled = cli._compiled(args, cfg, cache_dir=home.compiled)
        overrides = cli.parse_overrides(compiled.parameters, args.parameter)
        for uri, data in compiled.assets.items():
            if not store.exists(uri):
                store.put_bytes(uri, data)
        if args.input_data:
            overrides["InputData"] = cli.stage_input(args.input_data, cfg, store.put_bytes)
        elif "InputData" in compiled.parameters and "InputData" not in overrides:
            _ensure_synthetic(store, compiled.parameters["InputData"].default)
        cli.scoring_follows_input(compiled.parameters, overrides)
        record = _run(compiled.definition, pipeline_name=compiled.name, parameters=overrides, home=home,
                      store=store, job_env=args.job_env, max_parallel_steps=args.max_parallel_steps,
                      on_event=events)
    record = publish_local_run(record, home=home, store=store, description=cfg.description)  # report, model card
    summary = summarise(record, cfg.problem_type)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary, cfg.problem_type)
    return 0 if record["status"] == "Succeeded" else 1


def _stage(store, pairs: list[str]) -> None:
    from pipelines.local.staging import StagingError, stage

    try:
        for uri in stage(store, pairs):
            print(f"staged {uri}", file=sys.stderr)
    except StagingError as e:
        raise cli.UserError(str(e)) from None


def _run(definition, **options) -> dict:
    """run_pipeline, with what it refuses before starting reported as a user error, not a traceback."""
    from pipelines.local import RunError, run_pipeline

    try:
        return run_pipeline(definition, **options)
    except RunError as e:
        raise cli.UserError(str(e)) from None


def summarise(record: dict, problem_type: str) -> dict:
    """The `--json` document: what a script or a CI job wants to know about a run."""
    metrics = next((files[name] for step in record["steps"] for files in [step.get("property_files") or {}]
                    for name in files), None)
    registered = next((step["response"] for step in record["steps"]
                       if step["type"] == "RegisterModel" and step["status"] == "Succeeded"), None)
    return {
        "execution_id": record["execution_id"],
        "status": record["status"],
        "failure_reason": record.get("failure_reason"),
        "seconds": record.get("seconds"),
        "steps": [{"name": s["name"], "type": s["type"], "status": s["status"], "cache_hit": bool(s.get("cache_hit")),
                   "seconds": s.get("seconds")} for s in record["steps"]],
        "gate": {"metric": PROBLEMS[problem_type].gate_path, "value": _get_path(metrics, PROBLEMS[problem_type].gate_path)},
        "registered_model": registered and {k: registered.get(k) for k in
                                            ("ModelPackageArn", "ModelPackageVersion", "ModelApprovalStatus")},
        "metrics": metrics,
        "report": record.get("report"),
        "model_card": record.get("model_card"),
    }


def _ensure_synthetic(store, uri: str) -> None:
    """The embedded default data: generated once, deterministically, into the local store."""
    if store.exists(uri):
        return
    import tempfile

    from pipelines.data import generate, write_csv

    print(f"generating {SYNTHETIC_ROWS} synthetic sessions -> {uri}", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        store.put_file(uri, write_csv(generate(SYNTHETIC_ROWS, seed=SYNTHETIC_SEED), Path(tmp) / "data.csv"))


def _get_path(doc, path: str):
    for key in path.split("."):
        if not isinstance(doc, dict) or key not in doc:
            return None
        doc = doc[key]
    return doc


def _print_event(event: dict) -> None:
    print(_describe(event), file=sys.stderr, flush=True)


def _describe(event: dict) -> str:
    parts = [event.get("time", "")[11:19], f"{event.get('step') or 'execution':<24}", event.get("event", "")]
    for key in ("status", "reason", "attempt", "seconds"):
        if event.get(key) is not None:
            parts.append(f"{key}={event[key]}")
    return "  ".join(str(p) for p in parts if p != "")


def _print_summary(summary: dict, problem_type: str) -> None:
    out = sys.stderr
    took = "" if summary["seconds"] is None else f" in {summary['seconds']:.1f} s"
    print(f"\nexecution {summary['execution_id']}: {summary['status']}{took}", file=out)
    for step in summary["steps"]:
        seconds = "" if step["seconds"] is None else f"{step['seconds']:.1f} s"
        print(f"  {step['name']:<24} {step['type']:<14} {step['status']:<10} {'cached' if step['cache_hit'] else '':<7} {seconds}",
              file=out)
    gate = summary["gate"]
    if gate["value"] is not None:
        print(f"  gate: {gate['metric']} = {gate['value']:.4f}", file=out)
    if summary["registered_model"]:
        print(f"  registered: {summary['registered_model']['ModelPackageArn']}", file=out)
    if summary["failure_reason"]:
        print(f"  failure: {summary['failure_reason']}", file=out)
    if summary.get("report"):
        print(f"  report: {summary['report']}", file=out)
