"""The run report (HTML) and the model card (Markdown) of a pipeline execution.

    render_report(execution, definition, store, out_path=Path("report.html"))   -> Path
    render_model_card(execution, definition, store)                             -> str

`execution` is a local runner record (`runs/<id>/execution.json`), `definition` the definition JSON
it ran, `store` the object store its steps wrote to. One module per idea: `gather` reads what there
is to show, `plots` draws it, `dag` lays out the pipeline graph, `render` holds the templates'
filters; all presentation is in `templates/report.html.j2` and `templates/model_card.md.j2`.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

from pipelines.files import write_atomically
from pipelines.local.records import save_record
from pipelines.report.dag import dag_layout
from pipelines.report.gather import gather, quality_gates, read_definition, registered_model
from pipelines.report.plots import draw_plots
from pipelines.report.render import environment
from pipelines.spec import Definition

__all__ = ["dag_layout", "publish_local_run", "quality_gates", "read_definition", "render_model_card",
           "render_report", "store_model_card"]


def render_report(execution: dict, definition: Definition | None, store, *, out_path, description: str | None = None,
                  model_card_uri: str | None = None, home=None) -> Path:
    """Write the HTML report of one execution to `out_path` (atomically); return the path. With the
    local `home`, the registered model shows its approval status as the registry has it now, and
    plots drawn before from the same data are reused (`plots.cached`)."""
    out_path = Path(out_path)
    context = gather(execution, definition, store, description=description)
    if home is not None and context["registered"]:
        context["registered"]["status"] = _approval_now(home, context["registered"])
    context["dag"] = dag_layout(definition, execution)
    context["plots"], context["plot_notes"] = draw_plots(context["evaluation"], context["problem_type"],
                                                         context["classes"], context["training"].get("trials"),
                                                         cache=home.cache / "plots" if home is not None else None)
    context["model_card_uri"] = model_card_uri or execution.get("model_card")
    context["logs"] = {s["name"]: Path(os.path.relpath(s["log"], out_path.parent)).as_posix()
                       for s in execution.get("steps", []) if s.get("log")}
    html = environment().get_template("report.html.j2").render(**context)
    return write_atomically(out_path, html)


def _approval_now(home, registered: dict) -> str | None:
    """The version's approval status today (approved or rejected since the run), else as registered."""
    from pipelines.local.registry import Registry

    try:
        return Registry.of(home).get(registered["group"], int(registered["version"]))["ModelApprovalStatus"]
    except (KeyError, TypeError, ValueError, LookupError):
        return registered["status"]


def render_model_card(execution: dict, definition: Definition | None, store, *, description: str | None = None) -> str:
    """The Markdown model card of the model an execution trained (and, usually, registered)."""
    context = gather(execution, definition, store, description=description)
    return environment().get_template("model_card.md.j2").render(**context)


def publish_local_run(record: dict, *, home, store, description: str | None = None,
                      warn: Callable[[str], None] | None = None) -> dict:
    """The end of `run --local`: the report into `runs/<id>/report.html` and, after a registration,
    the model card beside the model artifact (`<dir of ModelDataUrl>/model_card.md`) and on the
    registry's version. Returns the record with `report` (and `model_card`) set, also saved to
    `execution.json`. A problem here is a warning: it never changes the outcome of the run."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    run_dir = home.runs / record["execution_id"]
    record = dict(record)
    description = record["description"] = description or record.get("description")  # a later render reuses it
    definition = read_definition(run_dir)
    registered = registered_model(record)
    if registered and registered.get("model_data_url"):
        try:
            record["model_card"] = store_model_card(record, definition, store, registered, home=home,
                                                    description=description)
        except Exception as exc:  # a card that cannot be written must not fail a good run
            warn(f"model card not written: {type(exc).__name__}: {exc}")
    try:
        record["report"] = str(render_report(record, definition, store, out_path=run_dir / "report.html",
                                             description=description, model_card_uri=record.get("model_card"),
                                             home=home))
    except Exception as exc:  # nor must a report
        warn(f"report not written: {type(exc).__name__}: {exc}")
    if (run_dir / "execution.json").is_file():
        save_record(run_dir, record)
    return record


def store_model_card(record: dict, definition: Definition | None, store, registered: dict, *, home,
                     description: str | None = None) -> str:
    """Render the card, put it beside the model artifact and on the registry version; return its URI."""
    from pipelines.local.registry import Registry

    card = render_model_card(record, definition, store, description=description)
    uri = f"{registered['model_data_url'].rsplit('/', 1)[0]}/model_card.md"
    store.put_bytes(uri, card.encode("utf-8"))
    if registered.get("group") and registered.get("version") is not None:
        Registry.of(home).set_model_card(registered["group"], registered["version"], card)
    return uri


