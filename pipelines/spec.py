"""The SageMaker pipeline definition document, as this project reads and writes it.

The definition JSON is the one contract between compile and run: the compiler writes a
`Definition`; the local runner, the run report and the commands read one. `read` turns JSON
text into the model (Condition branches kept as the tree they are, `Definition.flat` the same
steps in one list, each with the branch it runs under and the steps it waits for) and refuses a
document that is not a pipeline definition with a `SpecError` naming the place. `write` is the
one spelling of a model as JSON: the keys in the order SageMaker's SDK writes them, two-space
indents, a final newline. A step's `arguments` are its request as JSON (SageMaker's own shape,
`Get`/`Std:Join`/`Std:JsonGet` expressions included): the model types the document around them.

Standard library only, so that every layer may import it.
"""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, NamedTuple

VERSION = "2020-12-01"
PARAMETER_TYPES = ("String", "Integer", "Float", "Boolean")
# `Steps.<name>.<path>` or `Steps.<name>[...]`: the step a Get reads.
_STEP_PATH = re.compile(r"Steps\.([^.\[\]]+)[.\[](.+)")
# What a step's JSON holds besides `Arguments`, in the order the SDK writes it.
_STEP_KEYS = ("Name", "Type", "Arguments", "DependsOn", "DisplayName", "Description", "RetryPolicies",
              "CacheConfig", "PropertyFiles")


class SpecError(ValueError):
    """A document that is not a valid pipeline definition; the message names the place."""


# --- expressions -------------------------------------------------------------------------


def get(path: str) -> dict:
    """`{"Get": path}`: a parameter, an execution variable or a step's property."""
    return {"Get": path}


def join(values: list, on: str = "") -> dict:
    """`Std:Join`: the values as strings, joined."""
    return {"Std:Join": {"On": on, "Values": list(values)}}


def json_get(step: str, property_file: str, path: str) -> dict:
    """`Std:JsonGet`: a value of a property file a step wrote."""
    return {"Std:JsonGet": {"PropertyFile": get(f"Steps.{step}.PropertyFiles.{property_file}"), "Path": path}}


def step_path(target: str) -> tuple[str, str] | None:
    """`Steps.Train.ModelArtifacts.S3ModelArtifacts` -> ("Train", "ModelArtifacts.S3ModelArtifacts");
    None if `target` is not a step reference."""
    match = _STEP_PATH.fullmatch(target)
    if not match:
        return None
    name = match.group(1)
    rest = target[len("Steps.") + len(name):]
    return name, rest[1:] if rest.startswith(".") else rest


def reads(value: Any) -> frozenset[str]:
    """The steps whose results a JSON value reads (`{"Get": "Steps.<name>..."}` anywhere in it)."""
    if isinstance(value, list):
        return frozenset().union(*map(reads, value))
    if not isinstance(value, dict):
        return frozenset()
    target = value.get("Get")
    if isinstance(target, str) and target.startswith("Steps."):
        found = step_path(target)
        if found is None:
            raise SpecError(f"{json.dumps(value)} is not a step reference: expected 'Steps.<name>.<path>'")
        return frozenset([found[0]])
    return frozenset().union(*map(reads, value.values()))


# --- the model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # String | Integer | Float | Boolean
    default: Any = None  # None: the document gives none, so a run must
    enum_values: tuple = ()


@dataclass(frozen=True)
class Dependency:
    """A DependsOn entry: `step` must finish first. SDK v3 writes a run condition as
    {"Step": name, "Trigger": "Completed" | "Failed" | ...}; a plain name has no trigger."""

    step: str
    trigger: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    exception_types: tuple[str, ...]
    interval_seconds: float | None = None
    backoff_rate: float | None = None
    max_attempts: int | None = None
    expire_after_min: int | None = None


@dataclass(frozen=True)
class CacheConfig:
    enabled: bool
    expire_after: str | None = None  # an ISO-8601 duration, e.g. P30D


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file a processing step writes into one of its outputs, read by `Std:JsonGet`."""

    name: str
    output_name: str
    file_path: str


@dataclass(frozen=True)
class Step:
    """One step. For a Condition, `arguments` holds its Conditions and the branches are
    `if_steps`/`else_steps`. `extra` keeps what a step type has beyond the common keys."""

    name: str
    type: str
    arguments: dict = field(default_factory=dict)
    depends_on: tuple[Dependency, ...] = ()
    display_name: str | None = None
    description: str | None = None
    retry_policies: tuple[RetryPolicy, ...] = ()
    cache: CacheConfig | None = None
    property_files: tuple[PropertyFile, ...] = ()
    if_steps: tuple[Step, ...] = ()
    else_steps: tuple[Step, ...] = ()
    extra: dict = field(default_factory=dict)


class Branch(NamedTuple):
    """Where a branch step runs: under `condition`, when its outcome is "True" or "False"."""

    condition: str
    outcome: str


@dataclass(frozen=True)
class Placed:
    """A step of the flattened definition: the branch it runs under and what it waits for (the
    steps it reads, those in its DependsOn, and the condition of its branch)."""

    step: Step
    branch: Branch | None
    needs: frozenset[str]

    @property
    def name(self) -> str:
        return self.step.name


@dataclass(frozen=True)
class Definition:
    steps: tuple[Step, ...]
    parameters: tuple[Parameter, ...] = ()
    version: str = VERSION
    metadata: dict = field(default_factory=dict)
    experiment_config: dict | None = None
    extra: dict = field(default_factory=dict)  # other top-level keys (SDK v3's MlflowConfig), kept as written

    @functools.cached_property
    def flat(self) -> tuple[Placed, ...]:
        """Every step, those under conditions included, in document order."""
        return tuple(_flatten(self.steps, None))


def _flatten(steps: tuple[Step, ...], branch: Branch | None) -> Iterator[Placed]:
    for step in steps:
        try:
            data = reads(step.arguments)
        except SpecError as exc:
            raise SpecError(f"step {step.name}: {exc}") from None
        yield Placed(step, branch, data | {d.step for d in step.depends_on} | ({branch.condition} if branch else set()))
        yield from _flatten(step.if_steps, Branch(step.name, "True"))
        yield from _flatten(step.else_steps, Branch(step.name, "False"))


# --- writing -----------------------------------------------------------------------------


def write(definition: Definition) -> str:
    """The definition as canonical JSON text: the same model gives the same bytes."""
    return json.dumps(document(definition), indent=2) + "\n"


def document(definition: Definition) -> dict:
    """The definition as the JSON object SageMaker receives."""
    out = {"Version": definition.version, "Metadata": definition.metadata,
           "Parameters": [_parameter_json(p) for p in definition.parameters]}
    if definition.experiment_config is not None:
        out["PipelineExperimentConfig"] = definition.experiment_config
    return {**out, **definition.extra, "Steps": [step_json(s) for s in definition.steps]}


def step_json(step: Step) -> dict:
    """One step as SageMaker receives it (a Condition with its branches)."""
    arguments = step.arguments
    if step.type == "Condition":
        arguments = {**arguments, "IfSteps": [step_json(s) for s in step.if_steps],
                     "ElseSteps": [step_json(s) for s in step.else_steps]}
    values = {
        "Name": step.name, "Type": step.type, "Arguments": arguments,
        "DependsOn": [d.step if d.trigger is None else {"Step": d.step, "Trigger": d.trigger}
                      for d in step.depends_on] or None,
        "DisplayName": step.display_name, "Description": step.description,
        "RetryPolicies": [_retry_json(r) for r in step.retry_policies] or None,
        "CacheConfig": step.cache and _none_left_out({"Enabled": step.cache.enabled,
                                                      "ExpireAfter": step.cache.expire_after}),
        "PropertyFiles": [property_file_json(f) for f in step.property_files] or None,
    }
    return {**_none_left_out(values), **step.extra}


def property_file_json(f: PropertyFile) -> dict:
    return {"PropertyFileName": f.name, "OutputName": f.output_name, "FilePath": f.file_path}


def _parameter_json(p: Parameter) -> dict:
    return _none_left_out({"Name": p.name, "Type": p.type, "DefaultValue": p.default,
                           "EnumValues": list(p.enum_values) or None})


def _retry_json(r: RetryPolicy) -> dict:
    return _none_left_out({"BackoffRate": r.backoff_rate, "IntervalSeconds": r.interval_seconds,
                           "MaxAttempts": r.max_attempts, "ExpireAfterMin": r.expire_after_min,
                           "ExceptionType": list(r.exception_types)})


def _none_left_out(values: dict) -> dict:
    return {k: v for k, v in values.items() if v is not None}


# --- reading -----------------------------------------------------------------------------


def read(text: str | bytes) -> Definition:
    """The definition in JSON `text`, or a SpecError saying what is wrong and where."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SpecError(f"the definition is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SpecError("the definition must be a JSON object")
    definition = Definition(
        steps=_steps(doc.get("Steps"), "a definition's Steps"),
        parameters=tuple(_parameter(p) for p in _list(doc.get("Parameters", []), "Parameters")),
        version=doc.get("Version", VERSION), metadata=doc.get("Metadata") or {},
        experiment_config=doc.get("PipelineExperimentConfig"),
        extra={k: v for k, v in doc.items() if k not in ("Version", "Metadata", "Parameters",
                                                         "PipelineExperimentConfig", "Steps")},
    )
    _check_names(definition)
    return definition


def _list(value: Any, what: str) -> list:
    if not isinstance(value, list):
        raise SpecError(f"{what} must be a list")
    return value


def _steps(raw: Any, what: str) -> tuple[Step, ...]:
    return tuple(_step(s) for s in _list(raw, what))


def _step(raw: Any) -> Step:
    if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str) or not isinstance(raw.get("Type"), str) \
            or not raw["Name"] or not raw["Type"]:
        raise SpecError(f"a step needs a Name and a Type: {json.dumps(raw)[:200]}")
    name, kind = raw["Name"], raw["Type"]
    arguments = raw.get("Arguments", {})
    if not isinstance(arguments, dict):
        raise SpecError(f"step {name}: Arguments must be an object")
    branches = {}
    if kind == "Condition":
        branches = {"if_steps": _steps(arguments.get("IfSteps", []), f"step {name}: IfSteps"),
                    "else_steps": _steps(arguments.get("ElseSteps", []), f"step {name}: ElseSteps")}
        arguments = {k: v for k, v in arguments.items() if k not in ("IfSteps", "ElseSteps")}
    return Step(
        name=name, type=kind, arguments=arguments, **branches,
        depends_on=tuple(_dependency(entry, name) for entry in _list(raw.get("DependsOn", []),
                                                                      f"step {name}: DependsOn")),
        display_name=raw.get("DisplayName"), description=raw.get("Description"),
        retry_policies=tuple(_retry_policy(p, name) for p in _list(raw.get("RetryPolicies", []),
                                                                    f"step {name}: RetryPolicies")),
        cache=_cache(raw["CacheConfig"], name) if "CacheConfig" in raw else None,
        property_files=tuple(_property_file(f, name) for f in _list(raw.get("PropertyFiles", []),
                                                                     f"step {name}: PropertyFiles")),
        extra={k: v for k, v in raw.items() if k not in _STEP_KEYS},
    )


def _dependency(entry: Any, step: str) -> Dependency:
    if isinstance(entry, str):
        return Dependency(entry)
    if isinstance(entry, dict):
        if not isinstance(entry.get("Step"), str):
            raise SpecError(f"step {step}: a DependsOn entry needs a Step name: {json.dumps(entry)[:200]}")
        trigger = entry.get("Trigger", "Completed")
        if not isinstance(trigger, str):
            raise SpecError(f"step {step}: the Trigger of a DependsOn entry is a name, got {trigger!r}")
        return Dependency(entry["Step"], trigger)
    raise SpecError(f"step {step}: DependsOn entries are step names, got {entry!r}")


def _parameter(raw: Any) -> Parameter:
    if not isinstance(raw, dict) or not isinstance(raw.get("Name"), str):
        raise SpecError(f"a parameter needs a Name: {json.dumps(raw)[:200]}")
    kind = raw.get("Type", "String")
    if kind not in PARAMETER_TYPES:
        raise SpecError(f"parameter {raw['Name']} has type {kind!r}; expected one of {', '.join(PARAMETER_TYPES)}")
    return Parameter(raw["Name"], kind, raw.get("DefaultValue"),
                     tuple(_list(raw.get("EnumValues", []), f"parameter {raw['Name']}: EnumValues")))


def _retry_policy(raw: Any, step: str) -> RetryPolicy:
    if not isinstance(raw, dict) or not isinstance(raw.get("ExceptionType"), list):
        raise SpecError(f"step {step}: a retry policy needs an ExceptionType list: {raw!r}")
    return RetryPolicy(tuple(raw["ExceptionType"]), raw.get("IntervalSeconds"), raw.get("BackoffRate"),
                       raw.get("MaxAttempts"), raw.get("ExpireAfterMin"))


def _cache(raw: Any, step: str) -> CacheConfig:
    if not isinstance(raw, dict):
        raise SpecError(f"step {step}: CacheConfig must be an object")
    return CacheConfig(bool(raw.get("Enabled")), raw.get("ExpireAfter"))


def _property_file(raw: Any, step: str) -> PropertyFile:
    keys = ("PropertyFileName", "OutputName", "FilePath")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in keys):
        raise SpecError(f"step {step}: a property file needs {', '.join(keys)}: {json.dumps(raw)[:200]}")
    return PropertyFile(*(raw[k] for k in keys))


def _check_names(definition: Definition) -> None:
    """Step names are unique, and every step a step waits for exists."""
    names = [placed.name for placed in definition.flat]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SpecError(f"duplicate step name(s): {', '.join(duplicates)}")
    for placed in definition.flat:
        unknown = sorted(placed.needs - set(names))
        if unknown:
            raise SpecError(f"step {placed.name} refers to unknown step(s): {', '.join(unknown)}")
