"""/v1/uploads: input files for jobs (`k4u://uploads/<id>` in any string of a job's input).

POST takes the file's bytes raw (its `Content-Type`, `?filename=`) or as the multipart field `file`.
The raw body streams into the store as it arrives; a multipart file is spooled by the form parser
(memory up to 1 MiB, then a temporary file) and then streamed in. Past K4U_MAX_UPLOAD_BYTES: 413,
nothing stored.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.deps import PLAIN_TEXT, Authed, RuntimeDep
from api.limits import BodyTooLarge
from models.errors import TooLarge
from models.refs import UPLOAD_ID
from models.schemas import UploadPublic, UploadsPublic
from workers.uploads import delete_upload, find_uploads, get_upload, store_upload

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], dependencies=[Authed])
UPLOAD_ID_PATTERN = f"^{UPLOAD_ID.pattern}$"
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}", re.I)
_CHUNK = 256 * 1024
_MULTIPART = "multipart/form-data"


def media_type(value: str | None) -> str:
    """A plain `type/subtype` (parameters dropped), else application/octet-stream."""
    media = (value or "").partition(";")[0].strip().lower()
    return media if _MEDIA_TYPE.fullmatch(media) else "application/octet-stream"


def clean_filename(value: str | None) -> str | None:
    """The name's last path part, without control characters, at most 255 characters."""
    if not value:
        return None
    name = PurePosixPath(value.replace("\\", "/")).name
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)[:255]
    return name or None


def _too_large(cap: int) -> JSONResponse:
    return JSONResponse(
        {"detail": f"the file is larger than the limit of {cap} bytes (K4U_MAX_UPLOAD_BYTES)", "limit_bytes": cap},
        status_code=413,
        headers={"connection": "close"},
    )


def _from_async(chunks: AsyncIterator[bytes]) -> Iterator[bytes]:
    """An async body read from a worker thread (the store's writer is synchronous)."""

    async def next_chunk() -> bytes:
        return await chunks.__anext__()

    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            return
        if chunk:
            yield chunk


def _from_file(upload: UploadFile) -> Iterator[bytes]:
    while chunk := upload.file.read(_CHUNK):
        yield chunk


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    responses={413: {"description": "Larger than K4U_MAX_UPLOAD_BYTES: nothing stored"}, 422: {}},
    openapi_extra={
        "requestBody": {
            "description": "The file's bytes, sent raw with their Content-Type, or as the multipart/form-data field `file`",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
                _MULTIPART: {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}, "required": ["file"]}},
            },
        }
    },
)
async def post_upload(
    request: Request,
    rt: RuntimeDep,
    filename: Annotated[
        str | None, Query(max_length=255, pattern=PLAIN_TEXT, description="The file's name (raw bodies; a multipart part names its own)")
    ] = None,
) -> Any:
    """Store one input file (streamed, sha256 and size computed on the way) and answer its reference,
    `k4u://uploads/<id>`, to put in any string of a job's `input`. The same bytes sent twice share one
    stored object. Removed after K4U_UPLOAD_TTL_S unless a job not yet submitted references it."""
    cap = rt.settings.max_upload_bytes
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.lower().startswith(_MULTIPART):
            form = await request.form(max_files=1, max_fields=10)
            try:
                part = form.get("file")
                if not isinstance(part, UploadFile):
                    raise HTTPException(422, [{"loc": ["body", "file"], "msg": "a multipart upload needs its file in the field `file`", "type": "missing"}])
                row = await run_in_threadpool(
                    store_upload, rt, _from_file(part), filename=clean_filename(part.filename or filename), content_type=media_type(part.content_type)
                )
            finally:
                await form.close()
        else:
            row = await run_in_threadpool(
                store_upload, rt, _from_async(request.stream().__aiter__()), filename=clean_filename(filename), content_type=media_type(content_type)
            )
    except (TooLarge, BodyTooLarge):
        return _too_large(cap)
    return UploadPublic.from_row(row)


@router.get("", response_model=UploadsPublic)
def list_by_sha256(
    rt: RuntimeDep,
    sha256: Annotated[str, Query(pattern=r"^[0-9a-f]{64}$", description="The file's sha256 (hex): its uploads that have not expired, newest first")],
) -> UploadsPublic:
    """The uploads of the same bytes, so a client can reuse one (`k4u batch` does, to stay idempotent)."""
    return UploadsPublic(items=[UploadPublic.from_row(r) for r in find_uploads(rt, sha256)])


UploadId = Annotated[str, Path(pattern=UPLOAD_ID_PATTERN, description="upl_ and 24 hex digits")]


@router.get("/{upload_id}", response_model=UploadPublic, responses={404: {}})
def get_one(upload_id: UploadId, rt: RuntimeDep) -> UploadPublic:
    """An upload: its reference, size, sha256 and expiry."""
    row = get_upload(rt, upload_id)
    if row is None:
        raise HTTPException(404, "no upload with that id")
    return UploadPublic.from_row(row)


@router.delete("/{upload_id}", status_code=204, responses={404: {}})
def delete_one(upload_id: UploadId, rt: RuntimeDep) -> Response:
    """Remove an upload now (its stored bytes once no other upload shares them). A job that references it
    and is not yet submitted then fails `invalid_input` when its turn comes."""
    if not delete_upload(rt, upload_id):
        raise HTTPException(404, "no upload with that id")
    return Response(status_code=204)
