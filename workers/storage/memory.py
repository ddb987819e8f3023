"""An in-process object store for service tests (memory://).

It follows the same contract as the real backends: the object appears only once the whole
stream has arrived, TooLarge is raised as soon as `max_bytes` is exceeded, and a failed put
leaves nothing (or the previous object) behind. It necessarily holds objects in memory.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from models.errors import StorageError, TooLarge
from workers.storage.base import StoredObject

_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class _Entry:
    data: bytes
    content_type: str


class MemoryStore:
    """Objects in a dict, guarded by a lock so threads may share one store."""

    def __init__(self) -> None:
        self._objects: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        _check_key(key)
        buf = bytearray()
        digest = hashlib.sha256()
        it = iter(chunks)
        for chunk in it:  # exceptions from the iterator propagate untouched
            if len(buf) + len(chunk) > max_bytes:
                close = getattr(it, "close", None)
                if callable(close):
                    close()
                raise TooLarge(f"object {key!r} exceeds {max_bytes} bytes")
            digest.update(chunk)
            buf += chunk
        with self._lock:
            self._objects[key] = _Entry(bytes(buf), content_type)
        return StoredObject(key=key, size=len(buf), sha256=digest.hexdigest(), content_type=content_type)

    def open(self, key: str) -> Iterator[bytes]:
        entry = self._get(key)
        return (entry.data[i : i + _READ_CHUNK] for i in range(0, len(entry.data), _READ_CHUNK))

    def presign(self, key: str, expires_s: int) -> str | None:
        _check_key(key)
        return None

    def exists(self, key: str) -> bool:
        _check_key(key)
        with self._lock:
            return key in self._objects

    def delete(self, key: str) -> None:
        _check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def describe(self, key: str) -> str:
        _check_key(key)
        return f"memory://{key}"

    def remove_leftovers(self, before: datetime) -> int:
        return 0  # a put holds its bytes in its own frame: nothing outlives it

    def keys(self) -> list[str]:
        """All stored keys, sorted (for tests)."""
        with self._lock:
            return sorted(self._objects)

    def content_type(self, key: str) -> str:
        """The content type an object was stored with (for tests)."""
        return self._get(key).content_type

    def _get(self, key: str) -> _Entry:
        _check_key(key)
        with self._lock:
            entry = self._objects.get(key)
        if entry is None:
            raise StorageError(f"object not found: {key}", retryable=False)
        return entry


def _check_key(key: str) -> None:
    if not key:
        raise StorageError("invalid object key: ''", retryable=False)
