"""`deploy.py init NAME`: a new pipeline that compiles, runs locally and passes its own test as written.

The files come from `templates/init/` (jinja2 where they name the pipeline): the definition, a
processing script that splits the data, a training script, its inference handlers, an evaluation
script writing evaluation.json, and a pytest test; the pipeline's table is appended to the
config file. Nothing that exists is overwritten.
"""
from __future__ import annotations

import tomllib
from importlib.resources import files
from pathlib import Path

from pipelines.config import PIPELINES, ConfigError
from pipelines.dsl import STEP_NAME, DefinitionError
from pipelines.files import write_atomically

KINDS = ("tabular", "minimal")
# template file -> where it goes in the new pipeline's folder
FILES = {"pipeline.py.j2": "pipeline.py", "prepare.py": "processing/prepare.py", "evaluate.py": "processing/evaluate.py",
         "train.py": "model/train.py", "inference.py": "model/inference.py", "test_pipeline.py.j2": "test_pipeline.py"}
DESCRIPTIONS = {"tabular": "Binary classifier of tabular data with tuning and a quality gate (scikit-learn).",
                "minimal": "Binary classifier of tabular data (scikit-learn)."}


def scaffold(name: str, folder: Path, config: Path, template: str = "tabular") -> list[Path]:
    """Write the pipeline `name` into `folder` and its table into `config`; the files written."""
    if not STEP_NAME.match(name):
        raise DefinitionError(f"pipeline name {name!r}: use 1 to 64 letters, digits, '-' or '_' (SageMaker's rule)")
    if template not in KINDS:
        raise DefinitionError(f"template {template!r}: choose one of {', '.join(KINDS)}")
    if folder.exists() and any(folder.iterdir()):
        raise DefinitionError(f"{folder} already exists and is not empty: choose another --dir or remove it")
    text = config.read_text() if config.is_file() else ""
    if name in tomllib.loads(text).get(PIPELINES, {}):
        raise ConfigError(f"{config} already has a [{PIPELINES}.{name}] table: choose another name or remove it")
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(files("templates") / "init")), keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    values = dict(name=name, template=template, description=DESCRIPTIONS[template],
                  definition=_shown(folder / "pipeline.py"), test=_shown(folder / "test_pipeline.py"))
    written = []
    for source, target in FILES.items():
        written.append(write_atomically(folder / target, env.get_template(source).render(**values)))
    table = (f"\n[{PIPELINES}.{name}]  # written by `init {name}`: settings over [default] and the "
             f"environment\nlabel = \"label\"\n" + ('quality_threshold = 0.75\n' if template == "tabular" else ""))
    header = text.rstrip("\n") or ("# This project's settings, over the product's defaults (pipelines/config.toml): "
                                    "[default], [dev], [prod], [pipeline.NAME].")
    written.append(write_atomically(config, header + "\n" + table))
    return written


def _shown(path: Path) -> str:
    """`path` as a user types it from the working directory."""
    try:
        return path.resolve().relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(path)
