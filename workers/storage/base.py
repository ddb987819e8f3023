"""The object store protocol and the URL-based factory.

Backends stream: `put_stream` consumes an iterator of byte chunks and never holds a whole
object in memory. It computes sha256 and size on the way, enforces `max_bytes` (TooLarge,
nothing left behind) and makes the object visible only once it is complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str
    content_type: str


class ObjectStore(Protocol):
    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        """Store the chunks under key (replacing any object there); atomic on success."""
        ...

    def open(self, key: str) -> Iterator[bytes]:
        """Stream an object's bytes; StorageError if it is missing."""
        ...

    def presign(self, key: str, expires_s: int) -> str | None:
        """A time-limited URL for the object, or None where the backend has none (local, memory)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def describe(self, key: str) -> str:
        """Where the object lives, for people: a file path or s3://bucket/key."""
        ...

    def remove_leftovers(self, before: datetime) -> int:
        """Remove what interrupted puts left behind (a worker killed mid-write): temp files last
        written, unfinished multipart uploads started, before `before`; never an object. How many."""
        ...


def open_store(url: str, *, s3_endpoint_url: str | None = None, s3_public_endpoint_url: str | None = None) -> ObjectStore:
    """Build the store for a K4U_STORAGE_URL: file://path, s3://bucket/prefix or memory://
    (an S3 store presigns for s3_public_endpoint_url when given)."""
    from models.errors import ConfigError

    if url.startswith("file://"):
        from workers.storage.local import LocalStore

        return LocalStore(url.removeprefix("file://"))
    if url.startswith("s3://"):
        from workers.storage.s3 import S3Store

        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigError("K4U_STORAGE_URL: s3:// URL names no bucket")
        return S3Store(bucket, prefix.strip("/"), endpoint_url=s3_endpoint_url, public_endpoint_url=s3_public_endpoint_url)
    if url.startswith("memory://"):
        from workers.storage.memory import MemoryStore

        return MemoryStore()
    raise ConfigError(f"K4U_STORAGE_URL: unsupported scheme in {url!r} (use file://, s3:// or memory://)")
