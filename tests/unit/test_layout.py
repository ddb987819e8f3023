"""Imports point downward only: cli -> api/tasks -> workers -> providers -> models; the
simulator imports nothing of ours; no module imports itself back through others."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = {"models", "providers", "workers", "tasks", "api", "simulator", "cli", "migrations"}
MAY_IMPORT = {
    "models": set(),
    "providers": {"models"},
    "workers": {"models", "providers"},
    "tasks": {"workers", "models", "providers"},
    "api": {"workers", "models", "providers"},
    "simulator": set(),
    "migrations": {"models"},
    "cli": OURS - {"cli"},
}


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & OURS


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_point_downward(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        bad = imports_of(path) - MAY_IMPORT[package] - {package}
        assert not bad, f"{path.relative_to(ROOT)} imports {bad}"


def test_modules_stay_small() -> None:
    for package in MAY_IMPORT:
        for path in (ROOT / package).rglob("*.py"):
            assert len(path.read_text().splitlines()) <= 500, path


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for package in sorted(OURS) for path in (ROOT / package).rglob("*.py")}


def module_imports(name: str) -> set[str]:
    """The modules of ours that `name` imports anywhere in its text: at module level, under
    TYPE_CHECKING or inside a function (a local import still couples the two). `from pkg import x`
    counts as an import of `pkg.x` when that is a module, else of `pkg`."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import a.b.func`-like paths: the module part
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return cycles


def test_import_cycles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}, "f": {"g"}, "g": {"f"}}
    assert import_cycles(graph) == [["a", "b", "c"], ["f", "g"]]


def test_no_import_cycles() -> None:
    """No module reaches itself through the modules it imports, across packages or within one."""
    graph = {name: module_imports(name) for name in MODULES}
    report = [
        f"{len(cycle)} modules in a circle: " + "; ".join(f"{m} -> {', '.join(sorted(graph[m] & set(cycle)))}" for m in cycle) for cycle in import_cycles(graph)
    ]
    assert not report, "import cycles:\n" + "\n".join(report)
