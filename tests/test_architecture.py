"""The package's dependency rules (docs/ARCHITECTURE.md, "Layers"), checked on the source.

Every import counts, including those inside functions: a function-level import hides a cycle
from Python's import machinery, not from the design.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"

# Lowest first. A module may import its own layer or lower ones, never a higher one.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("harness", "harness.errors", "harness.stats", "harness.cache", "harness.units"),
    ("harness.model",),
    ("harness.providers",),
    ("harness.config", "harness.config_checks", "harness.config_values"),
    ("harness.targets",),
    ("harness.measure",),
    ("harness.judge",),
    ("harness.suite", "harness.serve", "harness.report"),
    ("harness.commands", "harness.cli", "harness.__main__"),
)

# Known debts, each owned by work in progress; an entry that no longer applies fails the test,
# so the list can only shrink.
KNOWN_UPWARD: set[tuple[str, str]] = set()
KNOWN_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def harness_imports(path: Path) -> set[str]:
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    return imports_in_source(path.read_text(encoding="utf-8"), package)


def imports_in_source(source: str, package: str) -> set[str]:
    """Every harness module the source imports, wherever the import statement stands."""
    tree = ast.parse(source)
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "harness" or name.startswith("harness.")}


def all_modules() -> dict[str, set[str]]:
    modules = {module_name(p): harness_imports(p) for p in ROOT.rglob("*.py")}
    # `from harness.x import name` adds "harness.x.name": keep only names that are modules.
    return {name: {i for i in imports if i in modules} for name, imports in modules.items()}


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and len(prefix) > best_len and not (prefix == "harness" and module != "harness"):
                best, best_len = index, len(prefix)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS and docs/ARCHITECTURE.md")
    return best


def upward_imports(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(m, i) for m, imports in graph.items() for i in imports if layer_of(i) > layer_of(m)}


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
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
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_every_module_belongs_to_a_layer():
    for module in all_modules():
        layer_of(module)


def test_no_module_imports_a_higher_layer():
    unexpected = upward_imports(all_modules()) - KNOWN_UPWARD
    assert not unexpected, "imports against the layering: " + ", ".join(f"{a} -> {b}" for a, b in sorted(unexpected))


def test_no_import_cycles():
    unexpected = cycles(all_modules()) - KNOWN_CYCLES
    assert not unexpected, "import cycles: " + "; ".join(" <-> ".join(sorted(c)) for c in unexpected)


def test_known_debts_still_exist_so_the_list_only_shrinks():
    graph = all_modules()
    assert KNOWN_UPWARD <= upward_imports(graph), "a KNOWN_UPWARD entry is fixed: delete it"
    assert KNOWN_CYCLES <= cycles(graph), "a KNOWN_CYCLES entry is fixed: delete it"


@pytest.mark.parametrize(
    "graph, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, {frozenset({"a", "b"})}),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, set()),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, {frozenset({"a", "b", "c"})}),
    ],
)
def test_cycle_finder_on_hand_made_graphs(graph, expected):
    assert cycles(graph) == expected


def test_function_level_and_relative_imports_are_seen():
    source = "import os\ndef f():\n    from harness.report import html\n    from ..judge import checklist\n"
    assert imports_in_source(source, "harness.measure") == {
        "harness.report", "harness.report.html", "harness.judge", "harness.judge.checklist",
    }


# Modules being split by work in progress; shrink-only like the lists above.
KNOWN_LONG: set[str] = set()


def test_no_module_over_400_lines():
    long = {module_name(p) for p in ROOT.rglob("*.py") if len(p.read_text(encoding="utf-8").splitlines()) > 400}
    assert long <= KNOWN_LONG, f"modules over 400 lines: {sorted(long - KNOWN_LONG)}"
    assert KNOWN_LONG <= long, f"no longer over 400 lines, delete from KNOWN_LONG: {sorted(KNOWN_LONG - long)}"
