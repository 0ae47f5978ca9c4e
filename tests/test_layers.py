"""The shape of the code base, held by tests: no import circles, and every arrow between layers points down.

Imports are read from the sources (module level and inside functions alike: a circle closed by a
function-level import is still a circle), so nothing needs importing to be checked.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "pipelines"


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports: for `from a.b import c`, a.b.c when that is a module, else a.b."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports(p, modules) - {module_name(p)} for p in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_of_the_framework_imports_a_module_that_imports_it():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_local_runner_imports_neither_the_definition_language_the_compiler_nor_the_commands():
    above = ("pipelines.dsl", "pipelines.compiler", "pipelines.definitions", "pipelines.commands", "pipelines.cli")
    wrong = {module: sorted(m for m in imported if m.startswith(above))
             for module, imported in import_graph().items() if module.startswith("pipelines.local")}
    assert {m: found for m, found in wrong.items() if found} == {}


def imported_names(path: Path) -> set[str]:
    """Every module name `path` imports (absolute imports), project or not."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module)
    return found


def test_the_framework_and_its_job_scripts_never_import_the_worked_example():
    shipped = [p for folder in ("pipelines", "processing_scripts", "training_scripts", "templates")
               for p in sorted((PROJECT_ROOT / folder).rglob("*.py"))]
    wrong = {str(p.relative_to(PROJECT_ROOT)): sorted(m for m in imported_names(p) if m.split(".")[0] == "examples")
             for p in shipped}
    assert len(shipped) > 50 and {p: m for p, m in wrong.items() if m} == {}


def test_the_example_check_finds_an_import_of_the_example(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom examples.purchase_intent import shoppers_data\n")
    assert "examples.purchase_intent" in imported_names(module)
