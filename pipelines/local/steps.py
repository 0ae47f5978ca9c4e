"""What each step type does: job types map to `pipelines.local.jobs`, the rest run in process.

An in-process handler is `(execution, step, resolved arguments) -> response`;
it raises `StepFailure` to fail the step.
"""
from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any, Protocol

from pipelines.local import jobs
from pipelines.local.expressions import Scope, evaluate_condition
from pipelines.local.home import LocalHome
from pipelines.local.records import arn, now
from pipelines.local.registry import Registry
from pipelines.local.storage import Store

if TYPE_CHECKING:
    from pipelines.local.plan import Step

JOB_HANDLERS = {
    "Processing": jobs.run_processing,
    "Training": jobs.run_training,
    "Tuning": jobs.run_tuning,
    "Transform": jobs.run_transform,
}
NAME_LIMITS = {"Tuning": 32}  # SageMaker's limit on tuning job names; 63 for the rest


class Execution(Protocol):
    """What an in-process step sees of the running execution (the scheduler's `runner.Execution`),
    declared here so that this module does not import the scheduler that imports it."""

    home: LocalHome
    store: Store
    record: dict

    def scope(self) -> Scope: ...

    def salt(self, step: Step, attempt: Any) -> str: ...


class StepFailure(Exception):
    """A step that failed: the reason becomes its (and the execution's) FailureReason."""

    def __init__(self, reason: str, *, response: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.response = response


def run_condition(execution: Execution, step: Step, arguments: dict) -> dict:
    """Reads the Conditions as written (not the resolved `arguments`), so an error names the expression."""
    conditions = step.arguments.get("Conditions")
    if not isinstance(conditions, list):
        raise StepFailure(f"condition step {step.name} has no Conditions list")
    scope = execution.scope()
    return {"Outcome": str(all([evaluate_condition(condition, scope) for condition in conditions]))}


def run_fail(execution: Execution, step: Step, arguments: dict) -> dict:
    message = arguments.get("ErrorMessage", "")
    raise StepFailure(str(message), response={"ErrorMessage": message})


def run_register_model(execution: Execution, step: Step, arguments: dict) -> dict:
    return Registry.of(execution.home).register(arguments, execution_id=execution.record["execution_id"],
                                                store=execution.store)


def run_model(execution: Execution, step: Step, arguments: dict) -> dict:
    """CreateModel: SageMaker names the model; Transform steps find it by that name. A container
    naming a model package version serves that version's image and model data."""
    name = arguments.get("ModelName") or resource_name(step.name, execution.salt(step, "model"))
    containers = [arguments.get("PrimaryContainer") or {}, *(arguments.get("Containers") or [])]
    if any(c.get("ModelPackageName") for c in containers):
        try:
            arguments = Registry.of(execution.home).model_containers(arguments)
        except LookupError as exc:
            raise StepFailure(f"ValidationException: {exc}") from None
    return {"EnableNetworkIsolation": False, **arguments, "ModelName": name,
            "ModelArn": arn(execution.home, "model", name), "CreationTime": now()}


# Step types the runner itself carries out; job types come from `handlers`.
IN_PROCESS = {
    "Condition": run_condition,
    "Fail": run_fail,
    "RegisterModel": run_register_model,
    "Model": run_model,
}


def resource_name(step_name: str, salt: str, limit: int = 63) -> str:
    """A SageMaker-valid name (`[a-zA-Z0-9](-*[a-zA-Z0-9]){0,limit-1}`) from a step name
    and a hash of `salt`, unique per execution, resume and attempt."""
    digest = hashlib.sha256(salt.encode()).hexdigest()[:8]
    stem = re.sub(r"[^A-Za-z0-9]+", "-", step_name).strip("-")[: limit - len(digest) - 1].rstrip("-")
    return f"{stem}-{digest}" if stem else digest
