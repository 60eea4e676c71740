"""MP4/MOV recognition from box headers, and the synthetic sample writer it is tested with."""

from __future__ import annotations

import struct

import pytest

from media_upload.sandbox.sample_media import write_sample_mp4
from media_upload.transfer.media import NotAVideoError, probe_file, probe_media


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


@pytest.mark.parametrize("moov_at_end", [False, True])
def test_sample_is_recognised_with_duration_and_resolution(tmp_path, moov_at_end):
    path = write_sample_mp4(
        tmp_path / "a.mp4", 50_000, duration_seconds=7.5, width=1280, height=720, moov_at_end=moov_at_end
    )
    assert path.stat().st_size == 50_000
    info = probe_file(path)
    assert (info.container, info.major_brand, info.duration_seconds, info.width, info.height) == (
        "mp4",
        "isom",
        7.5,
        1280,
        720,
    )
    assert info.describe() == "MP4 (isom), 7.50 s, 1280x720"


def test_probe_reads_only_headers(tmp_path):
    path = write_sample_mp4(tmp_path / "big.mp4", 5_000_000, moov_at_end=True)
    data = path.read_bytes()
    reads: list[tuple[int, int]] = []

    def read(offset: int, length: int) -> bytes:
        reads.append((offset, length))
        return data[offset : offset + length]

    probe_media(read, len(data))
    assert sum(length for _, length in reads) < 2_000


def test_seeds_give_different_contents(tmp_path):
    one = write_sample_mp4(tmp_path / "1.mp4", 10_000, seed=1).read_bytes()
    two = write_sample_mp4(tmp_path / "2.mp4", 10_000, seed=2).read_bytes()
    assert one != two and one[:200] == two[:200]


def test_too_small_sample_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least"):
        write_sample_mp4(tmp_path / "x.mp4", 100)


def _probe_bytes(data: bytes):
    return probe_media(lambda offset, length: data[offset : offset + length], len(data), name="clip.mp4")


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"hello world, not a video at all", "not an MP4/MOV video"),
        (box(b"ftyp", b"M4A " + bytes(4) + b"M4A isom") + box(b"moov"), "audio-only"),
        (box(b"ftyp", b"3gp5" + bytes(4) + b"3gp5"), "not an MP4 or MOV brand"),
        (box(b"ftyp", b"isom" + bytes(4) + b"isom") + box(b"mdat", bytes(10)), "no moov box"),
        (
            box(b"ftyp", b"isom" + bytes(4) + b"isom") + struct.pack(">I4s", 1000, b"mdat") + bytes(10),
            "truncated",
        ),
        (box(b"mdat", bytes(10)), "no ftyp box before"),
        (
            box(b"ftyp", b"isom" + bytes(4) + b"isom") + box(b"moov", box(b"mvhd", bytes(100))),
            "no video track",
        ),
    ],
)
def test_what_is_not_a_video(data, fragment):
    with pytest.raises(NotAVideoError, match=fragment) as refused:
        _probe_bytes(data)
    assert "clip.mp4" in str(refused.value)


def test_quicktime_mov_is_recognised(tmp_path):
    path = write_sample_mp4(tmp_path / "a.mov", 10_000)
    data = bytearray(path.read_bytes())
    data[8:12] = b"qt  "
    info = _probe_bytes(bytes(box(b"wide") + data))
    assert info.container == "mov"
