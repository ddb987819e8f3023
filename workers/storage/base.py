"""The object store protocol.

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
