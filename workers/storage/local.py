"""A directory of files as an object store.

Objects live at `<root>/<key>`. `put_stream` writes to a uniquely named temp file in the
object's own directory, fsyncs it and `os.replace`s it over the final name, so readers see
either the old object or the complete new one. On any failure (TooLarge, an exception from
the chunk iterator, an OS error) the temp file and any directories this call created are
removed again. Keys that would escape the root (`..`, absolute paths, symlinks pointing
outside) are rejected with StorageError. A temp file outlives its put only when the process dies
mid-write (SIGKILL, OOM): `remove_leftovers` removes those once the maintenance grace has passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path, PurePosixPath

from models.errors import ConfigError, StorageError, TooLarge
from workers.storage.base import StoredObject

_READ_CHUNK = 256 * 1024
_TMP_PREFIX = ".k4u-tmp-"
_WALK_DEPTH = 8  # directories below the root that remove_leftovers searches


class LocalStore:
    """Objects as files under `root` (resolved to an absolute path; created lazily)."""

    def __init__(self, root: str) -> None:
        if not root:
            raise ConfigError("K4U_STORAGE_URL: file:// URL names no directory")
        self._root = Path(root).expanduser().resolve()

    @property
    def root(self) -> Path:
        return self._root

    # -- writing -------------------------------------------------------------------------

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str, max_bytes: int) -> StoredObject:
        path = self._path(key)
        it = iter(chunks)
        try:
            created, tmp, fd = self._open_temp(path.parent, key)
        except BaseException:
            _close(it)
            raise
        digest = hashlib.sha256()
        size = 0
        f = os.fdopen(fd, "wb")
        try:
            for chunk in it:  # exceptions from the iterator propagate untouched
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(f"object {key!r} exceeds {max_bytes} bytes")
                digest.update(chunk)
                try:
                    f.write(chunk)
                except OSError as exc:
                    raise _error("write", key, exc) from exc
            try:
                f.flush()
                os.fsync(f.fileno())
                f.close()
                os.replace(tmp, path)
            except OSError as exc:
                raise _error("write", key, exc) from exc
        except BaseException:
            with contextlib.suppress(OSError):
                f.close()
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            _prune(created)
            _close(it)
            raise
        _fsync_dir(path.parent)
        return StoredObject(key=key, size=size, sha256=digest.hexdigest(), content_type=content_type)

    def _open_temp(self, parent: Path, key: str) -> tuple[list[Path], Path, int]:
        """Create parent dirs as needed and an exclusive temp file in `parent`.

        Returns the directories this call created (for cleanup), the temp path and its fd.
        Retried a few times because a concurrent failed writer may prune a directory we
        just saw.
        """
        for attempt in range(3):
            try:
                created = _makedirs(parent, self._root)
                tmp = parent / f"{_TMP_PREFIX}{secrets.token_hex(8)}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                return created, tmp, fd
            except FileNotFoundError as exc:
                if attempt == 2:
                    raise _error("create", key, exc) from exc
            except OSError as exc:
                raise _error("create", key, exc) from exc
        raise AssertionError("unreachable")

    # -- reading and the rest ------------------------------------------------------------

    def open(self, key: str) -> Iterator[bytes]:
        path = self._path(key)
        if not path.is_file():
            raise StorageError(f"object not found: {key}", retryable=False)
        return self._read(path, key)

    @staticmethod
    def _read(path: Path, key: str) -> Iterator[bytes]:
        try:
            with path.open("rb") as f:
                while chunk := f.read(_READ_CHUNK):
                    yield chunk
        except FileNotFoundError:
            raise StorageError(f"object not found: {key}", retryable=False) from None
        except OSError as exc:
            raise _error("read", key, exc) from exc

    def presign(self, key: str, expires_s: int) -> str | None:
        self._path(key)
        return None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise _error("delete", key, exc) from exc

    def describe(self, key: str) -> str:
        return str(self._path(key))

    def remove_leftovers(self, before: datetime) -> int:
        """Temp files (`.k4u-tmp-*`, a name no key may have) last written before `before`. The walk
        follows no symlink and goes at most _WALK_DEPTH directories down (keys are `<job_id>/<index><ext>`)."""
        cutoff, removed = before.timestamp(), 0
        for directory, subdirs, files in os.walk(self._root):  # a root never written to yields nothing
            if len(Path(directory).relative_to(self._root).parts) >= _WALK_DEPTH:
                subdirs.clear()
            for name in files:
                path = Path(directory, name)
                try:
                    if name.startswith(_TMP_PREFIX) and _is_stale_file(path, cutoff):
                        path.unlink()
                        removed += 1
                except FileNotFoundError:  # renamed into place or removed meanwhile
                    continue
                except OSError as exc:
                    raise StorageError(f"local cleanup failed for {path}: {exc.strerror or type(exc).__name__}") from exc
        return removed

    def _path(self, key: str) -> Path:
        """The file for `key`, or StorageError when the key is unusable or escapes the root."""
        if not key or "\x00" in key or "\\" in key or key.startswith("/"):
            raise StorageError(f"invalid object key: {key!r}", retryable=False)
        parts = PurePosixPath(key).parts
        if not parts or ".." in parts or parts[-1].startswith(_TMP_PREFIX):
            raise StorageError(f"invalid object key: {key!r}", retryable=False)
        path = self._root.joinpath(*parts)
        if not path.resolve().is_relative_to(self._root):
            raise StorageError(f"object key escapes the store root: {key!r}", retryable=False)
        return path


def _is_stale_file(path: Path, cutoff: float) -> bool:
    """A regular file (a symlink is not followed) last modified before `cutoff` (a POSIX time)."""
    st = path.lstat()
    return stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff


def _makedirs(directory: Path, root: Path) -> list[Path]:
    """mkdir -p `directory`; return the directories created here, outermost first (root excluded)."""
    missing: list[Path] = []
    d = directory
    while not d.is_dir():
        missing.append(d)
        if d.parent == d:
            break
        d = d.parent
    created: list[Path] = []
    for d in reversed(missing):
        try:
            d.mkdir()
        except FileExistsError:
            continue
        if d != root:
            created.append(d)
    return created


def _prune(created: list[Path]) -> None:
    """Remove directories a failed put created, innermost first, if still empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            return


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort (not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _close(it: Iterator[bytes]) -> None:
    """Close an abandoned source (a generator holding a download) right away, not at GC."""
    close = getattr(it, "close", None)
    if callable(close):
        with contextlib.suppress(Exception):
            close()


def _error(op: str, key: str, exc: OSError) -> StorageError:
    return StorageError(f"local {op} failed for {key!r}: {exc.strerror or type(exc).__name__}")
