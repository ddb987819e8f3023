"""/v1/files/{token}: an upload's (or a stored asset's, for a pipeline's next job) bytes behind a signed, expiring link (workers.filelinks), for the
relay to fetch an input file from a local store. No bearer token (the link is the key; the open
API's loopback rule does not hold it either); 404 for a token that is not ours, 410 past its expiry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import RuntimeDep
from models.errors import StorageError
from workers import filelinks
from workers.references import linked_file

router = APIRouter(prefix="/v1/files", tags=["uploads"])
_SHOWN = ("image/", "video/", "audio/")  # types a fetcher may take inline; anything else is an attachment


@router.head("/{token}", include_in_schema=False)  # the same answer without the body (a fetcher's probe)
@router.get("/{token}", responses={200: {"content": {"application/octet-stream": {}}}, 404: {}, 410: {}})
async def get_file(token: Annotated[str, Path(max_length=200)], rt: RuntimeDep) -> StreamingResponse:
    """An uploaded input file, streamed with its stored content type (`X-Content-Type-Options: nosniff`)."""
    try:
        link = filelinks.verify(filelinks.link_key(rt.settings), token, rt.clock())
    except filelinks.ExpiredToken as exc:
        raise HTTPException(410, str(exc)) from None
    except filelinks.BadToken as exc:
        raise HTTPException(404, str(exc)) from None
    row = await run_in_threadpool(linked_file, rt, link.upload_id)
    if row is None:
        raise HTTPException(404, "this file was deleted")
    object_key, content_type, size = row
    try:
        body = await run_in_threadpool(rt.store.open, object_key)
    except StorageError as exc:
        raise HTTPException(404 if not exc.retryable else 503, "this file is not available") from None
    headers = {
        "Content-Length": str(size),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    }
    if not content_type.startswith(_SHOWN):
        headers["Content-Disposition"] = "attachment"
    return StreamingResponse(body, media_type=content_type, headers=headers)
