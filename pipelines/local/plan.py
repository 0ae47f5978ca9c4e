"""The plan of a run: the definition's steps, the order they depend on, and its parameters.

The definition is read by `pipelines.spec`, the one reader of the JSON; the plan adds what this
runner can run. Everything here happens before anything runs, so each problem in the definition
or the overrides raises `RunError` naming it, and the run never starts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Collection, Mapping

from pipelines import spec

_DURATION = re.compile(
    r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)


class RunError(ValueError):
    """A run that cannot start (bad definition, parameters or resume request); nothing ran."""


@dataclass(frozen=True)
class Step:
    """One step of the definition, flattened out of any Condition branches, as this runner runs it."""

    name: str
    type: str
    arguments: dict  # for a Condition, its Conditions (the branches are steps of their own)
    needs: frozenset[str]  # steps that must succeed first
    branch: spec.Branch | None  # (condition step, "True"/"False") it runs under
    cache: bool
    expire_after: timedelta | None
    retry: tuple[spec.RetryPolicy, ...]
    property_files: tuple[spec.PropertyFile, ...]


def parse_definition(text: str) -> spec.Definition:
    """The definition document; the runner reads only this JSON, as SageMaker would receive it."""
    try:
        return spec.read(text)
    except spec.SpecError as exc:
        raise RunError(str(exc)) from None


def plan(definition: spec.Definition, *, in_process: Collection[str], job_types: Collection[str]) -> dict[str, Step]:
    """The definition's steps in a dependency order, or a RunError naming the problem.

    `in_process` and `job_types` are the step types the runner can run; only
    job steps can be cached.
    """
    return _dependency_order([_step(placed, in_process, job_types) for placed in definition.flat])


def _step(placed: spec.Placed, in_process: Collection[str], job_types: Collection[str]) -> Step:
    step = placed.step
    if step.type not in in_process and step.type not in job_types:
        known = ", ".join([*in_process, *job_types])
        raise RunError(f"step {step.name} has type {step.type!r}, which the local runner cannot run (it runs: {known})")
    for dependency in step.depends_on:
        _check_trigger(dependency, step.name)
    cache = step.cache or spec.CacheConfig(False)
    return Step(
        name=step.name,
        type=step.type,
        arguments=step.arguments,
        needs=placed.needs,
        branch=placed.branch,
        cache=cache.enabled and step.type in job_types,
        expire_after=parse_duration(cache.expire_after, step.name) if cache.expire_after else None,
        retry=tuple(_check_retry_policy(policy, step.name) for policy in step.retry_policies),
        property_files=step.property_files,
    )


def _check_trigger(dependency: spec.Dependency, step_name: str) -> None:
    """SDK v3 writes a run condition as {"Step": name, "Trigger": ...}; this runner starts a step only
    once its upstream steps succeeded, so it takes "Completed" and refuses the other triggers, rather
    than run the step at another moment than SageMaker would."""
    if dependency.trigger not in (None, "Completed"):
        raise RunError(f"step {step_name} runs when {dependency.step} is {dependency.trigger}: the local runner "
                       f"runs a step only after its upstream steps succeed (Trigger Completed)")


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


def _check_retry_policy(policy: spec.RetryPolicy, step_name: str) -> spec.RetryPolicy:
    """Refuse a policy the scheduler could only misread (see `runner.retry_delay`)."""
    if (policy.max_attempts is None) == (policy.expire_after_min is None):
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


def resolve_parameters(declared: tuple[spec.Parameter, ...], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter's value: the override (type-checked; strings are
    parsed, as StartPipelineExecution passes them) or the default."""
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        declared_names = ", ".join(by_name) or "none"
        raise RunError(f"unknown parameter(s) {', '.join(unknown)}; the pipeline declares: {declared_names}")
    values = {}
    for name, declaration in by_name.items():
        if name not in overrides and declaration.default is None:
            raise RunError(f"parameter {name} has no default value: pass one")
        values[name] = _typed(declaration, overrides.get(name, declaration.default))
    return values


def _typed(declaration: spec.Parameter, value: Any) -> Any:
    name, kind = declaration.name, declaration.type
    try:
        typed = _PARSERS[kind](value)
    except (TypeError, ValueError):
        raise RunError(f"parameter {name} is {kind}: {value!r} is not a valid {kind.lower()}") from None
    enum = declaration.enum_values
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
