"""The run report (HTML) and the model card (Markdown) of a pipeline execution.

    render_report(execution, definition, store, out_path=Path("report.html"))   -> Path
    render_model_card(execution, definition, store)                             -> str

`execution` is a local runner record (`runs/<id>/execution.json`), `definition`
the definition JSON it ran, `store` the object store its steps wrote to. This
module only gathers data, in small functions over those three; all presentation
is in `templates/report.html.j2` and `templates/model_card.md.j2`. Plots are
drawn with matplotlib's Agg canvas and embedded as base64 PNG, so a report is
one self-contained file.

Nothing here is specific to the purchase pipeline: the profile is the output
named "profile" (`profile.json`), the evaluation the property file (or output)
in SageMaker's model-quality layout, the gate the Condition that reads it.
"""
from __future__ import annotations

import base64
import csv
import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from pipelines.files import write_atomically
from pipelines.local.expressions import ExpressionError, references
from pipelines.local.records import save_record
from pipelines.problems import PROBLEMS

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
SECTIONS = {p.metrics_key: p.name for p in PROBLEMS.values()}  # evaluation.json section -> problem type
PROBLEM_NAMES = {"binary": "binary classification", "multiclass": "multiclass classification",
                 "regression": "regression"}
# metric -> (label, which direction is better)
METRICS = {
    "roc_auc": ("ROC AUC", "higher"), "pr_auc": ("PR AUC (average precision)", "higher"),
    "accuracy": ("Accuracy", "higher"), "precision": ("Precision", "higher"), "recall": ("Recall", "higher"),
    "f1": ("F1", "higher"), "macro_f1": ("Macro F1", "higher"), "weighted_f1": ("Weighted F1", "higher"),
    "brier_score": ("Brier score", "lower"), "expected_calibration_error": ("Expected calibration error", "lower"),
    "calibration_error_floor": ("Calibration error of exact probabilities (sampling floor)", None),
    "log_loss": ("Log loss", "lower"), "threshold": ("Decision threshold", None),
    "rmse": ("RMSE", "lower"), "mae": ("MAE", "lower"), "r2": ("R²", "higher"),
}
FRAMEWORK_NAMES = {"XGBOOST": "XGBoost", "SKLEARN": "scikit-learn", "PYTORCH": "PyTorch", "TENSORFLOW": "TensorFlow"}
OPERATORS = {"GreaterThanOrEqualTo": "≥", "GreaterThan": ">", "LessThanOrEqualTo": "≤", "LessThan": "<",
             "Equals": "="}
_FLIPPED = {"GreaterThanOrEqualTo": "LessThanOrEqualTo", "GreaterThan": "LessThan",
            "LessThanOrEqualTo": "GreaterThanOrEqualTo", "LessThan": "GreaterThan", "Equals": "Equals"}
# DAG geometry (px)
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 192, 62, 62, 50, 16
# plot palette, shared with the page's CSS
BLUE, GREY, INK = "#2563eb", "#94a3b8", "#1e293b"


# --- entry points ---------------------------------------------------------------------------------


def render_report(execution: dict, definition: dict | None, store, *, out_path, description: str | None = None,
                  model_card_uri: str | None = None) -> Path:
    """Write the HTML report of one execution to `out_path` (atomically); return the path."""
    context = gather(execution, definition, store, description=description)
    context["plots"], context["plot_notes"] = draw_plots(context["evaluation"], context["problem_type"],
                                                         context["classes"])
    context["model_card_uri"] = model_card_uri or execution.get("model_card")
    html = _environment().get_template("report.html.j2").render(**context)
    return write_atomically(Path(out_path), html)


def render_model_card(execution: dict, definition: dict | None, store, *, description: str | None = None) -> str:
    """The Markdown model card of the model an execution trained (and, usually, registered)."""
    context = gather(execution, definition, store, description=description)
    return _environment().get_template("model_card.md.j2").render(**context)


def publish_local_run(record: dict, *, home, store, description: str | None = None,
                      warn: Callable[[str], None] | None = None) -> dict:
    """The end of `run --local`: the report into `runs/<id>/report.html` and, after a registration,
    the model card beside the model artifact (`<dir of ModelDataUrl>/model_card.md`) and on the
    registry's version. Returns the record with `report` (and `model_card`) set, also saved to
    `execution.json`. A problem here is a warning: it never changes the outcome of the run."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    run_dir = home.runs / record["execution_id"]
    record = dict(record)
    definition = read_definition(run_dir)
    registered = registered_model(record)
    if registered and registered.get("model_data_url"):
        try:
            record["model_card"] = store_model_card(record, definition, store, registered, home=home,
                                                    description=description)
        except Exception as exc:  # noqa: BLE001 - a card that cannot be written must not fail a good run
            warn(f"model card not written: {type(exc).__name__}: {exc}")
    try:
        record["report"] = str(render_report(record, definition, store, out_path=run_dir / "report.html",
                                             description=description, model_card_uri=record.get("model_card")))
    except Exception as exc:  # noqa: BLE001
        warn(f"report not written: {type(exc).__name__}: {exc}")
    if (run_dir / "execution.json").is_file():
        save_record(run_dir, record)
    return record


def store_model_card(record: dict, definition: dict | None, store, registered: dict, *, home,
                     description: str | None = None) -> str:
    """Render the card, put it beside the model artifact and on the registry version; return its URI."""
    from pipelines.local.registry import Registry

    card = render_model_card(record, definition, store, description=description)
    uri = f"{registered['model_data_url'].rsplit('/', 1)[0]}/model_card.md"
    store.put_bytes(uri, card.encode("utf-8"))
    if registered.get("group") and registered.get("version") is not None:
        Registry.of(home).set_model_card(registered["group"], registered["version"], card)
    return uri


# --- gathering ------------------------------------------------------------------------------------


def gather(execution: dict, definition: dict | None, store, *, description: str | None = None) -> dict:
    """Everything both templates show, read from the record, the definition and the store."""
    steps = {s["name"]: s for s in execution.get("steps", [])}
    profile, profile_missing = read_profile(steps, definition, store)
    schema, _ = read_schema(steps, definition, store)
    evaluation, evaluation_missing = read_evaluation(steps, definition, store)
    problem_type = find_problem_type(evaluation, profile, steps)
    training = training_summary(steps)
    registered = registered_model(execution)
    gates = quality_gates(definition, steps, execution.get("parameters") or {}, evaluation)
    missing = [m for m in (profile_missing, evaluation_missing) if m]
    if not training["found"]:
        missing.append(training["missing"])
    if not registered:
        missing.append(registration_missing(steps, gates))
    return {
        "run": run_summary(execution),
        "description": description,
        "steps": step_rows(execution, definition),
        "parameters": parameter_rows(execution, definition),
        "dag": dag_layout(definition, execution),
        "profile": profile,
        "schema": schema,
        "columns": schema_rows(schema, profile),
        "label_balance": label_balance(profile),
        "problem_type": problem_type,
        "problem_name": PROBLEM_NAMES.get(problem_type, problem_type or "unknown"),
        "label": (profile or {}).get("label") or _metadata(steps).get("label") or _container_argument(steps, "--label"),
        "classes": (profile or {}).get("classes") or (evaluation or {}).get("classes"),
        "evaluation": evaluation,
        "metrics": metric_rows(evaluation, gates),
        "gates": gates,
        "gate": gates[0] if gates else None,
        "training": training,
        "registered": registered,
        "example_csv": example_csv(schema_rows(schema, profile)),
        "input_data": (execution.get("parameters") or {}).get("InputData"),
        "synthetic": "synthetic" in str((execution.get("parameters") or {}).get("InputData", "")).lower(),
        "missing": [m for m in missing if m],
        "missing_by": {"profile": profile_missing, "evaluation": evaluation_missing},
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def run_summary(execution: dict) -> dict:
    keys = ("execution_id", "pipeline_name", "execution_arn", "status", "failure_reason", "failed_step",
            "started", "ended", "seconds", "resumes")
    return {key: execution.get(key) for key in keys}


def definition_steps(definition: dict | None) -> Iterator[dict]:
    """Each step of the definition, Condition branches flattened, with the steps it depends on
    (`needs`) and the (condition, "True"/"False") branch it runs under."""

    def walk(raw_steps, branch):
        for raw in raw_steps if isinstance(raw_steps, list) else []:
            if not isinstance(raw, dict) or "Name" not in raw:
                continue
            arguments = {k: v for k, v in (raw.get("Arguments") or {}).items() if k not in ("IfSteps", "ElseSteps")}
            try:
                needs = references(arguments)
            except ExpressionError:
                needs = set()
            yield {"name": raw["Name"], "type": raw.get("Type"), "raw": raw, "branch": branch,
                   "needs": sorted(needs | set(raw.get("DependsOn") or []))}
            if raw.get("Type") == "Condition":
                yield from walk(raw["Arguments"].get("IfSteps"), (raw["Name"], "True"))
                yield from walk(raw["Arguments"].get("ElseSteps"), (raw["Name"], "False"))

    yield from walk((definition or {}).get("Steps"), None)


def step_rows(execution: dict, definition: dict | None) -> list[dict]:
    branches = {s["name"]: s["branch"] for s in definition_steps(definition)}
    rows = []
    for step in execution.get("steps", []):
        attempts = step.get("attempts") or []
        rows.append({
            "name": step["name"], "type": step.get("type"), "status": step.get("status"),
            "cache_hit": bool(step.get("cache_hit")), "seconds": step.get("seconds"),
            "attempts": len(attempts), "failed_attempts": sum(a.get("status") == "Failed" for a in attempts),
            "failure_reason": step.get("failure_reason"), "job_name": step.get("job_name"),
            "branch": branches.get(step["name"]),
        })
    return rows


def parameter_rows(execution: dict, definition: dict | None) -> list[dict]:
    declared = {p["Name"]: p for p in (definition or {}).get("Parameters", []) if isinstance(p, dict)}
    values = execution.get("parameters") or {}
    rows = []
    for name in [*declared, *(n for n in values if n not in declared)]:
        default = declared.get(name, {}).get("DefaultValue")
        value = values.get(name, default)
        rows.append({"name": name, "type": declared.get(name, {}).get("Type"), "value": value, "default": default,
                     "overridden": name in declared and value != default})
    return rows


def _outputs(step: dict) -> dict[str, str]:
    """OutputName -> S3Uri of a processing step (from its response, else its resolved arguments)."""
    for source in (step.get("response"), step.get("arguments")):
        outputs = ((source or {}).get("ProcessingOutputConfig") or {}).get("Outputs")
        if outputs:
            return {o["OutputName"]: o["S3Output"]["S3Uri"] for o in outputs
                    if isinstance(o, dict) and "OutputName" in o and "S3Uri" in (o.get("S3Output") or {})}
    return {}


def _read_json(store, uri: str) -> tuple[Any, str | None]:
    try:
        return json.loads(store.get_bytes(uri)), None
    except (OSError, ValueError) as exc:
        return None, f"{uri} cannot be read ({type(exc).__name__}: {exc})"


def _not_done(step: dict) -> str:
    """Why a step has no outputs (its failure reason is in the step table, not repeated here)."""
    return f"step {step['name']} {'did not run' if step.get('status') == 'NotRun' else str(step.get('status')).lower()}"


def read_profile(steps: dict[str, dict], definition: dict | None, store) -> tuple[dict | None, str | None]:
    """(profile.json of the step with an output named "profile", or None and why)."""
    return _read_output(steps, definition, store, "profile", "Data profile")


def read_schema(steps: dict[str, dict], definition: dict | None, store) -> tuple[dict | None, str | None]:
    """(schema.json of the step with an output named "schema", or None and why)."""
    return _read_output(steps, definition, store, "schema", "Schema")


def _read_output(steps, definition, store, output: str, what: str) -> tuple[dict | None, str | None]:
    """(`<output>.json` in the output named `output` of the step that writes it, or None and why)."""
    declared = [spec["name"] for spec in definition_steps(definition)
                if output in _outputs({"arguments": spec["raw"].get("Arguments")})]
    producer = next((s for s in steps.values() if output in _outputs(s) or s["name"] in declared), None)
    if producer is None:
        return None, f'{what}: no step of this pipeline writes an output named "{output}".'
    if producer.get("status") != "Succeeded":
        return None, f"{what}: {_not_done(producer)}."
    uri = _outputs(producer).get(output)
    if not isinstance(uri, str):
        return None, f"{what}: step {producer['name']} recorded no {output} output."
    document, problem = _read_json(store, f"{uri.rstrip('/')}/{output}.json")
    return (document, None) if isinstance(document, dict) else (None, f"{what}: {problem or 'not a JSON object'}.")


def schema_rows(schema: dict | None, profile: dict | None) -> list[dict]:
    """One row per raw column: its kind, whether inferred or declared, why it was dropped, its statistics
    (from the profile alone when the pipeline writes no schema)."""
    stats = (profile or {}).get("columns") or {}
    columns = (schema or {}).get("columns") or [{"name": name} for name in stats]
    return [{"kind": "", **stats.get(c.get("name"), {}), **c} for c in columns if isinstance(c, dict)]


def _is_evaluation(document: Any) -> bool:
    return isinstance(document, dict) and any(section in document for section in SECTIONS)


def read_evaluation(steps: dict[str, dict], definition: dict | None, store) -> tuple[dict | None, str | None]:
    """(the model-quality report: a step's property file, else its evaluation output, else the
    metrics the registry recorded; or None and why)."""
    for step in steps.values():
        for document in (step.get("property_files") or {}).values():
            if _is_evaluation(document):
                return document, None
    producers = []
    for spec in definition_steps(definition):
        for file in spec["raw"].get("PropertyFiles") or []:
            producers.append((spec["name"], file.get("OutputName"), file.get("FilePath", "evaluation.json")))
    producers += [(s["name"], "evaluation", "evaluation.json") for s in steps.values() if "evaluation" in _outputs(s)]
    problems = []
    for name, output, path in producers:
        step = steps.get(name)
        if step is None:
            continue
        if step.get("status") != "Succeeded":
            problems.append(_not_done(step))
            continue
        uri = _outputs(step).get(output)
        document, problem = _read_json(store, f"{uri.rstrip('/')}/{path}") if isinstance(uri, str) else (None, None)
        if _is_evaluation(document):
            return document, None
        problems.append(problem or f"step {name} wrote no model-quality report")
    for step in steps.values():
        metrics = ((step.get("response") or {}).get("Metrics") or {}).get("ModelQuality.Statistics")
        if _is_evaluation(metrics):
            return metrics, None
    why = problems[0] if problems else "no step of this pipeline writes a model-quality report"
    return None, f"Evaluation (metrics and plots): {why}."


def _metadata(steps: dict[str, dict]) -> dict:
    """The registered model's CustomerMetadataProperties (problem_type, label), if any."""
    for step in steps.values():
        if step.get("type") == "RegisterModel":
            found = (step.get("response") or step.get("arguments") or {}).get("CustomerMetadataProperties")
            if found:
                return found
    return {}


def find_problem_type(evaluation: dict | None, profile: dict | None, steps: dict[str, dict]) -> str | None:
    for section, problem in SECTIONS.items():
        if evaluation and section in evaluation:
            return problem
    if profile and profile.get("problem_type"):
        return profile["problem_type"]
    if _metadata(steps).get("problem_type"):
        return _metadata(steps)["problem_type"]
    return _container_argument(steps, "--problem-type")


def _container_argument(steps: dict[str, dict], flag: str) -> str | None:
    """The value of `flag` in a processing step's container arguments, e.g. Preprocess's --label."""
    for step in steps.values():
        args = ((step.get("arguments") or {}).get("AppSpecification") or {}).get("ContainerArguments") or []
        if flag in args[:-1]:
            return str(args[args.index(flag) + 1])
    return None


def metric_rows(evaluation: dict | None, gates: list[dict]) -> list[dict]:
    """The scalar metrics of the report's section, in the order evaluate.py wrote them."""
    section = next((evaluation[s] for s in SECTIONS if evaluation and s in evaluation), None) or {}
    gated = {g["metric"] for g in gates}
    rows = []
    for name, value in section.items():
        value = value.get("value") if isinstance(value, dict) else value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            label, better = METRICS.get(name, (name.replace("_", " "), None))
            baseline = section[name].get("baseline") if isinstance(section[name], dict) else None
            rows.append({"name": name, "label": label, "value": value, "baseline": baseline, "better": better,
                         "gate": name in gated})
    return rows


def _decode(value: Any) -> Any:
    """A hyperparameter as SageMaker carries it (JSON-encoded strings) back to its value."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _user_hyperparameters(hps: dict | None) -> dict:
    return {k: _decode(v) for k, v in (hps or {}).items() if not k.startswith("sagemaker_")}


def training_summary(steps: dict[str, dict]) -> dict:
    """The step that trained the model: best job, its hyperparameters and objective."""
    step = next((s for s in steps.values() if s.get("type") in ("Tuning", "Training")), None)
    if step is None:
        return {"found": False, "missing": None, "hyperparameters": {}}
    base = {"step": step["name"], "type": step["type"], "status": step.get("status")}
    if step.get("status") != "Succeeded":
        return {**base, "found": False, "hyperparameters": {},
                "missing": f"Hyperparameters of the best model: {_not_done(step)}."}
    arguments, response = step.get("arguments") or {}, step.get("response") or {}
    if step["type"] == "Tuning":
        best = response.get("BestTrainingJob") or {}
        objective = best.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
        static = (arguments.get("TrainingJobDefinition") or {}).get("StaticHyperParameters")
        return {**base, "found": True, "missing": None, "job_name": best.get("TrainingJobName"),
                "objective": objective.get("MetricName"), "objective_value": objective.get("Value"),
                "objective_type": objective.get("Type"),
                "jobs": (response.get("TrainingJobStatusCounters") or {}).get("Completed"),
                "hyperparameters": {**_user_hyperparameters(static),
                                    **_user_hyperparameters(best.get("TunedHyperParameters"))},
                "tuned": sorted((best.get("TunedHyperParameters") or {}))}
    final = {m.get("MetricName"): m.get("Value") for m in response.get("FinalMetricDataList") or []}
    name, value = next(iter(final.items()), (None, None))
    return {**base, "found": True, "missing": None, "job_name": response.get("TrainingJobName") or step.get("job_name"),
            "objective": name, "objective_value": value, "objective_type": None, "jobs": 1,
            "hyperparameters": _user_hyperparameters(arguments.get("HyperParameters")), "tuned": []}


def registered_model(execution: dict) -> dict | None:
    """The model package a RegisterModel step of this execution created, if one did."""
    step = next((s for s in execution.get("steps", []) if s.get("type") == "RegisterModel"
                 and s.get("status") == "Succeeded" and s.get("response")), None)
    if step is None:
        return None
    response = step["response"]
    spec = response.get("InferenceSpecification") or {}
    container = next(iter(spec.get("Containers") or []), {})
    image = container.get("Image") or ""
    framework = container.get("Framework")
    version = container.get("FrameworkVersion") or (image.rsplit(":", 1)[-1] if ":" in image else None)
    if not framework and "xgboost" in image:
        framework = "XGBoost"
    return {
        "step": step["name"], "arn": response.get("ModelPackageArn"), "version": response.get("ModelPackageVersion"),
        "group": response.get("ModelPackageGroupName"), "status": response.get("ModelApprovalStatus"),
        "description": response.get("ModelPackageDescription"), "created": response.get("CreationTime"),
        "model_data_url": container.get("ModelDataUrl"), "image": image,
        "framework": FRAMEWORK_NAMES.get(str(framework).upper(), framework) if framework else None,
        "framework_version": version,
        "content_types": spec.get("SupportedContentTypes") or [],
        "response_types": spec.get("SupportedResponseMIMETypes") or [],
        "realtime_instance_types": spec.get("SupportedRealtimeInferenceInstanceTypes") or [],
        "transform_instance_types": spec.get("SupportedTransformInstanceTypes") or [],
        "metadata": response.get("CustomerMetadataProperties") or {},
    }


def registration_missing(steps: dict[str, dict], gates: list[dict]) -> str | None:
    step = next((s for s in steps.values() if s.get("type") == "RegisterModel"), None)
    if step is None:
        return None
    if step.get("status") == "NotRun" and gates and gates[0].get("outcome") == "False":
        return f"Registered model: none — the quality gate {gates[0]['condition']} was not met."
    return f"Registered model: none — {_not_done(step)}."


def _json_get_path(expression: Any) -> str | None:
    body = expression.get("Std:JsonGet") if isinstance(expression, dict) else None
    return body.get("Path") if isinstance(body, dict) else None


def _dig(document: Any, path: str) -> Any:
    for key in path.split("."):
        if not isinstance(document, dict) or key not in document:
            return None
        document = document[key]
    return document


def quality_gates(definition: dict | None, steps: dict[str, dict], parameters: dict,
                  evaluation: dict | None) -> list[dict]:
    """Each comparison of a Condition step that reads a report (`Std:JsonGet`): the metric, the
    operator, the threshold, the measured value and, once the condition ran, its outcome."""
    gates = []
    for spec in definition_steps(definition):
        if spec["type"] != "Condition":
            continue
        step = steps.get(spec["name"]) or {}
        resolved = (step.get("arguments") or {}).get("Conditions") or []
        for i, condition in enumerate(spec["raw"]["Arguments"].get("Conditions") or []):
            kind = condition.get("Type") if isinstance(condition, dict) else None
            if kind not in OPERATORS:
                continue
            left, right = condition.get("LeftValue"), condition.get("RightValue")
            sides = ("LeftValue", "RightValue")
            if _json_get_path(right) and not _json_get_path(left):
                left, right, kind, sides = right, left, _FLIPPED[kind], sides[::-1]
            path = _json_get_path(left)
            if not path:
                continue
            done = resolved[i] if i < len(resolved) and isinstance(resolved[i], dict) else {}
            threshold_name = None
            if isinstance(right, dict) and str(right.get("Get", "")).startswith("Parameters."):
                threshold_name = right["Get"].split(".", 1)[1]
                threshold = parameters.get(threshold_name)
            else:
                threshold = right if not isinstance(right, dict) else None
            value = done.get(sides[0]) if sides[0] in done else _dig(evaluation, path)
            from_report = _json_get_path(right)  # e.g. evaluate.py's gate.threshold, resolved from a rule
            threshold = done.get(sides[1], _dig(evaluation, from_report) if from_report else threshold)
            rule = (evaluation or {}).get("gate") if from_report and from_report.startswith("gate.") else None
            parts = path.split(".")
            gates.append({
                "condition": spec["name"], "path": path,
                "metric": parts[-2] if len(parts) > 1 and parts[-1] == "value" else parts[-1],
                "operator": OPERATORS[kind], "threshold": threshold, "threshold_parameter": threshold_name,
                "rule": (rule or {}).get("rule"), "baseline": (rule or {}).get("baseline"),
                "value": value, "outcome": (step.get("response") or {}).get("Outcome"),
                "status": step.get("status"),
            })
    return gates


def label_balance(profile: dict | None) -> dict | None:
    """The label per split: class counts and shares, or (regression) summary statistics."""
    balance = (profile or {}).get("label_balance")
    if not isinstance(balance, dict) or not balance:
        return None
    splits = list(balance)
    classes = profile.get("classes")
    if profile.get("problem_type") == "regression" or not classes:
        stats = list(next(iter(balance.values())))
        return {"kind": "stats", "splits": splits,
                "rows": [{"label": s, "cells": [balance[sp].get(s) for sp in splits]} for s in stats]}
    codes = sorted({code for sp in splits for code in balance[sp]}, key=lambda c: (len(c), c))
    totals = {sp: sum(balance[sp].values()) or 1 for sp in splits}
    rows = []
    for code in codes:
        name = classes[int(code)] if code.isdigit() and int(code) < len(classes) else code
        rows.append({"label": f"{name} ({code})" if name != code else code,
                     "cells": [(balance[sp].get(code, 0), balance[sp].get(code, 0) / totals[sp]) for sp in splits]})
    return {"kind": "classes", "splits": splits, "rows": rows}


def example_csv(columns: list[dict]) -> str | None:
    """A CSV request with a header and one typical row (medians and most frequent values) of the used columns."""
    used = [c for c in columns if c.get("kind") != "dropped" and "typical" in c]
    if not used:
        return None
    row = [f"{v:.6g}" if isinstance(v, float) else "" if v is None else str(v) for v in (c["typical"] for c in used)]
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([[c["name"] for c in used], row])
    return text.getvalue()


# --- the pipeline graph ---------------------------------------------------------------------------


def dag_layout(definition: dict | None, execution: dict) -> dict:
    """Nodes and edges of the pipeline laid out in layers, left to right (SVG coordinates).

    A step's layer is one more than the deepest step it depends on; a branch step depends on its
    condition. Within a layer, plain steps come first, then each branch (grouped in a box). An edge
    that another path already implies (a step reading an earlier step's output) is drawn faintly.
    """
    specs = list(definition_steps(definition))
    status = {s["name"]: s for s in execution.get("steps", [])}
    if not specs:  # no definition: the recorded steps, in order, unconnected
        specs = [{"name": s["name"], "type": s.get("type"), "branch": None, "needs": []}
                 for s in execution.get("steps", [])]
    names = [s["name"] for s in specs]
    preds = {s["name"]: [n for n in dict.fromkeys(s["needs"] + ([s["branch"][0]] if s["branch"] else []))
                         if n in names and n != s["name"]] for s in specs}
    layer = _layers(names, preds)
    conditions = [s["name"] for s in specs if s["type"] == "Condition"]
    order = {n: i for i, n in enumerate(names)}

    def group_key(spec):
        if not spec["branch"]:
            return (0, 0, 0)
        cond, outcome = spec["branch"]
        return (1, conditions.index(cond) if cond in conditions else 0, 0 if outcome == "True" else 1)

    # rows: the plain steps first, then each branch in a band of its own, under its condition
    bands: dict[tuple, dict[int, list[dict]]] = {}
    for spec in sorted(specs, key=lambda s: (group_key(s), order[s["name"]])):
        bands.setdefault(group_key(spec), {}).setdefault(layer[spec["name"]], []).append(spec)
    nodes, first_row = {}, 0
    for band in bands.values():
        for col, specs_in_col in band.items():
            for row, spec in enumerate(specs_in_col, start=first_row):
                record = status.get(spec["name"], {})
                nodes[spec["name"]] = {
                    "name": spec["name"], "short": _shorten(spec["name"], 30), "squeeze": len(spec["name"]) > 22,
                    "type": spec["type"],
                    "status": record.get("status", "NotRun"), "cache_hit": bool(record.get("cache_hit")),
                    "seconds": record.get("seconds"), "failure_reason": record.get("failure_reason"),
                    "branch": spec["branch"], "x": col * (NODE_W + GAP_X), "y": row * (NODE_H + GAP_Y),
                }
        first_row += max(len(c) for c in band.values())
    outcome = {c: ((status.get(c) or {}).get("response") or {}).get("Outcome") for c in conditions}
    edges = []
    for spec in specs:
        name, branch = spec["name"], spec["branch"]
        for p in preds[name]:
            if branch and p == branch[0]:
                if any(nodes[q]["branch"] == branch for q in preds[name]):
                    continue  # the condition's arrow goes to the first steps of its branch only
                taken = outcome.get(p)
                kind = "taken" if taken == branch[1] else "untaken" if taken else "branch"
                edges.append(_branch_edge(nodes[p], nodes[name], kind, branch[1].lower()))
            else:
                kind = "implied" if _implied(p, name, preds) else "data"
                edges.append(_edge(nodes[p], nodes[name], kind, None, nodes.values()))
    edges.sort(key=lambda e: ("implied", "untaken", "data", "branch", "taken").index(e["kind"]))  # strong on top
    groups = []
    for (cond, branch_outcome), members in _groups(nodes.values()).items():
        x0, y0 = min(m["x"] for m in members) - 10, min(m["y"] for m in members) - 24
        x1, y1 = max(m["x"] for m in members) + NODE_W + 10, max(m["y"] for m in members) + NODE_H + 10
        groups.append({"label": f"if {cond} is {branch_outcome.lower()}", "x": x0, "y": y0, "w": x1 - x0,
                       "h": y1 - y0, "taken": outcome.get(cond) == branch_outcome if outcome.get(cond) else None})
    # the drawing's extent: nodes, group boxes and curves; then shift everything to start at PAD
    xs = [n["x"] for n in nodes.values()] + [n["x"] + NODE_W for n in nodes.values()]
    ys = [n["y"] for n in nodes.values()] + [n["y"] + NODE_H for n in nodes.values()]
    xs += [g["x"] for g in groups] + [g["x"] + g["w"] for g in groups]
    ys += [g["y"] for g in groups] + [g["y"] + g["h"] for g in groups]
    ys += [y for e in edges for y in e.pop("extent")]
    dx, dy = PAD - min(xs, default=0), PAD - min(ys, default=0)
    for item in [*nodes.values(), *groups]:
        item["x"], item["y"] = item["x"] + dx, item["y"] + dy
    for e in edges:
        e["path"] = _path(e.pop("points"), dx, dy)
        e["lx"], e["ly"] = e["lx"] + dx, e["ly"] + dy
    return {"nodes": list(nodes.values()), "edges": edges, "groups": groups,
            "width": round(max(xs, default=0) - min(xs, default=0) + 2 * PAD),
            "height": round(max(ys, default=0) - min(ys, default=0) + 2 * PAD), "node_w": NODE_W, "node_h": NODE_H}


def _layers(names: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering; a cycle (which a validated definition cannot have) is cut, not looped."""
    layer: dict[str, int] = {}

    def depth(name, seen):
        if name not in layer:
            layer[name] = 1 + max((depth(p, seen | {name}) for p in preds[name] if p not in seen), default=-1)
        return layer[name]

    for name in names:
        depth(name, frozenset())
    return layer


def _implied(source: str, target: str, preds: dict[str, list[str]]) -> bool:
    """Whether `target` also depends on `source` through some other step."""
    stack = [p for p in preds[target] if p != source]
    seen = set()
    while stack:
        name = stack.pop()
        if name == source:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(preds.get(name, []))
    return False


def _groups(nodes) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for node in nodes:
        if node["branch"]:
            groups.setdefault(tuple(node["branch"]), []).append(node)
    return groups


def _edge(source: dict, target: dict, kind: str, label: str | None, nodes) -> dict:
    """A cubic curve from the source's right side to the target's left side. When the plain S-curve
    would cross a step, the edge arcs over (or under) the steps in between instead."""
    x1, y1 = source["x"] + NODE_W, source["y"] + NODE_H / 2
    x2, y2 = target["x"] - 2, target["y"] + NODE_H / 2
    mid = (x1 + x2) / 2
    candidates = [[(x1, y1), (mid, y1), (mid, y2), (x2, y2)]]
    for k in range(1, 6):
        above = min(y1, y2) - NODE_H / 2 - 10 - 22 * k
        below = max(y1, y2) + NODE_H / 2 + 10 + 22 * k
        for bend in ((above, below) if y2 <= y1 else (below, above)):
            candidates.append([(x1, y1), (x1 + GAP_X, bend), (x2 - GAP_X, bend), (x2, y2)])
    others = [n for n in nodes if n is not source and n is not target]
    points = next((c for c in candidates if not _crosses(c, others)), candidates[1])
    curve = [_bezier(points, t / 24) for t in range(25)]
    lx, ly = _bezier(points, 0.72)
    return {"points": points, "kind": kind, "label": label, "lx": lx - 4, "ly": ly - 5,
            "extent": [y for _, y in curve], "source": source["name"], "target": target["name"]}


def _branch_edge(condition: dict, target: dict, kind: str, label: str) -> dict:
    """From the bottom of a condition down, then right into the first step of a branch: the
    branches hang under their condition like a tree."""
    x, top = condition["x"] + 28, condition["y"] + NODE_H
    x2, y2 = target["x"] - 2, target["y"] + NODE_H / 2
    return {"points": [(x, top), (x, y2), (x2, y2)], "kind": kind, "label": label, "lx": x + 24, "ly": y2 - 5,
            "extent": [top, y2], "source": condition["name"], "target": target["name"]}


def _crosses(points, nodes, margin: float = 6) -> bool:
    for t in range(1, 40):
        x, y = _bezier(points, t / 40)
        if any(n["x"] - margin <= x <= n["x"] + NODE_W + margin and n["y"] - margin <= y <= n["y"] + NODE_H + margin
               for n in nodes):
            return True
    return False


def _bezier(points, t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _path(points, dx: float, dy: float) -> str:
    """SVG path data: four points are a cubic curve, three an elbow with a rounded corner."""
    (x0, y0), *rest = [(x + dx, y + dy) for x, y in points]
    if len(rest) == 3:
        return f"M{x0:.0f},{y0:.0f} C" + " ".join(f"{x:.0f},{y:.0f}" for x, y in rest)
    (x1, y1), (x2, y2) = rest
    r = min(10, abs(y1 - y0), abs(x2 - x1))
    return (f"M{x0:.0f},{y0:.0f} L{x1:.0f},{y1 - r:.0f} Q{x1:.0f},{y1:.0f} {x1 + r:.0f},{y1:.0f} "
            f"L{x2:.0f},{y2:.0f}")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- plots ----------------------------------------------------------------------------------------


def draw_plots(evaluation: dict | None, problem_type: str | None, classes: list | None) -> tuple[list[dict], list[str]]:
    """([{"id", "title", "src" (data: URI), "wide"}], [what could not be drawn and why])."""
    if not evaluation:
        return [], []
    section = next((evaluation[s] for s in SECTIONS if s in evaluation), {}) or {}
    curves = evaluation.get("curves") or {}
    value = lambda name: (section.get(name) or {}).get("value") if isinstance(section.get(name), dict) else None  # noqa: E731
    wanted = [
        ("roc", "ROC curve", lambda: _roc(curves.get("roc"), value("roc_auc")), problem_type == "binary"),
        ("pr", "Precision–recall curve", lambda: _pr(curves.get("pr"), section.get("confusion_matrix")),
         problem_type == "binary"),
        ("calibration", "Calibration (reliability diagram)",
         lambda: _calibration(curves.get("calibration"), value("brier_score"), value("expected_calibration_error")),
         problem_type == "binary"),
        ("confusion", "Confusion matrix", lambda: _confusion(section.get("confusion_matrix"), classes),
         problem_type in ("binary", "multiclass")),
        ("lift", "Lift by score decile", lambda: _lift(curves.get("lift")), False),
        ("predicted_vs_actual", "Predicted vs actual",
         lambda: _predicted_vs_actual(curves.get("predicted_vs_actual")), False),
        ("importance", "Feature importance (gain)", lambda: _importance(evaluation.get("feature_importance")), True),
    ]
    plots, notes = [], []
    for plot_id, title, draw, expected in wanted:
        try:
            figure = draw()
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            notes.append(f"{title}: the data in evaluation.json is malformed ({type(exc).__name__}: {exc}).")
            continue
        if figure is not None:
            plots.append({"id": plot_id, "title": title, "src": _png(figure), "wide": plot_id == "importance"})
        elif expected:
            notes.append(f"{title}: evaluation.json has no data for it.")
    if problem_type == "regression" and not any(p["id"] == "predicted_vs_actual" for p in plots):
        notes.append("Predicted vs actual: evaluation.json records no points (curves.predicted_vs_actual); "
                     "see the metrics table.")
    return plots, notes


def _figure(width=4.6, height=3.7, **kwargs):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained", **kwargs)
    return figure


def _style(ax, xlabel=None, ylabel=None):
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#cbd5e1")
    ax.tick_params(colors="#475569", labelsize=8)
    ax.grid(True, color="#e2e8f0", linewidth=0.6)
    ax.set_axisbelow(True)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9, color="#334155")
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9, color="#334155")


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None}, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _per_class(curve: Any, *keys: str) -> dict[str, dict] | None:
    """A curve as {name: {key: [...]}}: one unnamed curve, or one per class."""
    if not isinstance(curve, dict):
        return None
    if all(k in curve for k in keys):
        return {"": curve}
    found = {str(k): v for k, v in curve.items() if isinstance(v, dict) and all(key in v for key in keys)}
    return found or None


def _roc(curve, auc):
    lines = _per_class(curve, "fpr", "tpr")
    if not lines:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="chance")
    for name, line in lines.items():
        label = name or (f"model (AUC {auc:.3f})" if auc is not None else "model")
        ax.plot(line["fpr"], line["tpr"], linewidth=2, color=BLUE if not name else None, label=label)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
    _style(ax, "False positive rate", "True positive rate")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return figure


def _pr(curve, confusion):
    lines = _per_class(curve, "precision", "recall")
    if not lines:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    positives, total = _prevalence(confusion)
    if total:
        ax.axhline(positives / total, linestyle="--", color=GREY, linewidth=1,
                   label=f"base rate {positives / total:.2f}")
    for name, line in lines.items():
        ax.plot(line["recall"], line["precision"], linewidth=2, color=BLUE if not name else None,
                label=name or "model", drawstyle="steps-post")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
    _style(ax, "Recall", "Precision")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    return figure


def _prevalence(confusion) -> tuple[int, int]:
    """(actual positives, total) of a binary {actual: {predicted: count}} matrix; the positive class is last."""
    if not isinstance(confusion, dict) or len(confusion) != 2:
        return 0, 0
    return sum(list(confusion.values())[-1].values()), sum(sum(row.values()) for row in confusion.values())


def _calibration(bins, brier, ece):
    if not isinstance(bins, list) or not bins:
        return None
    figure = _figure(height=4.2)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    predicted = [b["mean_predicted"] for b in bins]
    observed = [b["fraction_positive"] for b in bins]
    top.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", markersize=4, linewidth=2, color=BLUE, label="model")
    top.set_xlim(0, 1), top.set_ylim(0, 1.01)
    _style(top, None, "Fraction positive")
    scores = [f"Brier {brier:.4f}" if brier is not None else None, f"ECE {ece:.4f}" if ece is not None else None]
    top.legend(fontsize=8, frameon=False, loc="upper left",
               title=" · ".join(s for s in scores if s) or None, title_fontsize=8)
    width = 1 / max(10, len(bins))
    bottom.bar([b.get("bin", i) * width + width / 2 if "bin" in b else p for i, (b, p) in enumerate(zip(bins, predicted))],
               [b.get("count", 0) for b in bins], width=width * 0.9, color="#93c5fd")
    counts = [b.get("count", 0) for b in bins if b.get("count")]
    if counts and max(counts) > 10 * min(counts):  # a log scale only where counts span decades: else no labels fit
        bottom.set_yscale("log")
    _style(bottom, "Mean predicted probability", "Count")
    return figure


def _confusion(matrix, classes):
    if not isinstance(matrix, dict) or not matrix:
        return None
    codes = list(matrix)
    predicted_codes = list(next(iter(matrix.values())))
    counts = [[matrix[a].get(p, 0) for p in predicted_codes] for a in codes]

    def name(code):
        return str(classes[int(code)]) if classes and str(code).isdigit() and int(code) < len(classes) else str(code)

    size = min(7.5, max(3.8, 0.55 * len(codes) + 2.2))
    figure = _figure(size + 0.6, size)
    ax = figure.add_subplot()
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            ax.text(j, i, f"{count:,}\n{shares[i][j]:.0%}", ha="center", va="center", fontsize=9 if len(codes) < 6 else 6,
                    color="white" if shares[i][j] > 0.6 else INK)
    ax.set_xticks(range(len(predicted_codes)), [name(c) for c in predicted_codes], fontsize=8,
                  rotation=45 if len(codes) > 4 else 0)
    ax.set_yticks(range(len(codes)), [name(c) for c in codes], fontsize=8)
    ax.set_xlabel("Predicted", fontsize=9, color="#334155")
    ax.set_ylabel("Actual", fontsize=9, color="#334155")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of actual class").ax.tick_params(labelsize=7)
    return figure


def _lift(deciles):
    if not isinstance(deciles, list) or not deciles:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    ax.bar([d["decile"] for d in deciles], [d["lift"] for d in deciles], color=BLUE, width=0.7)
    ax.axhline(1, linestyle="--", color=GREY, linewidth=1, label="no model (lift 1)")
    ax.set_xticks([d["decile"] for d in deciles])
    _style(ax, "Score decile (1 = highest scores)", "Lift")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _predicted_vs_actual(points):
    if isinstance(points, list) and points and isinstance(points[0], dict):
        actual, predicted = [p["actual"] for p in points], [p["predicted"] for p in points]
    elif isinstance(points, dict) and "actual" in points and "predicted" in points:
        actual, predicted = points["actual"], points["predicted"]
    else:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    low, high = min(min(actual), min(predicted)), max(max(actual), max(predicted))
    ax.plot([low, high], [low, high], linestyle="--", color=GREY, linewidth=1, label="perfect")
    ax.scatter(actual, predicted, s=8, alpha=0.5, color=BLUE, label="test rows")
    _style(ax, "Actual", "Predicted")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _importance(features, top=20):
    if not isinstance(features, list) or not features:
        return None
    rows = sorted(features, key=lambda f: -f["gain"])[:top][::-1]
    figure = _figure(9.2, 0.26 * len(rows) + 0.9)
    ax = figure.add_subplot()
    ax.barh([r["feature"] for r in rows], [r["gain"] for r in rows], color=BLUE, height=0.7)
    _style(ax, "Mean gain per split", None)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", labelsize=8)
    return figure


# --- templates ------------------------------------------------------------------------------------


def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"), trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_num, metric=_metric, pct=_pct, duration=_duration, when=_when, md=_md, value=_value)
    return env


def _num(x: Any, digits: int = 4) -> str:
    """A number for a table: ints with separators, floats with `digits` significant figures."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x != x:
            return "NaN"
        if abs(x) >= 10 ** digits:
            return f"{x:,.0f}"
        return f"{x:.{digits}g}"
    return str(x)


def _metric(x: Any) -> str:
    return "—" if x is None else f"{x:.4f}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _pct(x: Any, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}%}"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _when(timestamp: Any) -> str:
    """An ISO timestamp as `2024-05-01 12:34:56 UTC`."""
    if not timestamp:
        return "—"
    try:
        return datetime.fromisoformat(str(timestamp)).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return str(timestamp)


def _md(text: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(x: Any) -> str:
    """A parameter or hyperparameter value: numbers compactly, the rest as text."""
    if isinstance(x, float):
        return f"{x:.6g}"
    if isinstance(x, (dict, list)):
        return json.dumps(x)
    return "—" if x is None else str(x)


def read_definition(run_dir: Path) -> dict | None:
    """The definition a run recorded, or None when it is missing or unreadable (the report then has no DAG)."""
    try:
        return json.loads((run_dir / "definition.json").read_text())
    except (OSError, ValueError):
        return None
