"""data: URIs (RFC 2397), parsed in one place for everything that reads, shows or stores one:
reference images given inline, inline results, and their labels in job views."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

_DATA_URI = re.compile(r"data:([a-z0-9.+-]+/[a-z0-9.+-]+)?((?:;[a-z0-9-]+=[^;,]*)*)(;base64)?,", re.I)


@dataclass(frozen=True)
class DataUri:
    declared_type: str | None  # the media type as written, None when the URI names none
    params: str  # ";name=value" parameters, as written
    is_base64: bool
    payload: str

    @property
    def media_type(self) -> str:
        return (self.declared_type or "application/octet-stream").lower()

    def decode(self, *, strict: bool = False) -> bytes:
        """The bytes; ValueError when base64 does not decode (`strict`: no stray characters either)."""
        if not self.is_base64:
            return unquote_to_bytes(self.payload)
        try:
            return base64.b64decode(self.payload, validate=strict)
        except (binascii.Error, ValueError):
            raise ValueError("is a data: URI whose base64 does not decode") from None


def parse_data_uri(value: str) -> DataUri | None:
    m = _DATA_URI.match(value)
    if m is None:
        return None
    return DataUri(m.group(1), m.group(2), bool(m.group(3)), value[m.end() :])


def data_uri_label(value: str) -> str:
    """`data:<mime>;base64,…(N bytes)`: what we show instead of a data: URI's payload (the bytes
    are stored as an asset; repeating them in every job view and notification helps nobody)."""
    uri = parse_data_uri(value)
    if uri is None:
        return "data:,…"
    p = uri.payload
    size = len(p) * 3 // 4 - p[-2:].count("=") if uri.is_base64 else len(p)
    return f"data:{uri.media_type}{';base64' if uri.is_base64 else ''},…({size} bytes)"
