"""The plan of a run: the definition's steps, the order they depend on, and its parameters.

Everything here happens before anything runs, so each problem in the
definition or the overrides raises `RunError` naming it, and the run never starts.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Collection, Iterator, Mapping

from pipelines.local.expressions import ExpressionError, references

_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class RunError(ValueError):
    """A run that cannot start (bad definition, parameters or resume request); nothing ran."""


@dataclass(frozen=True)
class Step:
    """One step of the definition, flattened out of any Condition branches."""

    name: str
    type: str
    arguments: dict  # for a Condition, without IfSteps/ElseSteps (those are steps of their own)
    needs: frozenset[str]  # steps that must succeed first
    branch: tuple[str, str] | None  # (condition step, "True"/"False") it runs under
    cache: bool
    expire_after: timedelta | None
    retry: tuple[dict, ...]
    property_files: tuple[dict, ...]


def parse_definition(text: str) -> dict:
    """The definition document; the runner reads only this JSON, as SageMaker would receive it."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RunError(f"the definition is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise RunError("the definition must be a JSON object")
    return document


def plan(definition: dict, *, in_process: Collection[str], job_types: Collection[str]) -> dict[str, Step]:
    """The definition's steps in a dependency order, or a RunError naming the problem.

    `in_process` and `job_types` are the step types the runner can run; only
    job steps can be cached.
    """
    steps = list(_flatten(definition.get("Steps"), None, in_process, job_types))
    names = [step.name for step in steps]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise RunError(f"duplicate step name(s): {', '.join(duplicates)}")
    for step in steps:
        unknown = sorted(step.needs - set(names))
        if unknown:
            raise RunError(f"step {step.name} refers to unknown step(s): {', '.join(unknown)}")
    return _dependency_order(steps)


def _flatten(raw_steps: Any, branch: tuple[str, str] | None, in_process: Collection[str],
             job_types: Collection[str]) -> Iterator[Step]:
    if not isinstance(raw_steps, list):
        raise RunError("a definition's Steps (and a Condition's IfSteps/ElseSteps) must be a list")
    for raw in raw_steps:
        step = _step(raw, branch, in_process, job_types)
        yield step
        if step.type == "Condition":
            for key, outcome in (("IfSteps", "True"), ("ElseSteps", "False")):
                yield from _flatten(raw["Arguments"].get(key, []), (step.name, outcome), in_process, job_types)


def _step(raw: Any, branch: tuple[str, str] | None, in_process: Collection[str], job_types: Collection[str]) -> Step:
    if not isinstance(raw, dict) or not raw.get("Name") or not raw.get("Type"):
        raise RunError(f"a step needs a Name and a Type: {json.dumps(raw)[:200]}")
    name, step_type = raw["Name"], raw["Type"]
    if step_type not in in_process and step_type not in job_types:
        known = ", ".join([*in_process, *job_types])
        raise RunError(f"step {name} has type {step_type!r}, which the local runner cannot run (it runs: {known})")
    arguments = raw.get("Arguments", {})
    if not isinstance(arguments, dict):
        raise RunError(f"step {name}: Arguments must be an object")
    if step_type == "Condition":
        arguments = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
    try:
        needs = references(arguments) | _depends_on(raw.get("DependsOn", []), name) | ({branch[0]} if branch else set())
    except ExpressionError as exc:
        raise RunError(f"step {name}: {exc}") from None
    cache = raw.get("CacheConfig", {})
    return Step(
        name=name,
        type=step_type,
        arguments=arguments,
        needs=frozenset(needs),
        branch=branch,
        cache=bool(cache.get("Enabled")) and step_type in job_types,
        expire_after=parse_duration(cache["ExpireAfter"], name) if cache.get("ExpireAfter") else None,
        retry=tuple(_check_retry_policy(policy, name) for policy in raw.get("RetryPolicies", [])),
        property_files=tuple(raw.get("PropertyFiles", [])),
    )


def _depends_on(entries: Any, step_name: str) -> set[str]:
    """The steps named in DependsOn. SDK v3 writes a run condition as {"Step": name, "Trigger": ...};
    this runner starts a step only once its upstream steps succeeded, so it takes "Completed" and
    refuses the other triggers, rather than run the step at another moment than SageMaker would."""
    if not isinstance(entries, list):
        raise RunError(f"step {step_name}: DependsOn must be a list of step names")
    names = set()
    for entry in entries:
        if isinstance(entry, dict):
            if not isinstance(entry.get("Step"), str):
                raise RunError(f"step {step_name}: a DependsOn entry needs a Step name: {json.dumps(entry)[:200]}")
            if entry.get("Trigger", "Completed") != "Completed":
                raise RunError(f"step {step_name} runs when {entry['Step']} is {entry['Trigger']}: the local runner "
                               f"runs a step only after its upstream steps succeed (Trigger Completed)")
            entry = entry["Step"]
        if not isinstance(entry, str):
            raise RunError(f"step {step_name}: DependsOn entries are step names, got {entry!r}")
        names.add(entry)
    return names


def parse_duration(text: str, step_name: str) -> timedelta:
    """An ISO-8601 duration (`P30D`, `PT1H`, `P1Y2M`; a year is 365 days, a month 30)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if not match or not any(match.groupdict().values()) or text.endswith("T"):
        raise RunError(
            f"step {step_name}: CacheConfig ExpireAfter {text!r} is not an ISO-8601 duration like P30D or PT1H"
        )
    parts = {unit: float(value) for unit, value in match.groupdict().items() if value}
    parts["days"] = parts.get("days", 0) + 365 * parts.pop("years", 0) + 30 * parts.pop("months", 0)
    return timedelta(**parts)


def _check_retry_policy(policy: Any, step_name: str) -> dict:
    """Refuse a policy the scheduler could only misread (see `runner.retry_delay`)."""
    if not isinstance(policy, dict) or not isinstance(policy.get("ExceptionType"), list):
        raise RunError(f"step {step_name}: a retry policy needs an ExceptionType list: {policy!r}")
    if ("MaxAttempts" in policy) == ("ExpireAfterMin" in policy):
        raise RunError(f"step {step_name}: a retry policy needs exactly one of MaxAttempts and ExpireAfterMin")
    return policy


def _dependency_order(steps: list[Step]) -> dict[str, Step]:
    """Steps ordered so each comes after what it needs (definition order among equals)."""
    ordered: dict[str, Step] = {}
    remaining = {step.name: step for step in steps}
    while remaining:
        ready = [step for step in remaining.values() if step.needs <= ordered.keys()]
        if not ready:
            raise RunError(f"the steps form a cycle: {' -> '.join(_cycle(remaining))}")
        for step in ready:
            ordered[step.name] = remaining.pop(step.name)
    return ordered


def _cycle(remaining: dict[str, Step]) -> list[str]:
    """One cycle among steps that all wait on each other, for the error message."""
    path = [next(iter(remaining))]
    while path[-1] not in path[:-1]:
        path.append(min(name for name in remaining[path[-1]].needs if name in remaining))
    return path[path.index(path[-1]) :]


# --- parameters ------------------------------------------------------------------------


def resolve_parameters(declared: list[dict], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value: the override (type-checked; strings are
    parsed, as StartPipelineExecution passes them) or the default."""
    by_name = {p["Name"]: p for p in declared}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        declared_names = ", ".join(by_name) or "none"
        raise RunError(f"unknown parameter(s) {', '.join(unknown)}; the pipeline declares: {declared_names}")
    values = {}
    for name, declaration in by_name.items():
        if name not in overrides and "DefaultValue" not in declaration:
            raise RunError(f"parameter {name} has no default value: pass one")
        values[name] = _typed(declaration, overrides.get(name, declaration.get("DefaultValue")))
    return values


def _typed(declaration: dict, value: Any) -> Any:
    name, kind = declaration["Name"], declaration.get("Type", "String")
    if kind not in _PARSERS:
        raise RunError(f"parameter {name} has type {kind!r}; expected one of {', '.join(_PARSERS)}")
    try:
        typed = _PARSERS[kind](value)
    except (TypeError, ValueError):
        raise RunError(f"parameter {name} is {kind}: {value!r} is not a valid {kind.lower()}") from None
    enum = declaration.get("EnumValues")
    if enum and typed not in enum:
        raise RunError(f"parameter {name} must be one of {', '.join(map(str, enum))}, got {value!r}")
    return typed


def _parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(value)
    return value


def _parse_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(value)
    return int(value)


def _parse_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    return float(value)


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(value)


# The parameter types a pipeline can declare, each with how an override of it is read.
_PARSERS = {"String": _parse_str, "Integer": _parse_int, "Float": _parse_float, "Boolean": _parse_bool}
