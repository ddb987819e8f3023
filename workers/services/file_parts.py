"""Files a submit uploads from URLs: a multipart FilePart that names a `source_url` is fetched by us
before the paid POST leaves, through the result fetcher (SSRF-guarded: private, loopback and
link-local addresses refused at every redirect unless K4U_ALLOW_PRIVATE_URLS; never with the relay
key), at most the part's `max_bytes`, and sent as its bytes. Nothing is sent to the relay, and
nothing is paid, until every file is in hand."""

from __future__ import annotations

import mimetypes
from dataclasses import replace
from urllib.parse import urlsplit

from models.errors import DownloadFailed, ErrorCode
from providers.base import FilePart, HttpRequest
from workers.context import Runtime
from workers.relay import Download


def fetch_parts(rt: Runtime, req: HttpRequest) -> HttpRequest:
    """The request with every URL-named file part fetched; DownloadFailed (retryable or not) naming the URL."""
    if not any(f.source_url for f in req.files):
        return req
    return replace(req, files=[_fetched(rt, f) if f.source_url else f for f in req.files])


def _fetched(rt: Runtime, part: FilePart) -> FilePart:
    url = part.source_url or ""

    def read(dl: Download) -> tuple[str, bytes]:
        if dl.length is not None and dl.length > part.max_bytes:
            raise DownloadFailed(f"it is {dl.length} bytes, over the {part.max_bytes} allowed", code=ErrorCode.TOO_LARGE, retryable=False)
        data, n = [], 0
        for chunk in dl.chunks:
            n += len(chunk)
            if n > part.max_bytes:
                raise DownloadFailed(f"it is over the {part.max_bytes} bytes allowed", code=ErrorCode.TOO_LARGE, retryable=False)
            data.append(chunk)
        return dl.content_type, b"".join(data)

    try:
        ctype, data = rt.fetcher.fetch(url, read)
    except DownloadFailed as exc:
        raise DownloadFailed(f"could not fetch {part.field} from {_shown(url)}: {exc.message}", code=exc.code, retryable=exc.retryable) from None
    if ctype == "application/octet-stream":
        ctype = mimetypes.guess_type(urlsplit(url).path)[0] or part.content_type or ctype
    return replace(part, content_type=ctype or part.content_type, data=data, source_url=None)


def _shown(url: str) -> str:
    """The URL without its query (a signed URL's token stays out of job errors and logs)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"[:300]  # no user:password@ either
