"""Imports point downward only: cli -> api/tasks -> workers -> providers -> models; the
simulator imports nothing of ours."""

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
