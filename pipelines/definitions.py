"""Finding a pipeline definition and building it: `--definition path/to/file.py` or `pkg.module`.

A definition is a module with a function `definition(cfg) -> pipelines.dsl.Pipeline`. Every way
of getting that wrong (no such file or module, a syntax error, an import that fails, no
`definition`, a bug inside it, something other than a Pipeline) is a `dsl.DefinitionError`
whose one line names the file and line at fault, because a traceback into this project's
machinery tells a user nothing about their own file.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Callable

from pipelines import dsl
from pipelines.config import Config, ConfigError
from pipelines.dsl import DefinitionError, Pipeline


def load(ref: str) -> ModuleType:
    """The module of a file path (anything ending in .py or naming a file), of a folder (its
    `pipeline.py`, as `init` writes it) or of a dotted module name importable from `sys.path`,
    checked to have a `definition` function."""
    path = Path(ref)
    if path.is_dir():
        path = path / "pipeline.py"
        if not path.is_file():
            raise DefinitionError(f"--definition {ref}: the folder has no pipeline.py (give a .py file, a folder "
                                  f"holding pipeline.py, or a dotted module name)")
    module = _from_file(path) if path.suffix == ".py" or path.is_file() else _from_module(ref)
    if not callable(getattr(module, "definition", None)):
        raise DefinitionError(f"{getattr(module, '__file__', None) or ref} has no function definition(cfg): add "
                              f"`def definition(cfg) -> Pipeline:` that builds and returns the pipeline")
    return module


def build_with_settings(func: Callable, settings: Callable[[str | None], Config]) -> tuple[Pipeline, Config]:
    """The pipeline `func` builds with its own settings, and those settings.

    `settings(name)` are those of pipeline `name` (None: of no pipeline in particular). The name
    comes from the definition, so `func` is first called only until it creates its Pipeline (with
    the settings of no pipeline), then built with the settings of [pipeline.NAME]. A name that
    changes with the settings is refused, since then no table could be the pipeline's own."""
    name = pipeline_name(func, settings(None))
    cfg = settings(name)
    pipeline = build(func, cfg)
    if pipeline.name != name:
        raise DefinitionError(f"definition(cfg) in {_location(func)} names its pipeline {name!r} without, and "
                              f"{pipeline.name!r} with, the settings of [pipeline.{name}]: a pipeline's name must "
                              f"not depend on its own settings")
    return pipeline, cfg


def pipeline_name(func: Callable, cfg: Config) -> str:
    """The name `func` gives its Pipeline: `func(cfg)` runs up to `Pipeline(...)` and no further."""
    try:
        with dsl.naming():
            result = build(func, cfg)
    except dsl.Named as named:
        return named.name
    return result.name  # a Pipeline made elsewhere (an imported helper's) and returned as it is


def build(func: Callable, cfg: Config) -> Pipeline:
    """`func(cfg)`, checked: a Pipeline, or a one-line error."""
    where = _location(func)
    try:
        pipeline = func(cfg)
    except (DefinitionError, ConfigError, dsl.Named):
        raise
    except Exception as e:  # a bug in the user's definition, reported where it is
        raise DefinitionError(f"definition(cfg) failed at {_innermost(e, func)}: {type(e).__name__}: {e}") from None
    if not isinstance(pipeline, Pipeline):
        raise DefinitionError(f"definition(cfg) in {where} returned {type(pipeline).__name__}, not a "
                              f"pipelines.dsl.Pipeline: end it with `return p`")
    return pipeline


def _from_file(path: Path):
    if not path.is_file():
        raise DefinitionError(f"--definition {path}: no such file (give a .py file or a dotted module name)")
    path = path.resolve()
    # A unique module name per file, so two definitions called pipeline.py never collide; the file's
    # folder goes on sys.path so the definition can import its neighbours, as `python file.py` allows.
    name = f"_definition_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        del sys.modules[name]
        _refuse_import(e, str(path))
    return module


def _from_module(name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (name == e.name or name.startswith(f"{e.name}.")):
            raise DefinitionError(f"--definition {name}: no such module or file (give a path to a .py file, or a "
                                  f"module importable from the working directory or PYTHONPATH)") from None
        _refuse_import(e, name)
    except BaseException as e:
        _refuse_import(e, name)


def _refuse_import(e: BaseException, what: str):
    """Importing the definition failed: one line saying where, or `e` itself when it is no mistake in the file."""
    if isinstance(e, (KeyboardInterrupt, SystemExit, DefinitionError, ConfigError)):
        raise e
    if isinstance(e, SyntaxError):
        raise DefinitionError(f"{e.filename}:{e.lineno}: SyntaxError: {e.msg}") from None
    frame = traceback.extract_tb(e.__traceback__)[-1]
    raise DefinitionError(f"importing {what} failed at {frame.filename}:{frame.lineno}: "
                          f"{type(e).__name__}: {e}") from None


def _location(func: Callable) -> str:
    code = getattr(func, "__code__", None)
    return f"{code.co_filename}:{code.co_firstlineno}" if code else repr(func)


def _innermost(e: BaseException, func: Callable) -> str:
    """file:line of the deepest frame in the definition's own file, else of the deepest frame."""
    frames = traceback.extract_tb(e.__traceback__)
    own = getattr(getattr(func, "__code__", None), "co_filename", None)
    frame = next((f for f in reversed(frames) if f.filename == own), frames[-1])
    return f"{frame.filename}:{frame.lineno}"
