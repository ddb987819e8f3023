"""Object storage backends: local directory, S3-compatible, memory (tests)."""

from workers.storage.base import ObjectStore, StoredObject, open_store

__all__ = ["ObjectStore", "StoredObject", "open_store"]
