"""The report's plots: matplotlib's Agg canvas, embedded as base64 PNG so that a report is one file."""
from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any

from pipelines.files import write_atomically
from pipelines.quality import SECTIONS

# plot palette, shared with the page's CSS
BLUE, GREY, INK = "#2563eb", "#94a3b8", "#1e293b"


def draw_plots(evaluation: dict | None, problem_type: str | None, classes: list | None,
               trials: list[dict] | None = None, *, cache: Path | None = None) -> tuple[list[dict], list[str]]:
    """([{"id", "title", "src" (data: URI), "wide"}], [what could not be drawn and why]).

    Plots are a pure function of these arguments, so with `cache` (a folder) they are kept by the
    sha256 of them: a re-run whose Evaluate and tuning were cache hits renders its report without
    drawing anything (drawing is most of a cached re-run's time otherwise)."""
    key = hashlib.sha256(json.dumps([evaluation, problem_type, classes, trials, _VERSION], sort_keys=True,
                                    default=str).encode()).hexdigest()
    path = cache / f"{key}.json" if cache is not None else None
    if path is not None and path.is_file():
        try:
            drawn = json.loads(path.read_text())
            return drawn["plots"], drawn["notes"]
        except (OSError, ValueError, KeyError):
            pass  # a damaged entry is drawn again and rewritten
    plots, notes = _draw(evaluation or {}, problem_type, classes, trials or [])
    if path is not None:
        write_atomically(path, json.dumps({"plots": plots, "notes": notes}))
    return plots, notes


_VERSION = 2  # bump when a plot's drawing changes, so cached plots are drawn again


def _draw(evaluation: dict, problem_type: str | None, classes: list | None, trials: list[dict]):
    section = next((evaluation[s] for s in SECTIONS if s in evaluation), {}) or {}
    curves = evaluation.get("curves") or {}
    value = lambda name: (section.get(name) or {}).get("value") if isinstance(section.get(name), dict) else None  # noqa: E731
    regression = problem_type == "regression" and bool(evaluation)
    wanted = [
        ("roc", "ROC curve", lambda: _roc(curves.get("roc"), value("roc_auc")), problem_type == "binary"),
        ("pr", "Precision–recall curve", lambda: _pr(curves.get("pr"), section.get("confusion_matrix")),
         problem_type == "binary"),
        ("calibration", "Calibration (reliability diagram)",
         lambda: _calibration(curves.get("calibration"), value("brier_score"), value("expected_calibration_error")),
         problem_type == "binary"),
        ("confusion", "Confusion matrix", lambda: _confusion(section.get("confusion_matrix"), classes),
         problem_type in ("binary", "multiclass")),
        ("lift", "Lift by score decile", lambda: _lift(curves.get("lift")), False),
        ("predicted_vs_actual", "Predicted vs actual",
         lambda: _predicted_vs_actual(curves.get("predicted_vs_actual")), regression),
        ("residuals", "Residuals by prediction", lambda: _residuals(curves.get("predicted_vs_actual")), regression),
        ("trials", "Tuning: objective by trial", lambda: _trials(trials), False),
        ("importance", "Feature importance (gain)", lambda: _importance(evaluation.get("feature_importance")),
         bool(evaluation)),
    ]
    plots, notes = [], []
    for plot_id, title, draw, expected in wanted:
        try:
            figure = draw()
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            notes.append(f"{title}: the data in evaluation.json is malformed ({type(exc).__name__}: {exc}).")
            continue
        if figure is not None:
            plots.append({"id": plot_id, "title": title, "src": _png(figure), "wide": plot_id == "importance"})
        elif expected and plot_id in ("predicted_vs_actual", "residuals"):
            notes.append(f"{title}: evaluation.json records no points (curves.predicted_vs_actual); "
                         "see the metrics table.")
        elif expected:
            notes.append(f"{title}: evaluation.json has no data for it.")
    return plots, notes


def _figure(width=4.6, height=3.7, **kwargs):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110, layout="constrained", **kwargs)
    return figure


def _style(ax, xlabel=None, ylabel=None):
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#cbd5e1")
    ax.tick_params(colors="#475569", labelsize=8)
    ax.grid(True, color="#e2e8f0", linewidth=0.6)
    ax.set_axisbelow(True)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=9, color="#334155")
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=9, color="#334155")


def _png(figure) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None}, facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _per_class(curve: Any, *keys: str) -> dict[str, dict] | None:
    """A curve as {name: {key: [...]}}: one unnamed curve, or one per class."""
    if not isinstance(curve, dict):
        return None
    if all(k in curve for k in keys):
        return {"": curve}
    found = {str(k): v for k, v in curve.items() if isinstance(v, dict) and all(key in v for key in keys)}
    return found or None


def _roc(curve, auc):
    lines = _per_class(curve, "fpr", "tpr")
    if not lines:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="chance")
    for name, line in lines.items():
        label = name or (f"model (AUC {auc:.3f})" if auc is not None else "model")
        ax.plot(line["fpr"], line["tpr"], linewidth=2, color=BLUE if not name else None, label=label)
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
    _style(ax, "False positive rate", "True positive rate")
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    return figure


def _pr(curve, confusion):
    lines = _per_class(curve, "precision", "recall")
    if not lines:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    positives, total = _prevalence(confusion)
    if total:
        ax.axhline(positives / total, linestyle="--", color=GREY, linewidth=1,
                   label=f"base rate {positives / total:.2f}")
    for name, line in lines.items():
        ax.plot(line["recall"], line["precision"], linewidth=2, color=BLUE if not name else None,
                label=name or "model", drawstyle="steps-post")
    ax.set_xlim(0, 1), ax.set_ylim(0, 1.01)
    _style(ax, "Recall", "Precision")
    ax.legend(fontsize=8, frameon=False, loc="lower left")
    return figure


def _prevalence(confusion) -> tuple[int, int]:
    """(actual positives, total) of a binary {actual: {predicted: count}} matrix; the positive class is last."""
    if not isinstance(confusion, dict) or len(confusion) != 2:
        return 0, 0
    return sum(list(confusion.values())[-1].values()), sum(sum(row.values()) for row in confusion.values())


def _calibration(bins, brier, ece):
    if not isinstance(bins, list) or not bins:
        return None
    figure = _figure(height=4.2)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    predicted = [b["mean_predicted"] for b in bins]
    observed = [b["fraction_positive"] for b in bins]
    top.plot([0, 1], [0, 1], linestyle="--", color=GREY, linewidth=1, label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", markersize=4, linewidth=2, color=BLUE, label="model")
    top.set_xlim(0, 1), top.set_ylim(0, 1.01)
    _style(top, None, "Fraction positive")
    scores = [f"Brier {brier:.4f}" if brier is not None else None, f"ECE {ece:.4f}" if ece is not None else None]
    top.legend(fontsize=8, frameon=False, loc="upper left",
               title=" · ".join(s for s in scores if s) or None, title_fontsize=8)
    width = 1 / max(10, len(bins))
    bottom.bar([b.get("bin", i) * width + width / 2 if "bin" in b else p for i, (b, p) in enumerate(zip(bins, predicted))],
               [b.get("count", 0) for b in bins], width=width * 0.9, color="#93c5fd")
    counts = [b.get("count", 0) for b in bins if b.get("count")]
    if counts and max(counts) > 10 * min(counts):  # a log scale only where counts span decades: else no labels fit
        bottom.set_yscale("log")
    _style(bottom, "Mean predicted probability", "Count")
    return figure


def _confusion(matrix, classes):
    if not isinstance(matrix, dict) or not matrix:
        return None
    codes = list(matrix)
    predicted_codes = list(next(iter(matrix.values())))
    counts = [[matrix[a].get(p, 0) for p in predicted_codes] for a in codes]

    def name(code):
        return str(classes[int(code)]) if classes and str(code).isdigit() and int(code) < len(classes) else str(code)

    size = min(7.5, max(3.8, 0.55 * len(codes) + 2.2))
    figure = _figure(size + 0.6, size)
    ax = figure.add_subplot()
    shares = [[c / (sum(row) or 1) for c in row] for row in counts]
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            ax.text(j, i, f"{count:,}\n{shares[i][j]:.0%}", ha="center", va="center", fontsize=9 if len(codes) < 6 else 6,
                    color="white" if shares[i][j] > 0.6 else INK)
    ax.set_xticks(range(len(predicted_codes)), [name(c) for c in predicted_codes], fontsize=8,
                  rotation=45 if len(codes) > 4 else 0)
    ax.set_yticks(range(len(codes)), [name(c) for c in codes], fontsize=8)
    ax.set_xlabel("Predicted", fontsize=9, color="#334155")
    ax.set_ylabel("Actual", fontsize=9, color="#334155")
    figure.colorbar(image, ax=ax, shrink=0.8, label="share of actual class").ax.tick_params(labelsize=7)
    return figure


def _lift(deciles):
    if not isinstance(deciles, list) or not deciles:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    ax.bar([d["decile"] for d in deciles], [d["lift"] for d in deciles], color=BLUE, width=0.7)
    ax.axhline(1, linestyle="--", color=GREY, linewidth=1, label="no model (lift 1)")
    ax.set_xticks([d["decile"] for d in deciles])
    _style(ax, "Score decile (1 = highest scores)", "Lift")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _predicted_vs_actual(points):
    pairs = _points(points)
    if pairs is None:
        return None
    actual, predicted = pairs
    figure = _figure()
    ax = figure.add_subplot()
    low, high = min(min(actual), min(predicted)), max(max(actual), max(predicted))
    ax.plot([low, high], [low, high], linestyle="--", color=GREY, linewidth=1, label="perfect")
    ax.scatter(actual, predicted, s=8, alpha=0.5, color=BLUE, label="test rows")
    _style(ax, "Actual", "Predicted")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _points(points) -> tuple[list[float], list[float]] | None:
    """(actual, predicted) from evaluate.py's {"actual": [...], "predicted": [...]} or a list of pairs."""
    if isinstance(points, list) and points and isinstance(points[0], dict):
        return [p["actual"] for p in points], [p["predicted"] for p in points]
    if isinstance(points, dict) and points.get("actual") and "predicted" in points:
        return points["actual"], points["predicted"]
    return None


def _residuals(points):
    pairs = _points(points)
    if pairs is None:
        return None
    actual, predicted = pairs
    residuals = [a - p for a, p in zip(actual, predicted)]
    figure = _figure()
    ax = figure.add_subplot()
    ax.axhline(0, linestyle="--", color=GREY, linewidth=1, label="no error")
    ax.scatter(predicted, residuals, s=8, alpha=0.5, color=BLUE, label="test rows")
    _style(ax, "Predicted", "Actual − predicted")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _trials(trials: list[dict]):
    """Each trial's objective in trial order, the best so far as a line, failed trials marked along the axis."""
    scored = [t for t in trials if t.get("value") is not None]
    if len(trials) < 2 or not scored:
        return None
    figure = _figure()
    ax = figure.add_subplot()
    ax.scatter([t["trial"] for t in scored], [t["value"] for t in scored], s=22, color=BLUE, zorder=3, label="trial")
    best = [t for t in scored if t.get("best")]
    maximise = not best or best[0]["value"] >= max(t["value"] for t in scored)
    running, line = None, []
    for t in sorted(scored, key=lambda t: t["trial"]):
        running = t["value"] if running is None else max(running, t["value"]) if maximise else min(running, t["value"])
        line.append((t["trial"], running))
    ax.step([x for x, _ in line], [y for _, y in line], where="post", color=GREY, linewidth=1.5, label="best so far")
    if best:
        ax.scatter([best[0]["trial"]], [best[0]["value"]], s=70, facecolors="none", edgecolors=INK, linewidths=1.5,
                   zorder=4, label="chosen")
    failed = [t["trial"] for t in trials if t.get("value") is None]
    if failed:
        ax.scatter(failed, [min(t["value"] for t in scored)] * len(failed), marker="x", color="#dc2626", zorder=3,
                   label="failed")
    ax.set_xticks([t["trial"] for t in trials] if len(trials) <= 20 else ax.get_xticks())
    _style(ax, "Trial", "Objective")
    ax.legend(fontsize=8, frameon=False)
    return figure


def _importance(features, top=20):
    if not isinstance(features, list) or not features:
        return None
    rows = sorted(features, key=lambda f: -f["gain"])[:top][::-1]
    figure = _figure(9.2, 0.26 * len(rows) + 0.9)
    ax = figure.add_subplot()
    ax.barh([r["feature"] for r in rows], [r["gain"] for r in rows], color=BLUE, height=0.7)
    _style(ax, "Mean gain per split", None)
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", labelsize=8)
    return figure


