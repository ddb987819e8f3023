"""S3 (and S3-compatible) object store.

`put_stream` hands boto3's managed transfer (`upload_fileobj`) a small read-only file-like
object that pulls from the chunk iterator on demand, hashing and counting as boto reads.
Objects under 8 MiB go up in one PutObject; larger ones go multipart in 8 MiB parts, with at
most `_IN_MEMORY_PARTS` parts waiting or uploading plus the one being read, so memory does
not grow with the object (~34 MiB traced peak for an 80 MiB upload).

If the reader raises (TooLarge, or whatever the chunk iterator raised), s3transfer aborts
the multipart upload before `upload_fileobj` returns, and nothing appears under the key:
S3 only creates an object when a PutObject or CompleteMultipartUpload succeeds. The upload
therefore targets the final key directly; a failed replacement leaves the previous object
untouched.

Note that s3transfer calls `read()` from its own submission thread, so the chunk iterator
is consumed there (sequentially, never concurrently).

A worker killed mid-upload leaves its multipart upload open (parts stored and billed, no object):
`remove_leftovers` aborts those under our prefix once the maintenance grace has passed.

botocore errors become StorageError with a message built here (operation, location,
S3 error code, HTTP status) so credentials never reach it.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ParamValidationError

from models.errors import StorageError, TooLarge
from workers.storage.base import StoredObject

MiB = 1024 * 1024
_PART_SIZE = 8 * MiB
_IN_MEMORY_PARTS = 2
_READ_CHUNK = 1 * MiB
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}


class _ChunkReader:
    """A non-seekable file-like view of a chunk iterator that hashes, counts and caps.

    It buffers at most the unread tail of one source chunk beyond what `read` returns.
    Whatever stops the stream (TooLarge, the iterator's own exception) is kept in `error`
    and raised again on any later read.
    """

    def __init__(self, chunks: Iterable[bytes], key: str, max_bytes: int) -> None:
        self._it = iter(chunks)
        self._key = key
        self._max_bytes = max_bytes
        self._pending = memoryview(b"")
        self._digest = hashlib.sha256()
        self.size = 0
        self.eof = False
        self.error: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        if self.error is not None:
            raise self.error
        limit = -1 if size is None or size < 0 else size
        out: list[bytes | memoryview] = []
        have = 0
        while limit < 0 or have < limit:
            if self._pending:
                piece, self._pending = self._pending, memoryview(b"")
            else:
                chunk = None if self.eof else self._next()
                if chunk is None:
                    break
                piece = memoryview(chunk)
            if 0 <= limit < have + len(piece):  # keep the tail (a view, not a copy) for later
                piece, self._pending = piece[: limit - have], piece[limit - have :]
            out.append(piece)
            have += len(piece)
        return b"".join(out)

    def _next(self) -> bytes | None:
        try:
            chunk = bytes(next(self._it))
        except StopIteration:
            self.eof = True
            return None
        except BaseException as exc:
            self.error = exc
            raise
        self.size += len(chunk)
        if self.size > self._max_bytes:
            self.error = TooLarge(f"object {self._key!r} exceeds {self._max_bytes} bytes")
            raise self.error
        self._digest.update(chunk)
        return chunk

    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        self._pending = memoryview(b"")

    def close_source(self) -> None:
        """Close an abandoned source (a generator holding a download) right away, not at GC."""
        close = getattr(self._it, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


class S3Store:
    """Objects under `s3://bucket/prefix/`. The bucket must already exist.

    `public_endpoint_url` is where clients outside our network reach the same server (the compose
    stack's MinIO is `http://minio:9000` inside): presigned URLs are signed by a client configured
    for it, since a SigV4 signature covers the host. Unset, they name `endpoint_url`.
    """

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None, public_endpoint_url: str | None = None) -> None:
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        session = boto3.session.Session()
        self._client = _client(session, endpoint_url)
        self._presigner = _client(session, public_endpoint_url) if public_endpoint_url else self._client
        self._transfer = TransferConfig(
            multipart_threshold=_PART_SIZE,
            multipart_chunksize=_PART_SIZE,
            max_concurrency=_IN_MEMORY_PARTS,
            preferred_transfer_client="classic",
        )
        # Upper bound on parts read from a non-seekable source but not yet uploaded.
        self._transfer.max_in_memory_upload_chunks = _IN_MEMORY_PARTS

    @property
    def bucket(self) -> str:
        return self._bucket

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        full = self._full_key(key)
        reader = _ChunkReader(chunks, key, max_bytes)
        try:
            self._client.upload_fileobj(reader, self._bucket, full, ExtraArgs={"ContentType": content_type}, Config=self._transfer)
        except BaseException as exc:
            reader.close_source()
            if reader.error is None:
                if isinstance(exc, (ClientError, BotoCoreError, Boto3Error)):
                    raise self._error("put", key, exc) from exc
                raise
            if exc is reader.error:
                raise
            raise reader.error from exc  # the source's own exception, whatever boto wrapped it in
        if not reader.eof:  # cannot happen with s3transfer, which reads to EOF
            raise StorageError(f"s3 put for {self.describe(key)} ended before the stream did")
        return StoredObject(key=key, size=reader.size, sha256=reader.sha256(), content_type=content_type)

    def open(self, key: str) -> Iterator[bytes]:
        try:
            body = self._client.get_object(Bucket=self._bucket, Key=self._full_key(key))["Body"]
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in _NOT_FOUND:
                raise StorageError(f"object not found: {key}", retryable=False) from exc
            raise self._error("get", key, exc) from exc
        return self._iter_body(body, key)

    def _iter_body(self, body: object, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(chunk_size=_READ_CHUNK)  # type: ignore[attr-defined]
        except (ClientError, BotoCoreError) as exc:
            raise self._error("read", key, exc) from exc
        finally:
            body.close()  # type: ignore[attr-defined]

    def presign(self, key: str, expires_s: int) -> str | None:
        # An attachment, whatever the stored type: a provider's HTML or SVG never renders from the bucket's origin.
        params = {"Bucket": self._bucket, "Key": self._full_key(key), "ResponseContentDisposition": "attachment"}
        try:
            url: str = self._presigner.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        except (ClientError, BotoCoreError) as exc:
            raise self._error("presign", key, exc) from exc
        return url

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self._bucket, Key=self._full_key(key))
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise self._error("head", key, exc) from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self._bucket, Key=self._full_key(key))
        except (ClientError, BotoCoreError) as exc:
            if _code(exc) not in _NOT_FOUND:
                raise self._error("delete", key, exc) from exc

    def describe(self, key: str) -> str:
        return f"s3://{self._bucket}/{self._full_key(key)}"

    def remove_leftovers(self, before: datetime) -> int:
        """Abort the multipart uploads under our prefix initiated before `before` (a worker killed
        mid-upload never completed nor aborted them; S3 keeps and bills their parts until then)."""
        prefix = f"{self._prefix}/" if self._prefix else ""
        removed = 0
        try:
            for page in self._client.get_paginator("list_multipart_uploads").paginate(Bucket=self._bucket, Prefix=prefix):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < before:
                        self._client.abort_multipart_upload(Bucket=self._bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                        removed += 1
        except (ClientError, BotoCoreError) as exc:
            raise self._error("cleanup", "", exc, where=f"s3://{self._bucket}/{prefix}") from exc
        return removed

    def _full_key(self, key: str) -> str:
        if not key:
            raise StorageError("invalid object key: ''", retryable=False)
        return f"{self._prefix}/{key}" if self._prefix else key

    def _error(self, op: str, key: str, exc: BaseException, *, where: str | None = None) -> StorageError:
        """A StorageError naming the operation and place (the key's, or `where`); never the error's own text."""
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            detail = f"{_code(exc)} (HTTP {status})"
            retryable = status is None or status >= 500 or status in (408, 429)
        else:
            detail = type(exc).__name__
            retryable = not isinstance(exc, (NoCredentialsError, ParamValidationError))
        return StorageError(f"s3 {op} failed for {where or self.describe(key)}: {detail}", retryable=retryable)


def _client(session: boto3.session.Session, endpoint_url: str | None) -> Any:
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return session.client("s3", endpoint_url=endpoint_url, region_name=session.region_name or "us-east-1", config=config)


def _code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "unknown"))
    return ""
