"""Tiny, valid, deterministic MP3 and JPEG files built from scratch (no encoder).

* `build_mp3(frames)`: MPEG-1 Layer III, 32 kHz, 64 kbit/s, mono, no CRC.
  Every frame is 288 bytes (144 * 64000 / 32000, no padding needed): a
  4-byte header, 17 bytes of side info that are all zero (part2_3_length 0,
  so no main data is read) and zero filler - i.e. digital silence, which
  every decoder accepts. 1152 samples per frame = 36 ms.
* `build_jpeg()`: 32x32 8-bit grayscale baseline JPEG (SOF0) made of 16
  flat 8x8 blocks forming a gradient. Only DC coefficients are non-zero, so
  the entropy coder needs the standard DC luminance Huffman table plus a
  one-symbol AC table (EOB).
"""

from __future__ import annotations

import struct

MP3_SAMPLE_RATE = 32_000
MP3_BITRATE = 64_000
MP3_SAMPLES_PER_FRAME = 1152
MP3_FRAME_BYTES = 144 * MP3_BITRATE // MP3_SAMPLE_RATE  # 288
# sync(11) | MPEG-1 (11) | Layer III (01) | no CRC (1); bitrate idx 0101 (64k) | 32 kHz (10) |
# no padding | private 0; mono (11) | mode ext 00 | copyright 0 | original 1 | emphasis 00.
MP3_HEADER = bytes((0xFF, 0xFB, 0x58, 0xC4))
MP3_SIDE_INFO_BYTES = 17  # MPEG-1 mono


def mp3_frame() -> bytes:
    """One silent MPEG-1 Layer III frame."""
    return MP3_HEADER + bytes(MP3_FRAME_BYTES - len(MP3_HEADER))


def build_mp3(frames: int = 50) -> bytes:
    """`frames` silent frames back to back (50 frames = 1.8 s)."""
    return mp3_frame() * frames


def mp3_duration_s(data: bytes) -> float:
    """Duration of a file made by `build_mp3`."""
    return len(data) // MP3_FRAME_BYTES * MP3_SAMPLES_PER_FRAME / MP3_SAMPLE_RATE


# -- JPEG ------------------------------------------------------------------------

JPEG_SIZE = 32
_QUANT = 16
# ITU T.81 Annex K.3 luminance DC table: code-length counts (lengths 1..16) and symbols.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALS = tuple(range(12))
# One-symbol AC table: only EOB (0x00), code "0" (1 bit).
_AC_BITS = (1,) + (0,) * 15
_AC_VALS = (0x00,)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


def _canonical_codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length) per T.81 Annex C."""
    codes: dict[int, tuple[int, int]] = {}
    code, k = 0, 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            codes[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


class _BitWriter:
    """MSB-first bit writer with JPEG 0xFF byte stuffing."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def write(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0x00)
                self.acc, self.n = 0, 0

    def flush(self) -> bytes:
        if self.n:
            self.write((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits
        return bytes(self.out)


def jpeg_block_levels(size: int = JPEG_SIZE) -> list[int]:
    """Quantised DC level of each 8x8 block, row-major (a left-right/top-down gradient)."""
    per_row = size // 8
    return [-48 + 6 * (bx + by * per_row) for by in range(per_row) for bx in range(per_row)]


def build_jpeg(size: int = JPEG_SIZE) -> bytes:
    """Deterministic size x size grayscale baseline JPEG (size must be a multiple of 8)."""
    dc_codes = _canonical_codes(_DC_BITS, _DC_VALS)
    ac_codes = _canonical_codes(_AC_BITS, _AC_VALS)
    bits = _BitWriter()
    previous = 0
    for level in jpeg_block_levels(size):
        diff, previous = level - previous, level
        category = abs(diff).bit_length()
        bits.write(*dc_codes[category])
        if category:
            bits.write(diff if diff > 0 else diff + (1 << category) - 1, category)
        bits.write(*ac_codes[0x00])  # EOB: all 63 AC coefficients are zero
    jfif = b"JFIF\x00" + struct.pack(">BBBHHBB", 1, 1, 0, 1, 1, 0, 0)
    dqt = bytes([0x00]) + bytes([_QUANT] * 64)
    sof = struct.pack(">BHHB", 8, size, size, 1) + bytes((1, 0x11, 0))
    dht = bytes([0x00, *_DC_BITS, *_DC_VALS]) + bytes([0x10, *_AC_BITS, *_AC_VALS])
    sos = bytes((1, 1, 0x00, 0, 63, 0))
    return (
        b"\xff\xd8" + _segment(0xE0, jfif) + _segment(0xDB, dqt) + _segment(0xC0, sof) + _segment(0xC4, dht) + _segment(0xDA, sos) + bits.flush() + b"\xff\xd9"
    )
