"""The pipeline graph of a report: steps laid out in layers, left to right, as SVG coordinates."""
from __future__ import annotations

from pipelines.report.gather import definition_steps
from pipelines.spec import Definition

# DAG geometry (px)
NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 192, 62, 62, 50, 16

def dag_layout(definition: Definition | None, execution: dict) -> dict:
    """Nodes and edges of the pipeline laid out in layers, left to right (SVG coordinates).

    A step's layer is one more than the deepest step it depends on; a branch step depends on its
    condition. Within a layer, plain steps come first, then each branch (grouped in a box). An edge
    that another path already implies (a step reading an earlier step's output) is drawn faintly.
    """
    specs = [{"name": p.name, "type": p.step.type, "branch": p.branch, "needs": sorted(p.needs)}
             for p in definition_steps(definition)]
    status = {s["name"]: s for s in execution.get("steps", [])}
    if not specs:  # no definition: the recorded steps, in order, unconnected
        specs = [{"name": s["name"], "type": s.get("type"), "branch": None, "needs": []}
                 for s in execution.get("steps", [])]
    names = [s["name"] for s in specs]
    preds = {s["name"]: [n for n in dict.fromkeys(s["needs"] + ([s["branch"][0]] if s["branch"] else []))
                         if n in names and n != s["name"]] for s in specs}
    layer = _layers(names, preds)
    conditions = [s["name"] for s in specs if s["type"] == "Condition"]
    order = {n: i for i, n in enumerate(names)}

    def group_key(spec):
        if not spec["branch"]:
            return (0, 0, 0)
        cond, outcome = spec["branch"]
        return (1, conditions.index(cond) if cond in conditions else 0, 0 if outcome == "True" else 1)

    # rows: the plain steps first, then each branch in a band of its own, under its condition
    bands: dict[tuple, dict[int, list[dict]]] = {}
    for spec in sorted(specs, key=lambda s: (group_key(s), order[s["name"]])):
        bands.setdefault(group_key(spec), {}).setdefault(layer[spec["name"]], []).append(spec)
    nodes, first_row = {}, 0
    for band in bands.values():
        for col, specs_in_col in band.items():
            for row, spec in enumerate(specs_in_col, start=first_row):
                record = status.get(spec["name"], {})
                nodes[spec["name"]] = {
                    "name": spec["name"], "short": _shorten(spec["name"], 30), "squeeze": len(spec["name"]) > 22,
                    "type": spec["type"],
                    "status": record.get("status", "NotRun"), "cache_hit": bool(record.get("cache_hit")),
                    "seconds": record.get("seconds"), "failure_reason": record.get("failure_reason"),
                    "branch": spec["branch"], "x": col * (NODE_W + GAP_X), "y": row * (NODE_H + GAP_Y),
                }
        first_row += max(len(c) for c in band.values())
    outcome = {c: ((status.get(c) or {}).get("response") or {}).get("Outcome") for c in conditions}
    edges = []
    for spec in specs:
        name, branch = spec["name"], spec["branch"]
        for p in preds[name]:
            if branch and p == branch[0]:
                if any(nodes[q]["branch"] == branch for q in preds[name]):
                    continue  # the condition's arrow goes to the first steps of its branch only
                taken = outcome.get(p)
                kind = "taken" if taken == branch[1] else "untaken" if taken else "branch"
                edges.append(_branch_edge(nodes[p], nodes[name], kind, branch[1].lower()))
            else:
                kind = "implied" if _implied(p, name, preds) else "data"
                edges.append(_edge(nodes[p], nodes[name], kind, None, nodes.values()))
    edges.sort(key=lambda e: ("implied", "untaken", "data", "branch", "taken").index(e["kind"]))  # strong on top
    groups = []
    for (cond, branch_outcome), members in _groups(nodes.values()).items():
        x0, y0 = min(m["x"] for m in members) - 10, min(m["y"] for m in members) - 24
        x1, y1 = max(m["x"] for m in members) + NODE_W + 10, max(m["y"] for m in members) + NODE_H + 10
        groups.append({"label": f"if {cond} is {branch_outcome.lower()}", "x": x0, "y": y0, "w": x1 - x0,
                       "h": y1 - y0, "taken": outcome.get(cond) == branch_outcome if outcome.get(cond) else None})
    # the drawing's extent: nodes, group boxes and curves; then shift everything to start at PAD
    xs = [n["x"] for n in nodes.values()] + [n["x"] + NODE_W for n in nodes.values()]
    ys = [n["y"] for n in nodes.values()] + [n["y"] + NODE_H for n in nodes.values()]
    xs += [g["x"] for g in groups] + [g["x"] + g["w"] for g in groups]
    ys += [g["y"] for g in groups] + [g["y"] + g["h"] for g in groups]
    ys += [y for e in edges for y in e.pop("extent")]
    dx, dy = PAD - min(xs, default=0), PAD - min(ys, default=0)
    for item in [*nodes.values(), *groups]:
        item["x"], item["y"] = item["x"] + dx, item["y"] + dy
    for e in edges:
        e["path"] = _path(e.pop("points"), dx, dy)
        e["lx"], e["ly"] = e["lx"] + dx, e["ly"] + dy
    return {"nodes": list(nodes.values()), "edges": edges, "groups": groups,
            "width": round(max(xs, default=0) - min(xs, default=0) + 2 * PAD),
            "height": round(max(ys, default=0) - min(ys, default=0) + 2 * PAD), "node_w": NODE_W, "node_h": NODE_H}


def _layers(names: list[str], preds: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path layering; a cycle (which a validated definition cannot have) is cut, not looped."""
    layer: dict[str, int] = {}

    def depth(name, seen):
        if name not in layer:
            layer[name] = 1 + max((depth(p, seen | {name}) for p in preds[name] if p not in seen), default=-1)
        return layer[name]

    for name in names:
        depth(name, frozenset())
    return layer


def _implied(source: str, target: str, preds: dict[str, list[str]]) -> bool:
    """Whether `target` also depends on `source` through some other step."""
    stack = [p for p in preds[target] if p != source]
    seen = set()
    while stack:
        name = stack.pop()
        if name == source:
            return True
        if name not in seen:
            seen.add(name)
            stack.extend(preds.get(name, []))
    return False


def _groups(nodes) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for node in nodes:
        if node["branch"]:
            groups.setdefault(tuple(node["branch"]), []).append(node)
    return groups


def _edge(source: dict, target: dict, kind: str, label: str | None, nodes) -> dict:
    """A cubic curve from the source's right side to the target's left side. When the plain S-curve
    would cross a step, the edge arcs over (or under) the steps in between instead."""
    x1, y1 = source["x"] + NODE_W, source["y"] + NODE_H / 2
    x2, y2 = target["x"] - 2, target["y"] + NODE_H / 2
    mid = (x1 + x2) / 2
    candidates = [[(x1, y1), (mid, y1), (mid, y2), (x2, y2)]]
    for k in range(1, 6):
        above = min(y1, y2) - NODE_H / 2 - 10 - 22 * k
        below = max(y1, y2) + NODE_H / 2 + 10 + 22 * k
        for bend in ((above, below) if y2 <= y1 else (below, above)):
            candidates.append([(x1, y1), (x1 + GAP_X, bend), (x2 - GAP_X, bend), (x2, y2)])
    others = [n for n in nodes if n is not source and n is not target]
    points = next((c for c in candidates if not _crosses(c, others)), candidates[1])
    curve = [_bezier(points, t / 24) for t in range(25)]
    lx, ly = _bezier(points, 0.72)
    return {"points": points, "kind": kind, "label": label, "lx": lx - 4, "ly": ly - 5,
            "extent": [y for _, y in curve], "source": source["name"], "target": target["name"]}


def _branch_edge(condition: dict, target: dict, kind: str, label: str) -> dict:
    """From the bottom of a condition down, then right into the first step of a branch: the
    branches hang under their condition like a tree."""
    x, top = condition["x"] + 28, condition["y"] + NODE_H
    x2, y2 = target["x"] - 2, target["y"] + NODE_H / 2
    return {"points": [(x, top), (x, y2), (x2, y2)], "kind": kind, "label": label, "lx": x + 24, "ly": y2 - 5,
            "extent": [top, y2], "source": condition["name"], "target": target["name"]}


def _crosses(points, nodes, margin: float = 6) -> bool:
    for t in range(1, 40):
        x, y = _bezier(points, t / 40)
        if any(n["x"] - margin <= x <= n["x"] + NODE_W + margin and n["y"] - margin <= y <= n["y"] + NODE_H + margin
               for n in nodes):
            return True
    return False


def _bezier(points, t: float) -> tuple[float, float]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3
    return a * x0 + b * x1 + c * x2 + d * x3, a * y0 + b * y1 + c * y2 + d * y3


def _path(points, dx: float, dy: float) -> str:
    """SVG path data: four points are a cubic curve, three an elbow with a rounded corner."""
    (x0, y0), *rest = [(x + dx, y + dy) for x, y in points]
    if len(rest) == 3:
        return f"M{x0:.0f},{y0:.0f} C" + " ".join(f"{x:.0f},{y:.0f}" for x, y in rest)
    (x1, y1), (x2, y2) = rest
    r = min(10, abs(y1 - y0), abs(x2 - x1))
    return (f"M{x0:.0f},{y0:.0f} L{x1:.0f},{y1 - r:.0f} Q{x1:.0f},{y1:.0f} {x1 + r:.0f},{y1:.0f} "
            f"L{x2:.0f},{y2:.0f}")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


