"""Recognise MP4/MOV videos from their box headers without reading the media data.

Only box headers and the ``moov`` metadata are read, through a ``read(offset, length)`` callable, so
a 99 MB file on object storage costs a handful of small range reads.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ReadAt = Callable[[int, int], bytes]

MOV_BRANDS = frozenset({"qt  "})
MP4_VIDEO_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42", "mp71",
     "avc1", "M4V ", "M4VH", "M4VP", "MSNV", "dash", "mmp4", "XAVC", "f4v "}
)  # fmt: skip
AUDIO_BRANDS = frozenset({"M4A ", "M4B ", "M4P ", "F4A ", "F4B "})
#: Boxes QuickTime or muxers may place before ``ftyp``.
_LEADING_BOXES = frozenset({"free", "skip", "wide", "pnot"})
_MAX_MOOV_BYTES = 64 * 1024 * 1024
#: Box types a message may name; any other four bytes are the file's content, which messages never show.
_KNOWN_BOXES = frozenset(
    {"ftyp", "moov", "mdat", "free", "skip", "wide", "pnot", "uuid", "mvhd", "trak", "tkhd", "mdia",
     "mdhd", "hdlr", "minf", "stbl", "udta", "meta", "moof", "mfra", "sidx", "styp", "edts", "mvex"}
)  # fmt: skip


def _box(kind: str) -> str:
    return f"{kind!r} box" if kind in _KNOWN_BOXES else "box of an unknown type"


def _brand(major: str) -> str:
    known = major in MOV_BRANDS | MP4_VIDEO_BRANDS | AUDIO_BRANDS
    return f"ftyp brand {major.strip()!r}" if known else "an unknown ftyp brand"


class NotAVideoError(ValueError):
    """The bytes are not an MP4 or MOV video; the message says what was found instead."""


@dataclass(frozen=True)
class MediaInfo:
    container: str  # "mp4" or "mov"
    major_brand: str
    duration_seconds: float | None
    width: int | None
    height: int | None

    def describe(self) -> str:
        duration = (
            f"{self.duration_seconds:.2f} s" if self.duration_seconds is not None else "unknown duration"
        )
        size = f"{self.width}x{self.height}" if self.width and self.height else "unknown resolution"
        return f"{self.container.upper()} ({self.major_brand.strip()}), {duration}, {size}"


def _iter_boxes(data_or_read: bytes | ReadAt, start: int, end: int) -> Iterator[tuple[str, int, int, int]]:
    """Yield ``(type, offset, header_size, box_size)`` for the boxes laid end to end in ``[start, end)``."""
    offset = start
    while offset + 8 <= end:
        if isinstance(data_or_read, bytes):
            header = data_or_read[offset : offset + 16]
        else:
            header = data_or_read(offset, min(16, end - offset))
        if len(header) < 8:
            raise NotAVideoError(f"the box header at byte {offset} is cut short")
        size, raw_type = struct.unpack(">I4s", header[:8])
        kind = raw_type.decode("latin-1")
        header_size = 8
        if size == 1:
            if len(header) < 16:
                raise NotAVideoError(f"the {_box(kind)} at byte {offset} has a cut-short 64-bit size")
            (size,) = struct.unpack(">Q", header[8:16])
            header_size = 16
        elif size == 0:
            size = end - offset
        if size < header_size or offset + size > end:
            raise NotAVideoError(
                f"the {_box(kind)} at byte {offset} claims {size} bytes but only {end - offset} remain "
                "(truncated file or not an MP4/MOV)"
            )
        yield kind, offset, header_size, size
        offset += size


def _container_from_ftyp(payload: bytes) -> tuple[str, str]:
    if len(payload) < 8:
        raise NotAVideoError("the ftyp box is too short to name a brand")
    major = payload[:4].decode("latin-1")
    compatible = {payload[i : i + 4].decode("latin-1") for i in range(8, len(payload) - 3, 4)}
    if major in MOV_BRANDS:
        return "mov", major
    if major in AUDIO_BRANDS:
        raise NotAVideoError(f"{_brand(major)} is an audio-only MPEG-4 file")
    if major in MP4_VIDEO_BRANDS or compatible & MP4_VIDEO_BRANDS:
        return "mp4", major
    raise NotAVideoError(f"{_brand(major)} is not an MP4 or MOV brand")


def _children(moov: bytes, start: int, end: int) -> dict[str, list[tuple[int, int]]]:
    found: dict[str, list[tuple[int, int]]] = {}
    for kind, offset, header_size, size in _iter_boxes(moov, start, end):
        found.setdefault(kind, []).append((offset + header_size, offset + size))
    return found


def _duration(moov: bytes, mvhd: tuple[int, int]) -> float | None:
    start, end = mvhd
    body = moov[start:end]
    if len(body) >= 32 and body[0] == 1:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    elif len(body) >= 20:
        timescale, duration = struct.unpack(">II", body[12:20])
    else:
        return None
    return duration / timescale if timescale else None


def _video_track_size(moov: bytes, traks: list[tuple[int, int]]) -> tuple[int, int] | None:
    """Width and height of the first track whose handler is ``vide``, or None when there is none."""
    for start, end in traks:
        trak = _children(moov, start, end)
        mdia = trak.get("mdia")
        if not mdia or "tkhd" not in trak:
            continue
        hdlr = _children(moov, *mdia[0]).get("hdlr")
        if not hdlr or moov[hdlr[0][0] + 8 : hdlr[0][0] + 12] != b"vide":
            continue
        tkhd_start, tkhd_end = trak["tkhd"][0]
        if tkhd_end - tkhd_start < 8:
            return 0, 0
        width, height = struct.unpack(">II", moov[tkhd_end - 8 : tkhd_end])
        return width >> 16, height >> 16
    return None


def probe_media(read: ReadAt, size: int, name: str = "the source") -> MediaInfo:
    """Identify an MP4/MOV video by its ``ftyp`` box and read duration and resolution from ``moov``.

    Raises :class:`NotAVideoError` naming ``name`` when the bytes are not such a video.
    """
    container: tuple[str, str] | None = None
    moov: bytes | None = None
    try:
        for kind, offset, header_size, box_size in _iter_boxes(read, 0, size):
            if container is None:
                if kind == "ftyp":
                    container = _container_from_ftyp(
                        read(offset + header_size, min(box_size - header_size, 256))
                    )
                    continue
                if kind in _LEADING_BOXES:
                    continue
                raise NotAVideoError(f"no ftyp box before the {_box(kind)}")
            if kind == "moov":
                if box_size > _MAX_MOOV_BYTES:
                    raise NotAVideoError(
                        f"the moov box is {box_size} bytes, larger than any real video index"
                    )
                moov = read(offset, box_size)
                break
    except NotAVideoError as exc:
        raise NotAVideoError(f"{name} is not an MP4/MOV video: {exc}") from None
    if container is None:
        raise NotAVideoError(f"{name} is not an MP4/MOV video: it has no ftyp box")
    if moov is None:
        raise NotAVideoError(f"{name} is not a complete MP4/MOV video: it has no moov box (truncated?)")
    top = _children(moov, 8 if moov[:4] != b"\x00\x00\x00\x01" else 16, len(moov))
    size_wh = _video_track_size(moov, top.get("trak", []))
    if size_wh is None:
        raise NotAVideoError(f"{name} has no video track")
    duration = _duration(moov, top["mvhd"][0]) if "mvhd" in top else None
    width, height = size_wh
    return MediaInfo(container[0], container[1], duration, width or None, height or None)


def probe_file(path: str | Path) -> MediaInfo:
    """:func:`probe_media` for a local file."""
    file_path = Path(path)
    with file_path.open("rb") as handle:

        def read(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)

        return probe_media(read, file_path.stat().st_size, name=str(file_path))
