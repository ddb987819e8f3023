"""Object storage backends: local directory, S3-compatible, memory (tests), and the URL-based
factory. The factory lives here, above the backends, which import only `base`."""

from __future__ import annotations

from workers.storage.base import ObjectStore, StoredObject

__all__ = ["ObjectStore", "StoredObject", "open_store"]


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
