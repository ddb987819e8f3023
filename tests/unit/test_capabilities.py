"""Capabilities as data: the engine and the API know families only by what their adapters declare
(providers.base.Capabilities), never by name; what a capability names exists and agrees with the
adapter's flows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from providers.base import CallbackAuth, LostSubmit, PollTarget
from providers.registry import ADAPTERS
from workers.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# The settings declare each family's own configuration (K4U_FAL_JWKS...): their help texts name it.
DECLARES_FAMILY_SETTINGS = {ROOT / "workers" / "settings.py"}


def string_constants(tree: ast.AST) -> list[ast.Constant]:
    """Every string constant of a module but its docstrings (module, class, function)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


@pytest.mark.parametrize("package", ["workers", "api"])
def test_no_provider_name_in_the_engine_or_the_api(package: str) -> None:
    name = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, ADAPTERS)) + r")(?![A-Za-z0-9_])", re.IGNORECASE)
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:80]!r}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if path not in DECLARES_FAMILY_SETTINGS
        for node in string_constants(ast.parse(path.read_text()))
        if name.search(node.value)
    ]
    assert not found, "a provider's name in a string: read its capabilities instead\n" + "\n".join(found)


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_a_capability_names_a_setting_of_the_right_kind(provider: str) -> None:
    caps = ADAPTERS[provider].capabilities
    for setting in caps.settings:
        assert setting in Settings.model_fields, f"{provider}: {setting} is not a Settings field"
    if caps.callback_auth is CallbackAuth.STANDARD_WEBHOOKS:
        assert Settings.model_fields[caps.callback_setting or ""].annotation == SecretStr | None
    if caps.callback_auth is CallbackAuth.JWKS:
        assert Settings.model_fields[caps.callback_setting or ""].annotation == str | None


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_cancel_and_lookup_flows_are_what_the_capabilities_say(provider: str) -> None:
    adapter = ADAPTERS[provider]
    caps = adapter.capabilities
    for op in adapter.operations:
        assert (adapter.cancel(PollTarget("job_1", "task_1", op)) is not None) == caps.cancels, (provider, op)
        if caps.lost_submit is not LostSubmit.LOOKUP:
            assert adapter.lookup(op, "job_1") is None, (provider, op)
    if caps.lost_submit is LostSubmit.LOOKUP:
        assert any(adapter.lookup(op, "job_1") is not None for op in adapter.operations), provider


def test_capabilities_refuse_a_signature_without_its_setting() -> None:
    from providers.base import Capabilities

    with pytest.raises(ValueError):
        Capabilities(callback_auth=CallbackAuth.JWKS)
    with pytest.raises(ValueError):
        Capabilities(callback_setting="fal_jwks")
    assert Capabilities().settings == () and not Capabilities().batch_query
