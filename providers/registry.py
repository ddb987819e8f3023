"""Which adapter serves which provider name, and input validation against its schemas."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from providers.base import ROUTE_PREFIX, Adapter
from providers.fal import FalAdapter
from providers.kling import KlingAdapter
from providers.midjourney import MidjourneyAdapter
from providers.minimax import MinimaxAdapter
from providers.newapi_video import NEWAPI_VIDEO
from providers.oneshot import GEMINI_IMAGE, IDEOGRAM, IMAGES, SPEECH
from providers.replicate import ReplicateAdapter
from providers.seedance import SeedanceAdapter
from providers.suno import SunoAdapter
from providers.video import GROK, SORA, VEO
from providers.vidu import ViduAdapter

ADAPTERS: dict[str, Adapter] = {
    a.name: a
    for a in (
        KlingAdapter(),
        MidjourneyAdapter(),
        SunoAdapter(),
        SORA,
        VEO,
        GROK,
        ReplicateAdapter(),
        FalAdapter(),
        MinimaxAdapter(),
        ViduAdapter(),
        NEWAPI_VIDEO,
        SeedanceAdapter(),
        IMAGES,
        SPEECH,
        GEMINI_IMAGE,
        IDEOGRAM,
    )
}


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


def with_prefix(path: str, prefixes: Mapping[str, str]) -> str:
    """`path` with a family's default route prefix replaced by the configured one (`prefixes` maps
    default -> configured); a path under no default prefix is returned unchanged."""
    for default, configured in prefixes.items():
        if path == default or path.startswith((default + "/", default + "?")):
            return configured + path[len(default) :]
    return path


def route_prefix_map(setting: str | None) -> dict[str, str]:
    """K4U_ROUTE_PREFIXES (`family=/prefix,...`) as default prefix -> configured prefix; ValueError
    naming the family or the prefix when one is not a family with a route prefix or not a path."""
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in (setting or "").split(","))):
        family, sep, prefix = (x.strip() for x in item.partition("="))
        adapter = ADAPTERS.get(family)
        default = adapter.capabilities.route_prefix if adapter else None
        if not sep or default is None:
            known = sorted(name for name, a in ADAPTERS.items() if a.capabilities.route_prefix)
            raise ValueError(f"K4U_ROUTE_PREFIXES: {family!r} is not a family with a route prefix (known: {', '.join(known) or 'none'})")
        if not ROUTE_PREFIX.fullmatch(prefix.rstrip("/") or "/"):
            raise ValueError(f"K4U_ROUTE_PREFIXES: {family}={prefix!r} is not a path like /volc/v1")
        out[default] = prefix.rstrip("/")
    return out
