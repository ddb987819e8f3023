"""Which adapter serves which provider name, and input validation against its schemas."""

from __future__ import annotations

from typing import Any

from providers.base import Adapter
from providers.fal import FalAdapter
from providers.kling import KlingAdapter
from providers.midjourney import MidjourneyAdapter
from providers.replicate import ReplicateAdapter
from providers.suno import SunoAdapter
from providers.video import GROK, SORA, VEO

ADAPTERS: dict[str, Adapter] = {a.name: a for a in (KlingAdapter(), MidjourneyAdapter(), SunoAdapter(), SORA, VEO, GROK, ReplicateAdapter(), FalAdapter())}


class UnknownProvider(LookupError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def get_adapter(provider: str) -> Adapter:
    try:
        return ADAPTERS[provider]
    except KeyError:
        raise UnknownProvider("provider", f"unknown provider {provider!r}; known: {', '.join(sorted(ADAPTERS))}") from None


def resolve(provider: str, operation: str | None) -> tuple[Adapter, str]:
    """The provider's adapter and the operation name, defaulting to its first; UnknownProvider when it has none such."""
    adapter = get_adapter(provider)
    if operation is None:
        return adapter, next(iter(adapter.operations))
    if operation not in adapter.operations:
        known = ", ".join(adapter.operations)
        raise UnknownProvider("operation", f"unknown operation {operation!r} for {provider}; known: {known}")
    return adapter, operation


def resolve_operation(provider: str, operation: str | None) -> str:
    """The operation name, defaulting to the provider's first; UnknownProvider when it has none such."""
    return resolve(provider, operation)[1]


def validate_input(provider: str, operation: str, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate raw input against the operation schema; pydantic ValidationError on bad input."""
    return clean_input(get_adapter(provider), operation, raw)


def clean_input(adapter: Adapter, operation: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The input as stored (job.input): validated against the operation's schema, dumped without None fields."""
    return adapter.operations[operation].schema.model_validate(raw).model_dump(mode="json", exclude_none=True, by_alias=False)
