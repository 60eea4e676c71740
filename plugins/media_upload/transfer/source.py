"""Sources: local files read directly, ``s3://``, ``gs://``, ``http(s)://`` through Airflow's
``ObjectStoragePath``, every one of them checked against the deployment's source policy first.

A :class:`Source` is only made by :meth:`Source.of`, which applies ``[media_upload] allowed_sources``
(see :mod:`media_upload.transfer.policy`); credentials come only from ``conn_id``, the connection the DAG
author named, and an HTTP connection only for its own host. Every read is a byte range, so memory
follows the block size, never the file size. Local files are opened without following a last link,
checked again where the open file really is, read with ``os.pread``, and never load fsspec. Errors name
the source (masked) and never show the file's bytes.
"""

from __future__ import annotations

import hashlib
import os
import stat
from contextlib import suppress
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from media_upload.lineage import report_read
from media_upload.transfer.errors import SourceError
from media_upload.transfer.media import MediaInfo, NotAVideoError, probe_media
from media_upload.transfer.policy import SourcePolicy, shown

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

__all__ = ["Source", "SourceError", "SourceInfo", "source_name"]

_HEADER_READ = 64 * 1024
_HASH_CHUNK = 4 * 1024 * 1024
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | os.O_CLOEXEC


@dataclass(frozen=True)
class SourceInfo:
    uri: str
    name: str
    size: int
    media: MediaInfo


def source_name(source: str) -> str:
    """The file name a platform is told about: the last segment of the path, without a query."""
    return PurePosixPath(urlsplit(str(source)).path).name or "video.mp4"


@dataclass(frozen=True)
class Source:
    """A video or manifest the deployment's policy allows: ``location`` is its real local path or its
    normalised URL, ``conn_id`` the connection (named by the DAG author) that reads it."""

    location: str
    conn_id: str | None = None

    @classmethod
    def of(cls, source: str, conn_id: str | None = None, relative_to: str | None = None) -> Source:
        """The checked source, or :class:`SourceError` naming the setting, the value and what to do."""
        location = SourcePolicy.current().resolve(source, relative_to)
        found = cls(location, conn_id or None)
        if not found.local:
            found._check_connection()
        report_read(location)  # hook-level lineage: every source is made here to be read
        return found

    @property
    def local(self) -> bool:
        return "://" not in self.location

    @property
    def name(self) -> str:
        return source_name(self.location)

    @property
    def folder(self) -> str:
        """Where a relative path in this file (a manifest's rows) is taken from."""
        return self.location.rsplit("/", 1)[0]

    def __str__(self) -> str:
        return shown(self.location)

    # ------------------------------------------------------------------ remote

    def _check_connection(self) -> None:
        """An HTTP source's connection must be for the URL's own host: its credentials go nowhere else."""
        scheme = urlsplit(self.location).scheme
        if not self.conn_id or scheme not in ("http", "https"):
            return
        from media_upload.connections import get_connection

        connection = get_connection(self.conn_id)
        host = str(connection.host or "").strip()
        if "://" not in host:
            host = f"{connection.schema or scheme}://{host}" + (
                f":{connection.port}" if connection.port else ""
            )
        ours, theirs = urlsplit(self.location), urlsplit(host)
        if not theirs.hostname or (ours.hostname, _port(ours)) != (theirs.hostname.lower(), _port(theirs)):
            raise SourceError(
                f"{self}: connection {self.conn_id!r} is for host {theirs.hostname or '(none)'!r}, not "
                f"{ours.hostname!r}; its credentials are only sent to its own host"
            )

    def path(self) -> ObjectStoragePath:
        """The remote file as an ``ObjectStoragePath`` read with the named connection."""
        from airflow.sdk import ObjectStoragePath

        try:
            return ObjectStoragePath(self.location, conn_id=self.conn_id)
        except ValueError as exc:  # fsspec knows no filesystem for the scheme
            raise SourceError(
                f"{self}: {type(exc).__name__}: no filesystem for {urlsplit(self.location).scheme!r}; "
                "expected a local path or an s3://, gs:// or http(s):// URL"
            ) from None

    # ------------------------------------------------------------------- local

    def _open(self) -> int:
        """A descriptor of the local file, refused unless it is a regular file inside an allowed folder
        (checked where the open descriptor really points, so a link swapped in meanwhile is caught)."""
        try:
            descriptor = os.open(self.location, _OPEN_FLAGS)
        except FileNotFoundError:
            raise SourceError(f"{self}: no such file") from None
        except OSError as exc:
            raise SourceError(f"{self}: cannot be opened ({exc.strerror})") from None
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SourceError(f"{self}: not a regular file")
            with suppress(FileNotFoundError):  # no /proc: the real path checked before opening holds
                SourcePolicy.current().check_local(os.readlink(f"/proc/self/fd/{descriptor}"), self.location)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor

    # -------------------------------------------------------------------- reads

    def size(self) -> int:
        """The size in bytes; :class:`SourceError` naming the source when it is missing or unreachable."""
        if self.local:
            descriptor = self._open()
            try:
                return os.fstat(descriptor).st_size
            finally:
                os.close(descriptor)
        try:
            found = self.path().stat()
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"{self}: {self._why(exc)}") from None
        if found.get("type") == "directory":
            raise SourceError(f"{self}: no such file (a folder)")
        if found.get("size") is None:
            raise SourceError(f"{self}: the host does not say how large the file is (no Content-Length)")
        return int(found["size"])

    def _why(self, exc: BaseException) -> str:
        """What a failed look at a remote file means, from the error under fsspec's FileNotFoundError."""
        cause = exc.__cause__ if isinstance(exc, FileNotFoundError) and exc.__cause__ else exc
        status = getattr(cause, "status", None)
        if isinstance(status, int):
            if status == 404:
                return "no such file"
            if 300 <= status < 400:
                return f"HTTP {status}: redirects are not followed; give the URL the file is at"
            if status in (401, 403):
                named = f"connection {self.conn_id!r}" if self.conn_id else "no connection (source_conn_id)"
                return f"HTTP {status}: the host refused the request, made with {named}"
            return f"cannot be reached (HTTP {status})"
        if "certificate" in str(cause).lower() or "ssl" in type(cause).__name__.lower():
            return (
                f"cannot be reached ({type(cause).__name__}): the host's certificate is not trusted; give the "
                "connection a CA bundle in its extra (verify)"
            )
        if isinstance(cause, FileNotFoundError):
            return "no such file"
        return f"cannot be reached ({type(cause).__name__})"

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; a short read means the source changed or was truncated."""
        if self.local:
            descriptor = self._open()
            try:
                data = os.pread(descriptor, length, offset)
            finally:
                os.close(descriptor)
        else:
            with self.path().open("rb", block_size=max(length, 1)) as handle:
                handle.seek(offset)
                data = handle.read(length)
        if len(data) != length:
            raise SourceError(
                f"{self}: expected {length} bytes at offset {offset} but read {len(data)}; "
                "the file changed or was truncated since the upload was planned"
            )
        return data

    def read_capped(self, limit: int, what: str) -> bytes:
        """The whole file, refused (before reading it) when it is larger than ``limit`` bytes."""
        size = self.size()
        if size > limit:
            raise SourceError(
                f"{self}: {what} of {size:,} bytes is larger than the {limit:,} bytes allowed; split it"
            )
        return self.read(0, size) if size else b""

    def inspect(self, *, max_bytes: int, platform: str) -> SourceInfo:
        """Check that the source holds 1 to ``max_bytes - 1`` bytes and is an MP4/MOV video.

        Reads only box headers (and the ``moov`` index, capped); :class:`SourceError` names the file and
        the limit, never its bytes.
        """
        size = self.size()
        if size == 0:
            raise SourceError(f"{self} is empty (0 bytes); {platform} needs 1 to {max_bytes - 1:,} bytes")
        if size >= max_bytes:
            raise SourceError(
                f"{self} is {size:,} bytes; {platform} takes files under {max_bytes:,} bytes "
                f"(at most {max_bytes - 1:,})"
            )
        try:
            if self.local:
                media = probe_media(
                    lambda offset, length: self.read(offset, min(length, size - offset)), size, name=str(self)
                )
            else:
                with self.path().open("rb", block_size=_HEADER_READ) as handle:  # one handle, small reads

                    def read(offset: int, length: int) -> bytes:
                        handle.seek(offset)
                        return bytes(handle.read(length))

                    media = probe_media(read, size, name=str(self))
        except NotAVideoError as exc:
            raise SourceError(str(exc)) from None
        return SourceInfo(self.location, self.name, size, media)

    def digests(self, *algorithms: str) -> dict[str, Any]:
        """``hashlib`` digests of the whole source, all from one read in 4 MiB ranges."""
        digests = {algorithm: hashlib.new(algorithm) for algorithm in algorithms}
        size, offset = self.size(), 0
        while offset < size:
            length = min(_HASH_CHUNK, size - offset)
            data = self.read(offset, length)
            for digest in digests.values():
                digest.update(data)
            offset += length
        return digests

    def sha256(self) -> str:
        """The content hash the upload ledger is keyed by."""
        return str(self.digests("sha256")["sha256"].hexdigest())


def _port(parts: Any) -> int:
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme, 0)
