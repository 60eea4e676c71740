"""Sources: local paths and ``file://`` read directly, ``s3://``, ``gs://``, ``http(s)://`` through Airflow's
``ObjectStoragePath``.

Every read is a byte range, so memory follows the block size, never the file size. Local files are read
with ``os.pread`` and never load fsspec: a chunk task that only reads a local file starts faster.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from media_upload.transfer.errors import SourceError
from media_upload.transfer.media import MediaInfo, NotAVideoError, probe_media

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = [
    "SourceError",
    "SourceInfo",
    "inspect_source",
    "read_range",
    "sha256_of",
    "source_path",
    "source_size",
]

_HEADER_READ = 64 * 1024
_HASH_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class SourceInfo:
    uri: str
    name: str
    size: int
    media: MediaInfo


def _local(source: str) -> str | None:
    """The absolute local path of ``source``, or None when it is a URL of another filesystem."""
    text = str(source).strip()
    if not text:
        raise SourceError("no source given: expected a local path or a URL")
    if text.startswith("file://"):
        return unquote(urlsplit(text).path)
    if "://" in text:
        return None
    return os.path.abspath(os.path.expanduser(text))


def source_path(source: str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for a URL, or for a local path (``~`` expanded, made absolute)."""
    from airflow.sdk import ObjectStoragePath

    local = _local(source)
    if local is not None:
        return ObjectStoragePath(local)
    try:
        return ObjectStoragePath(str(source).strip())
    except ValueError as exc:  # fsspec knows no filesystem for the scheme
        raise SourceError(
            f"{source}: {exc}; expected a local path or a file://, s3://, gs:// or http(s):// URL"
        ) from None


def source_name(source: str) -> str:
    """The file name a platform is told about: the last segment of the path, without a query."""
    return PurePosixPath(urlsplit(str(source)).path).name or "video.mp4"


def source_size(source: str) -> int:
    """The size in bytes; :class:`SourceError` naming the source when it is missing or unreachable."""
    local = _local(source)
    try:
        if local is not None:
            if not os.path.isfile(local):
                raise SourceError(f"{source}: no such file")
            return os.stat(local).st_size
        path = source_path(source)
        if not path.exists() or path.is_dir():
            raise SourceError(f"{source}: no such file")
        return int(path.stat().st_size)
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{source}: cannot be reached ({type(exc).__name__}: {exc})") from None


def read_range(source: str, offset: int, length: int) -> bytes:
    """Exactly ``length`` bytes at ``offset``; a short read means the source changed or was truncated."""
    local = _local(source)
    if local is not None:
        descriptor = os.open(local, os.O_RDONLY)
        try:
            data = os.pread(descriptor, length, offset)
        finally:
            os.close(descriptor)
    else:
        with source_path(source).open("rb", block_size=max(length, 1)) as handle:
            handle.seek(offset)
            data = handle.read(length)
    if len(data) != length:
        raise SourceError(
            f"{source}: expected {length} bytes at offset {offset} but read {len(data)}; "
            "the file changed or was truncated since the upload was planned"
        )
    return data


def inspect_source(source: str, *, max_bytes: int, platform: str) -> SourceInfo:
    """Check that ``source`` exists, holds 1 to ``max_bytes - 1`` bytes and is an MP4/MOV video.

    Reads only box headers; raises :class:`SourceError` with a message naming the file and the limit.
    """
    size = source_size(source)
    if size == 0:
        raise SourceError(f"{source} is empty (0 bytes); {platform} needs 1 to {max_bytes - 1:,} bytes")
    if size >= max_bytes:
        raise SourceError(
            f"{source} is {size:,} bytes; {platform} takes files under {max_bytes:,} bytes "
            f"(at most {max_bytes - 1:,})"
        )

    local = _local(source)
    try:
        if local is not None:
            media = probe_media(
                lambda offset, length: read_range(local, offset, min(length, size - offset)),
                size,
                name=str(source),
            )
        else:
            with source_path(source).open("rb", block_size=_HEADER_READ) as handle:  # one handle, small reads

                def read(offset: int, length: int) -> bytes:
                    handle.seek(offset)
                    return bytes(handle.read(length))

                media = probe_media(read, size, name=str(source))
    except NotAVideoError as exc:
        raise SourceError(str(exc)) from None
    uri = local if local is not None else str(source).strip()
    return SourceInfo(uri, source_name(uri), size, media)


def file_digests(source: str, *algorithms: str) -> dict[str, Any]:
    """``hashlib`` digests of the whole source, all from one read in 4 MiB ranges."""
    digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
    size, offset = source_size(source), 0
    while offset < size:
        length = min(_HASH_CHUNK, size - offset)
        data = read_range(source, offset, length)
        for digest in digests.values():
            digest.update(data)
        offset += length
    return digests


def sha256_of(source: str) -> str:
    """The content hash the upload ledger is keyed by."""
    return str(file_digests(source, "sha256")["sha256"].hexdigest())
