"""Result media served by the simulator: stable PNG/MP4 bytes and big blobs.

* `PNG_BYTES`: 64x64 RGB gradient, zlib "stored" blocks (no compressor
  involved, so the bytes never depend on the zlib version).
* `PNG_PREVIEW_BYTES`: 16x16 version, served as a Midjourney in-progress preview.
* `MP4_BYTES`: see `simulator.mp4`.
* `MP3_BYTES` / `MP3_STREAM_BYTES` (first 20 frames: a Suno clip while
  streaming) and `JPEG_BYTES`: see `simulator.codecs`.
* `iter_big(n)`: n deterministic bytes produced chunk by chunk; `iter_big_range(a, b)` a slice of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import zlib
from collections.abc import AsyncIterator, Iterator

from simulator.codecs import build_jpeg, build_mp3
from simulator.mp4 import build_mp4

PNG_SIZE = 64
CHUNK = 64 * 1024


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _zlib_stored(raw: bytes) -> bytes:
    """A zlib stream made of uncompressed (stored) deflate blocks."""
    out = bytearray(b"\x78\x01")
    pieces = [raw[i : i + 65535] for i in range(0, len(raw), 65535)] or [b""]
    for i, piece in enumerate(pieces):
        final = 1 if i == len(pieces) - 1 else 0
        out += struct.pack("<BHH", final, len(piece), 0xFFFF ^ len(piece)) + piece
    out += struct.pack(">I", zlib.adler32(raw))
    return bytes(out)


def build_png(size: int = PNG_SIZE) -> bytes:
    """Deterministic size x size RGB gradient PNG."""
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # filter type: none
        for x in range(size):
            rows += bytes((x * 255 // (size - 1), y * 255 // (size - 1), 128))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", _zlib_stored(bytes(rows))) + _png_chunk(b"IEND", b"")


PNG_BYTES = build_png()
PNG_PREVIEW_BYTES = build_png(16)
MP4_BYTES = build_mp4()
MP3_BYTES = build_mp3(50)
MP3_STREAM_BYTES = MP3_BYTES[: len(MP3_BYTES) * 2 // 5]  # 20 of 50 frames, still a valid MP3
JPEG_BYTES = build_jpeg()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


MEDIA_SHA256 = {
    "mp4": sha256_hex(MP4_BYTES),
    "png": sha256_hex(PNG_BYTES),
    "png_preview": sha256_hex(PNG_PREVIEW_BYTES),
    "mp3": sha256_hex(MP3_BYTES),
    "mp3_stream": sha256_hex(MP3_STREAM_BYTES),
    "jpg": sha256_hex(JPEG_BYTES),
}

_BASE_BLOCK = bytes((i * 131 + (i >> 8) * 7 + 13) & 0xFF for i in range(CHUNK))


def iter_big(n_bytes: int) -> Iterator[bytes]:
    """n deterministic bytes in 64 KiB chunks; chunk k is the base block rotated by k*7."""
    return iter_big_range(0, n_bytes)


def iter_big_range(start: int, stop: int) -> Iterator[bytes]:
    """Bytes [start, stop) of the `iter_big` stream, without producing the ones before `start`
    (a ranged download of a 1 GiB blob resumes at its offset in constant memory)."""
    pos = max(0, start)
    while pos < stop:
        k, offset = divmod(pos, CHUNK)
        r = (k * 7) % CHUNK
        block = _BASE_BLOCK[r:] + _BASE_BLOCK[:r]
        piece = block[offset : offset + min(CHUNK - offset, stop - pos)]
        pos += len(piece)
        yield piece


def big_sha256(n_bytes: int) -> str:
    """sha256 of what `GET /_sim/media/big/{n_bytes}.bin` serves."""
    digest = hashlib.sha256()
    for piece in iter_big(n_bytes):
        digest.update(piece)
    return digest.hexdigest()


async def trickle(data: bytes, total_s: float, pieces: int = 20) -> AsyncIterator[bytes]:
    """Yield `data` in ~`pieces` parts spread over about `total_s` seconds."""
    step = max(1, -(-len(data) // pieces))
    parts = [data[i : i + step] for i in range(0, len(data), step)]
    for part in parts:
        await asyncio.sleep(total_s / len(parts))
        yield part
