"""Evaluator of the expressions a SageMaker pipeline definition carries.

The definition JSON passes values between steps with a handful of forms:
`{"Get": "Parameters.X"}`, `{"Get": "Execution.PipelineExecutionId"}`,
`{"Get": "Steps.<name>.<path>"}`, `Std:Join`, `Std:JsonGet`, and the condition
objects of a Condition step. This module gives them the meaning SageMaker
gives them, over the responses the local runner recorded. Anything it cannot
evaluate raises `ExpressionError` naming the expression and the reason: a
condition must fail loudly, never quietly pick a branch.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from pipelines.spec import step_path

FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
COMPARISONS = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}
# One path segment: `.Name` (no dot when first), `[0]`, `['key']` or `["key"]`.
_SEGMENT = re.compile(r"""(?:^|(?<=.)\.)([^.\[\]'"]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")


class Key(str):
    """A `['key']` path segment: a dict key, or the element of a list named `key`."""


class ExpressionError(ValueError):
    """An expression that cannot be evaluated; the message names it and says why."""

    def __init__(self, expression: Any, reason: str):
        super().__init__(f"cannot evaluate {json.dumps(expression, default=str)}: {reason}")
        self.expression = expression
        self.reason = reason


@dataclass(frozen=True)
class Scope:
    """What expressions can see while one execution runs.

    `steps` maps a completed step's name to its record: a dict with the
    Describe-shaped `response` and the parsed `property_files`. `read_json`
    reads a JSON object from an s3:// URI, for `Std:JsonGet` over `S3Uri`.
    """

    parameters: Mapping[str, Any]
    execution: Mapping[str, Any]
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    read_json: Callable[[str], Any] | None = None


def resolve(obj: Any, scope: Scope) -> Any:
    """`obj` (an argument tree) with every expression in it replaced by its value."""
    if isinstance(obj, dict):
        if is_expression(obj):
            return evaluate(obj, scope)
        return {key: resolve(value, scope) for key, value in obj.items()}
    if isinstance(obj, list):
        return [resolve(value, scope) for value in obj]
    return obj


def evaluate(expr: Any, scope: Scope) -> Any:
    """The value of one expression; primitives evaluate to themselves."""
    if not isinstance(expr, dict):
        return expr
    if not is_expression(expr):
        raise ExpressionError(expr, f"not an expression (expected one of {', '.join(FUNCTIONS)})")
    (name, body), = expr.items()
    if name == "Get":
        return _get(expr, body, scope)
    if name == "Std:Join":
        return _join(expr, body, scope)
    return _json_get(expr, body, scope)


def evaluate_condition(cond: Any, scope: Scope) -> bool:
    """The truth of one condition object (`{"Type": ...}`).

    Every operand of `Or` is evaluated, not short-circuited, so a broken
    operand always surfaces instead of being hidden by an earlier true one.
    """
    kind = cond.get("Type") if isinstance(cond, dict) else None
    if kind in COMPARISONS:
        left = evaluate(_field(cond, "LeftValue"), scope)
        right = evaluate(_field(cond, "RightValue"), scope)
        return _compare(cond, kind, left, right)
    if kind == "In":
        query = evaluate(_field(cond, "QueryValue"), scope)
        values = [evaluate(v, scope) for v in _list_field(cond, "Values")]
        return any([_compare(cond, "Equals", query, value) for value in values])
    if kind == "Not":  # SageMaker reads "Condition" here; it rejects "Expression".
        return not evaluate_condition(_field(cond, "Condition"), scope)
    if kind == "Or":
        return any([evaluate_condition(c, scope) for c in _list_field(cond, "Conditions")])
    raise ExpressionError(cond, f"unknown condition type {kind!r}")


def parse_path(expr: Any, path: str) -> list[str | int]:
    """Segments of a property path: `A.B[0]['k']` -> ["A", "B", 0, Key("k")].

    `['k']` segments are `Key`s so that lookup can select a list item by name
    (`Outputs['train']`), which a plain `.train` must not do.
    """
    segments: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _SEGMENT.match(path, pos)
        if not match:
            raise ExpressionError(expr, f"malformed path {path!r} at {path[pos:]!r}")
        name, index, *keys = match.groups()
        key = next((k for k in keys if k is not None), None)
        segments.append(name if name is not None else int(index) if index is not None else Key(key))
        pos = match.end()
    if not segments:
        raise ExpressionError(expr, "empty path")
    return segments


def walk(expr: Any, value: Any, segments: list[str | int], where: str) -> Any:
    """Follow `segments` into `value` (a response or JSON document named `where`)."""
    for depth, segment in enumerate(segments):
        here = where + _render(segments[:depth])
        value = _step_into(expr, value, segment, here)
    return value


def _step_into(expr: Any, value: Any, segment: str | int, here: str) -> Any:
    if isinstance(segment, int):
        if not isinstance(value, list):
            raise ExpressionError(expr, f"{here} is {_kind(value)}, not a list, so [{segment}] does not apply")
        if segment >= len(value):
            raise ExpressionError(expr, f"{here} has {len(value)} item(s), no [{segment}]")
        return value[segment]
    if isinstance(segment, Key) and isinstance(value, list):
        return _by_name(expr, value, segment, here)
    if not isinstance(value, dict):
        raise ExpressionError(expr, f"{here} is {_kind(value)}, it has no {segment!r}")
    if segment not in value:
        raise ExpressionError(expr, f"{here} has no {segment!r} (it has: {', '.join(map(str, value)) or 'nothing'})")
    return value[segment]


def _by_name(expr: Any, items: list, key: str, here: str) -> Any:
    """The element of a Describe list named `key`, as SageMaker reads `Outputs['train']`:
    the item whose `...Name` field (OutputName, ChannelName, MetricName...) equals it."""
    for item in items:
        if isinstance(item, dict) and any(k.endswith("Name") and v == key for k, v in item.items()):
            return item
    names = [v for item in items if isinstance(item, dict) for k, v in item.items() if k.endswith("Name")]
    raise ExpressionError(expr, f"{here} has no item named {key!r} (names: {', '.join(map(str, names)) or 'none'})")


def _get(expr: dict, target: Any, scope: Scope) -> Any:
    if not isinstance(target, str):
        raise ExpressionError(expr, "Get needs a string like 'Parameters.X'")
    root, _, rest = target.partition(".")
    if root == "Parameters":
        return _lookup(expr, scope.parameters, rest, "parameter")
    if root == "Execution":
        if rest == "CurrentDateTime":
            return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        return _lookup(expr, scope.execution, rest, "execution variable")
    if root == "Steps":
        return _step_property(expr, target, scope)
    raise ExpressionError(expr, f"unknown root {root!r} (expected Parameters, Execution or Steps)")


def _lookup(expr: dict, values: Mapping[str, Any], name: str, what: str) -> Any:
    if name not in values:
        raise ExpressionError(expr, f"unknown {what} {name!r} (known: {', '.join(values) or 'none'})")
    return values[name]


def _step_property(expr: dict, target: str, scope: Scope) -> Any:
    name, path = _split_step_path(expr, target)
    if name not in scope.steps:
        raise ExpressionError(expr, f"step {name!r} has no result (unknown, not run, or not succeeded)")
    record = scope.steps[name]
    segments = parse_path(expr, path)
    if segments[0] == "PropertyFiles":
        return walk(expr, record.get("property_files") or {}, segments[1:], f"Steps.{name}.PropertyFiles")
    return walk(expr, record.get("response") or {}, segments, f"Steps.{name}")


def _split_step_path(expr: dict, target: str) -> tuple[str, str]:
    found = step_path(target)
    if found is None:
        raise ExpressionError(expr, "expected 'Steps.<name>.<path>'")
    return found


def _join(expr: dict, body: Any, scope: Scope) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("On", ""), str):
        raise ExpressionError(expr, "Std:Join needs {'On': str, 'Values': [...]}")
    values = [evaluate(v, scope) for v in _list_field(body, "Values", expr)]
    return body.get("On", "").join(_as_text(expr, v) for v in values)


def _as_text(expr: dict, value: Any) -> str:
    """A value as Std:Join renders it: strings as-is, numbers in decimal, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ExpressionError(expr, f"cannot join {_kind(value)} {json.dumps(value, default=str)[:80]}")


def _json_get(expr: dict, body: Any, scope: Scope) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("Path"), str):
        raise ExpressionError(expr, "Std:JsonGet needs a 'Path' string and a 'PropertyFile' or 'S3Uri'")
    if "PropertyFile" in body:
        document, where = evaluate(body["PropertyFile"], scope), "property file"
    elif "S3Uri" in body:
        document, where = _read_json(expr, evaluate(body["S3Uri"], scope), scope), "JSON file"
    else:
        raise ExpressionError(expr, "Std:JsonGet needs a 'PropertyFile' or an 'S3Uri'")
    return walk(expr, document, parse_path(expr, body["Path"]), where)


def _read_json(expr: dict, uri: Any, scope: Scope) -> Any:
    if scope.read_json is None:
        raise ExpressionError(expr, "no store to read S3 JSON from")
    try:
        return scope.read_json(uri)
    except (OSError, ValueError) as exc:
        raise ExpressionError(expr, f"cannot read JSON at {uri}: {exc}") from exc


def _compare(cond: dict, kind: str, left: Any, right: Any) -> bool:
    """Compare like with like only: numbers with numbers, strings with strings,
    booleans (Equals/In only) with booleans; anything else is an error."""
    kinds = {_kind(left), _kind(right)}
    if kinds == {"number"} or kinds == {"string"} or (kinds == {"boolean"} and kind == "Equals"):
        return COMPARISONS[kind](left, right)
    raise ExpressionError(
        cond, f"{kind} cannot compare {_kind(left)} {left!r} with {_kind(right)} {right!r}"
    )


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _field(obj: dict, name: str) -> Any:
    if name not in obj:
        raise ExpressionError(obj, f"missing {name!r}")
    return obj[name]


def _list_field(obj: dict, name: str, expr: Any = None) -> list:
    value = obj.get(name)
    if not isinstance(value, list):
        raise ExpressionError(expr if expr is not None else obj, f"{name!r} must be a list")
    return value


def is_expression(obj: dict) -> bool:
    """True for `{"Get": ...}`-like dicts; an unknown `Std:` function is an error, not data."""
    functions = [key for key in obj if key in FUNCTIONS or key.startswith("Std:")]
    if not functions:
        return False
    if len(obj) != 1 or functions[0] not in FUNCTIONS:
        raise ExpressionError(obj, f"unknown expression form (expected exactly one of {', '.join(FUNCTIONS)})")
    return True


def _render(segments: list[str | int]) -> str:
    return "".join(f"[{s}]" if isinstance(s, int) else f"['{s}']" if isinstance(s, Key) else f".{s}" for s in segments)
