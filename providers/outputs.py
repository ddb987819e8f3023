"""Results of any shape: walk a model's JSON output and find every file in it.

Replicate and fal models answer with a URL, a list of URLs, or model-specific JSON (`{images:
[{url, content_type}], seed}`, `{video: {url}}`...). Every http(s) URL and every `data:` URI in the
JSON becomes an output; the JSON itself stays in job.result, with `data:` URIs shortened to
`data:<mime>;base64,…(N bytes)` (the bytes are stored as an asset, not kept twice).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from models.datauri import data_uri_label, parse_data_uri
from providers.base import OutputRef

__all__ = ["data_uri_label", "decode_data_uri", "shorten_data_uris", "walk_outputs"]

MAX_OUTPUTS = 100
MAX_DEPTH = 32
_KIND_BY_EXT = {
    "png": "image",
    "jpg": "image",
    "jpeg": "image",
    "webp": "image",
    "gif": "image",
    "bmp": "image",
    "avif": "image",
    "mp4": "video",
    "webm": "video",
    "mov": "video",
    "mkv": "video",
    "mp3": "audio",
    "wav": "audio",
    "flac": "audio",
    "ogg": "audio",
    "m4a": "audio",
    "aac": "audio",
}


def is_file_ref(value: str) -> bool:
    low = value[:8].lower()
    return (low.startswith(("http://", "https://")) and len(value) <= 4000) or low.startswith("data:")


def kind_of(url: str, content_type: str | None = None) -> str:
    """image | video | audio | file, from a content type when the model gave one, else the name."""
    mime = (content_type or "").lower()
    if url[:5].lower() == "data:":
        uri = parse_data_uri(url)
        mime = mime or (uri.declared_type or "").lower() if uri else mime
    for kind in ("image", "video", "audio"):
        if mime.startswith(kind + "/"):
            return kind
    ext = urlsplit(url).path.rsplit(".", 1)[-1].lower() if url[:5].lower() != "data:" else ""
    return _KIND_BY_EXT.get(ext, "file")


def walk_outputs(output: Any) -> list[OutputRef]:
    """Every file URL in the output, in document order, once each (at most MAX_OUTPUTS)."""
    seen: set[str] = set()
    out: list[OutputRef] = []
    for url, path, content_type in _walk(output, "$", None, 0):
        if url in seen:
            continue
        seen.add(url)
        kind = kind_of(url, content_type)
        if kind == "file":  # `{video: {url}}`: the key names what the file is
            kind = next((k for k in ("video", "image", "audio") if k in path.lower()), "file")
        out.append(OutputRef(url, kind, meta={"path": path}))
        if len(out) >= MAX_OUTPUTS:
            break
    return out


def _walk(node: Any, path: str, content_type: str | None, depth: int) -> Iterator[tuple[str, str, str | None]]:
    if depth > MAX_DEPTH:
        return
    if isinstance(node, str):
        if is_file_ref(node):
            yield node, path, content_type
    elif isinstance(node, Mapping):
        ctype = node.get("content_type") if isinstance(node.get("content_type"), str) else None
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}", ctype, depth + 1)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]", content_type, depth + 1)


def shorten_data_uris(node: Any, depth: int = 0) -> Any:
    """The JSON with every data: URI replaced by its label."""
    if depth > MAX_DEPTH:
        return None
    if isinstance(node, str):
        return data_uri_label(node) if node[:5].lower() == "data:" else node
    if isinstance(node, Mapping):
        return {k: shorten_data_uris(v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [shorten_data_uris(v, depth + 1) for v in node]
    return node


def decode_data_uri(value: str) -> tuple[str, bytes]:
    """(media type, bytes) of a data: URI; ValueError when it is malformed."""
    uri = parse_data_uri(value)
    if uri is None:
        raise ValueError("not a data: URI")
    return uri.media_type, uri.decode()
