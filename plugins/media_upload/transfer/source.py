"""Sources as Airflow's ``ObjectStoragePath``: local paths, ``file://``, ``s3://``, ``gs://``, ``http(s)://``.

Every read is a byte range, so memory follows the block size, never the file size.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from media_upload.transfer.media import MediaInfo, NotAVideoError, probe_media

_HEADER_READ = 64 * 1024
_HASH_CHUNK = 4 * 1024 * 1024


class SourceError(ValueError):
    """The source cannot be uploaded as it is; the message names it, the value and the limit."""


@dataclass(frozen=True)
class SourceInfo:
    uri: str
    name: str
    size: int
    media: MediaInfo


def source_path(source: str) -> ObjectStoragePath:
    """An ``ObjectStoragePath`` for a URL, or for a local path (``~`` expanded, made absolute)."""
    text = str(source).strip()
    if not text:
        raise SourceError("no source given: expected a local path or a URL")
    if "://" in text:
        try:
            return ObjectStoragePath(text)
        except ValueError as exc:  # fsspec knows no filesystem for the scheme
            raise SourceError(
                f"{text}: {exc}; expected a local path or a file://, s3://, gs:// or http(s):// URL"
            ) from None
    return ObjectStoragePath(os.path.abspath(os.path.expanduser(text)))


def source_name(path: ObjectStoragePath) -> str:
    """The file name a platform is told about: the last segment of the path, without a query."""
    return PurePosixPath(urlsplit(str(path)).path).name or "video.mp4"


def inspect_source(source: str, *, max_bytes: int, platform: str) -> SourceInfo:
    """Check that ``source`` exists, holds 1 to ``max_bytes - 1`` bytes and is an MP4/MOV video.

    Reads only box headers; raises :class:`SourceError` with a message naming the file and the limit.
    """
    path = source_path(source)
    try:
        exists = path.exists()
    except Exception as exc:
        raise SourceError(f"{source}: cannot be reached ({type(exc).__name__}: {exc})") from None
    if not exists or path.is_dir():
        raise SourceError(f"{source}: no such file")
    size = int(path.stat().st_size)
    if size == 0:
        raise SourceError(f"{source} is empty (0 bytes); {platform} needs 1 to {max_bytes - 1:,} bytes")
    if size >= max_bytes:
        raise SourceError(
            f"{source} is {size:,} bytes; {platform} takes files under {max_bytes:,} bytes "
            f"(at most {max_bytes - 1:,})"
        )
    with path.open("rb", block_size=_HEADER_READ) as handle:

        def read(offset: int, length: int) -> bytes:
            handle.seek(offset)
            return handle.read(length)

        try:
            media = probe_media(read, size, name=str(source))
        except NotAVideoError as exc:
            raise SourceError(str(exc)) from None
    return SourceInfo(str(path), source_name(path), size, media)


def read_range(source: str, offset: int, length: int) -> bytes:
    """Exactly ``length`` bytes at ``offset``; a short read means the source changed or was truncated."""
    path = source_path(source)
    with path.open("rb", block_size=max(length, 1)) as handle:
        handle.seek(offset)
        data = handle.read(length)
    if len(data) != length:
        raise SourceError(
            f"{source}: expected {length} bytes at offset {offset} but read {len(data)}; "
            "the file changed or was truncated since the upload was planned"
        )
    return data


def read_planned_range(source: str, offset: int, length: int, planned_size: int | None) -> bytes:
    """:func:`read_range`, after checking the source still has the size its upload was planned for."""
    if planned_size is not None:
        size = int(source_path(source).stat().st_size)
        if size != planned_size:
            raise SourceError(
                f"{source} is now {size:,} bytes but the upload was planned for {planned_size:,}; "
                "it changed during the upload, so upload it again from the start"
            )
    return read_range(source, offset, length)


def file_digest(source: str, algorithm: str) -> Any:
    """A ``hashlib`` digest of the whole source, read in 4 MiB chunks."""
    digest = hashlib.new(algorithm)
    with source_path(source).open("rb", block_size=_HASH_CHUNK) as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest


def sha256_of(source: str) -> str:
    """The content hash the upload ledger is keyed by."""
    return str(file_digest(source, "sha256").hexdigest())
