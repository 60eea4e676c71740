"""Synthetic MP4 files of any exact size, for tests, benchmarks and catalog demos.

The file is a well-formed ISO-BMFF container (``ftyp``, ``moov`` with one video track, ``mdat``);
the media data is seeded pseudo-random bytes, so every block differs and two seeds give two contents.
It is not playable, which is all an upload pipeline needs: real players are not part of the test.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

_UNITY_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)
_CHUNK = 1024 * 1024


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _header_boxes(duration_seconds: float, width: int, height: int) -> tuple[bytes, bytes]:
    timescale = 1000
    duration = round(duration_seconds * timescale)
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    mvhd = _box(
        b"mvhd",
        struct.pack(">IIIIIIH", 0, 0, 0, timescale, duration, 0x00010000, 0x0100)
        + bytes(10) + _UNITY_MATRIX + bytes(24) + struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _box(
        b"tkhd",
        struct.pack(">IIIIII", 0x00000003, 0, 0, 1, 0, duration)
        + bytes(8) + struct.pack(">hhhH", 0, 0, 0, 0) + _UNITY_MATRIX
        + struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _box(b"mdhd", struct.pack(">IIIIIHH", 0, 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _box(b"hdlr", struct.pack(">II4s", 0, 0, b"vide") + bytes(12) + b"VideoHandler\x00")
    moov = _box(b"moov", mvhd + _box(b"trak", tkhd + _box(b"mdia", mdhd + hdlr)))
    return ftyp, moov


def write_sample_mp4(
    path: str | Path,
    size: int,
    *,
    seed: int = 0,
    duration_seconds: float = 5.0,
    width: int = 640,
    height: int = 360,
    moov_at_end: bool = False,
) -> Path:
    """Write an MP4 of exactly ``size`` bytes and return its path; memory use stays at one 1 MiB chunk."""
    ftyp, moov = _header_boxes(duration_seconds, width, height)
    media_bytes = size - len(ftyp) - len(moov) - 8
    if media_bytes < 0:
        raise ValueError(f"an MP4 needs at least {size - media_bytes} bytes, {size} asked")
    target = Path(path)
    rng = random.Random(seed)
    with target.open("wb") as out:
        out.write(ftyp)
        if not moov_at_end:
            out.write(moov)
        out.write(struct.pack(">I4s", 8 + media_bytes, b"mdat"))
        remaining = media_bytes
        while remaining:
            step = min(_CHUNK, remaining)
            out.write(rng.randbytes(step))
            remaining -= step
        if moov_at_end:
            out.write(moov)
    return target
