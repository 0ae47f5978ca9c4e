"""What a report shows, read from an execution's record, its definition and the store its steps wrote to.

Small functions over those three, each answering one question (the steps, the parameters, the data
profile, the evaluation, the gate, the training and its trials, the registered model); a piece that
cannot be found comes back as None with the reason, which the report lists instead of failing.
Nothing here is specific to one pipeline: all of it is what the run declares. The profile is the
output named "profile" (`profile.json`), the evaluation the property file (or output) in SageMaker's
model-quality layout (`pipelines.quality`), the gate the Condition that reads it, the label and problem
type what the registered model's metadata or the profile state.
"""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipelines import spec
from pipelines.quality import SECTIONS, is_report

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


def gather(execution: dict, definition: spec.Definition | None, store, *, description: str | None = None) -> dict:
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
        "description": description or execution.get("description"),
        "steps": step_rows(execution, definition),
        "parameters": parameter_rows(execution, definition),
        "profile": profile,
        "schema": schema,
        "columns": schema_rows(schema, profile),
        "label_balance": label_balance(profile),
        "problem_type": problem_type,
        "problem_name": PROBLEM_NAMES.get(problem_type, problem_type or "unknown"),
        "label": (profile or {}).get("label") or _metadata(steps).get("label"),
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
            "started", "ended", "seconds", "resumes", "stop_reason", "stopped_steps", "selective")
    return {key: execution.get(key) for key in keys}


def definition_steps(definition: spec.Definition | None) -> tuple[spec.Placed, ...]:
    """Each step of the definition, Condition branches flattened (none without a definition)."""
    return definition.flat if definition else ()


def step_rows(execution: dict, definition: spec.Definition | None) -> list[dict]:
    branches = {placed.name: placed.branch for placed in definition_steps(definition)}
    rows = []
    for step in execution.get("steps", []):
        attempts = step.get("attempts") or []
        rows.append({
            "name": step["name"], "type": step.get("type"), "status": step.get("status"),
            "cache_hit": bool(step.get("cache_hit")), "seconds": step.get("seconds"),
            "attempts": len(attempts), "failed_attempts": sum(a.get("status") == "Failed" for a in attempts),
            "failure_reason": step.get("failure_reason"), "job_name": step.get("job_name"),
            "branch": branches.get(step["name"]), "reused_from": step.get("reused_from"),
        })
    return rows


def parameter_rows(execution: dict, definition: spec.Definition | None) -> list[dict]:
    declared = {p.name: p for p in (definition.parameters if definition else ())}
    values = execution.get("parameters") or {}
    rows = []
    for name in [*declared, *(n for n in values if n not in declared)]:
        parameter = declared.get(name)
        default = parameter and parameter.default
        value = values.get(name, default)
        rows.append({"name": name, "type": parameter and parameter.type, "value": value, "default": default,
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


def read_profile(steps: dict[str, dict], definition: spec.Definition | None, store) -> tuple[dict | None, str | None]:
    """(profile.json of the step with an output named "profile", or None and why)."""
    return _read_output(steps, definition, store, "profile", "Data profile")


def read_schema(steps: dict[str, dict], definition: spec.Definition | None, store) -> tuple[dict | None, str | None]:
    """(schema.json of the step with an output named "schema", or None and why)."""
    return _read_output(steps, definition, store, "schema", "Schema")


def _read_output(steps, definition, store, output: str, what: str) -> tuple[dict | None, str | None]:
    """(`<output>.json` in the output named `output` of the step that writes it, or None and why)."""
    declared = [placed.name for placed in definition_steps(definition)
                if output in _outputs({"arguments": placed.step.arguments})]
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


def read_evaluation(steps: dict[str, dict], definition: spec.Definition | None,
                    store) -> tuple[dict | None, str | None]:
    """(the model-quality report: a step's property file, else its evaluation output, else the
    metrics the registry recorded; or None and why)."""
    for step in steps.values():
        for document in (step.get("property_files") or {}).values():
            if is_report(document):
                return document, None
    producers = []
    for placed in definition_steps(definition):
        producers += [(placed.name, file.output_name, file.file_path) for file in placed.step.property_files]
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
        if is_report(document):
            return document, None
        problems.append(problem or f"step {name} wrote no model-quality report")
    for step in steps.values():
        metrics = ((step.get("response") or {}).get("Metrics") or {}).get("ModelQuality.Statistics")
        if is_report(metrics):
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
    return _metadata(steps).get("problem_type")


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
                "tuned": sorted((best.get("TunedHyperParameters") or {})),
                "trials": trial_rows(response)}
    final = {m.get("MetricName"): m.get("Value") for m in response.get("FinalMetricDataList") or []}
    name, value = next(iter(final.items()), (None, None))
    return {**base, "found": True, "missing": None, "job_name": response.get("TrainingJobName") or step.get("job_name"),
            "objective": name, "objective_value": value, "objective_type": None, "jobs": 1,
            "hyperparameters": _user_hyperparameters(arguments.get("HyperParameters")), "tuned": []}


_TRIAL_NUMBER = re.compile(r"-(\d{3})-[0-9a-f]{8}$")  # <tuning job>-NNN-<hash>, as SageMaker names trials


def trial_rows(response: dict) -> list[dict]:
    """Every training job of a tuning job, in trial order: its tuned hyperparameters, objective value,
    status and whether it is the best one (DescribeHyperParameterTuningJob's summaries)."""
    best = (response.get("BestTrainingJob") or {}).get("TrainingJobName")
    summaries = sorted(response.get("TrainingJobSummaries") or [], key=lambda s: str(s.get("CreationTime")))
    rows = []
    for order, summary in enumerate(summaries, start=1):
        name = summary.get("TrainingJobName") or ""
        number = _TRIAL_NUMBER.search(name)
        rows.append({
            "trial": int(number.group(1)) if number else order, "job_name": name,
            "hyperparameters": _user_hyperparameters(summary.get("TunedHyperParameters")),
            "value": (summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
            "status": summary.get("TrainingJobStatus"), "failure_reason": summary.get("FailureReason"),
            "best": name == best,
        })
    return sorted(rows, key=lambda row: row["trial"])


def registered_model(execution: dict) -> dict | None:
    """The model package a RegisterModel step of this execution created, if one did."""
    step = next((s for s in execution.get("steps", []) if s.get("type") == "RegisterModel"
                 and s.get("status") == "Succeeded" and s.get("response")), None)
    if step is None:
        return None
    response = step["response"]
    inference = response.get("InferenceSpecification") or {}
    container = next(iter(inference.get("Containers") or []), {})
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
        "content_types": inference.get("SupportedContentTypes") or [],
        "response_types": inference.get("SupportedResponseMIMETypes") or [],
        "realtime_instance_types": inference.get("SupportedRealtimeInferenceInstanceTypes") or [],
        "transform_instance_types": inference.get("SupportedTransformInstanceTypes") or [],
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


def quality_gates(definition: spec.Definition | None, steps: dict[str, dict], parameters: dict,
                  evaluation: dict | None) -> list[dict]:
    """Each comparison of a Condition step that reads a report (`Std:JsonGet`): the metric, the
    operator, the threshold, the measured value and, once the condition ran, its outcome."""
    gates = []
    for placed in definition_steps(definition):
        if placed.step.type != "Condition":
            continue
        step = steps.get(placed.name) or {}
        resolved = (step.get("arguments") or {}).get("Conditions") or []
        for i, condition in enumerate(placed.step.arguments.get("Conditions") or []):
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
                "condition": placed.name, "path": path,
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



def read_definition(run_dir: Path) -> spec.Definition | None:
    """The definition a run recorded, or None when it is missing or unreadable (the report then has no DAG)."""
    try:
        return spec.read((run_dir / "definition.json").read_text())
    except (OSError, spec.SpecError):
        return None

