"""The templates (`templates/report.html.j2`, `templates/model_card.md.j2`, shipped with the product) and the
filters they format values with."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from importlib.resources import files
from typing import Any

from pipelines.files import user_cache


def environment():
    """The templates' environment; their compiled form is kept per user (`jinja2.FileSystemBytecodeCache`,
    keyed by each template's source), as compiling them is most of rendering a report otherwise."""
    import jinja2

    cache = user_cache("templates")
    cache.mkdir(parents=True, exist_ok=True)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("templates"))), undefined=jinja2.StrictUndefined,
        bytecode_cache=jinja2.FileSystemBytecodeCache(str(cache)),
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


