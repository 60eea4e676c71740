"""What the emulators share: their settings, the state every backend keeps (data folder, queued and
random faults, request log, rate windows), how they take files in, the inspection routes, and the wrapper
that serves an emulator on a port."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import ASGIApp

from media_upload.sandbox.faults import FaultDice
from media_upload.sandbox.link import LinkModel
from media_upload.sandbox.server import SandboxServer


@dataclass
class EmulatorConfig:
    """Settings of every emulator; each platform's config adds its own (the CLI flags map onto them)."""

    #: The link model: MB/s per connection (0: unlimited) and round-trip milliseconds.
    bandwidth_per_connection: float = 0.0
    latency_ms: float = 0.0
    #: The base URL clients reach the emulator at, when it is not the address it binds (a container name).
    public_url: str | None = None
    #: Random faults (see :mod:`media_upload.sandbox.faults`): share of requests, seed, late answers' delay.
    fault_rate: float = 0.0
    fault_seed: int | None = None
    slow_seconds: float = 3.0
    #: Where uploads, videos and objects are stored; None: a temporary folder, removed at the end.
    data_dir: Path | None = None
    #: HTTPS instead of HTTP: a certificate file and its key file; with ``tls_client_ca`` (a CA file), only
    #: for clients showing a certificate that CA signed.
    tls: tuple[str, str] | None = None
    tls_client_ca: str | None = None

    @property
    def link(self) -> LinkModel:
        return LinkModel(self.bandwidth_per_connection, self.latency_ms)


COPY_CHUNK = 1024 * 1024


def receive_file(stream: IO[bytes], target: Path) -> tuple[Path, int, str]:
    """Copy ``stream`` into a new file beside ``target``: that file, its size and its MD5 (hex). The caller
    moves it onto ``target`` once it accepts the bytes, or deletes it: ``target`` is never half written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")
    digest, size = hashlib.md5(), 0
    with partial.open("wb") as out:
        while chunk := stream.read(COPY_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return partial, size, digest.hexdigest()


class FormError(ValueError):
    """A multipart body that cannot be read: no boundary, broken framing, or larger than allowed."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass
class ReceivedFile:
    """A file field of a multipart body, written to ``path`` (under the data folder) as it arrived."""

    path: Path
    size: int
    md5: str
    filename: str | None
    content_type: str


@dataclass
class ReceivedForm:
    """The text fields and file fields of a multipart body; the caller moves the files it keeps and calls
    :meth:`discard` for the rest."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, ReceivedFile] = field(default_factory=dict)

    def discard(self) -> None:
        for received in self.files.values():
            received.path.unlink(missing_ok=True)


_MAX_TEXT_FIELD = 64 * 1024


class _FileSink:
    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{secrets.token_hex(8)}.partial"
        self.handle = self.path.open("wb")
        self.digest = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)
        self.handle.write(data)


async def receive_multipart(
    content_type: str,
    stream: AsyncIterator[bytes],
    folder: Path,
    *,
    max_bytes: int,
    file_fields: Collection[str] = (),
    max_fields: int = 100,
) -> ReceivedForm:
    """Read a ``multipart/form-data`` body, writing file fields straight into ``folder`` with their size and
    MD5, so no upload lands in the system's temporary folder and memory stays at one chunk.

    A part is a file when it has a ``filename`` or is named in ``file_fields`` (clients differ on whether
    they name the file). A repeated field keeps its last value. Raises :class:`FormError` when the body is
    not multipart, is malformed, or exceeds ``max_bytes``; no file is left behind then.
    """
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise FormError(f"not multipart/form-data with a boundary: {content_type or 'no Content-Type'}")
    form = ReceivedForm()
    sinks: list[_FileSink] = []
    state: dict[str, Any] = {"headers": {}, "name": b"", "value": b"", "ended": False}

    def on_part_begin() -> None:
        state.update(headers={}, sink=None, text=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["name"].lower()] = state["value"]
        state.update(name=b"", value=b"")

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition", b""))
        if b"name" not in disposition:
            raise FormError("a part has no name in its Content-Disposition")
        name = disposition[b"name"].decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        state["field"] = name
        state["filename"] = filename.decode("utf-8", "replace") if filename is not None else None
        if filename is not None or name in file_fields:
            state["sink"] = _FileSink(folder)
            sinks.append(state["sink"])
        elif len(form.fields) >= max_fields:
            raise FormError(f"more than {max_fields} fields")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state["sink"] is not None:
            state["sink"].write(data[start:end])
        else:
            state["text"] += data[start:end]
            if len(state["text"]) > _MAX_TEXT_FIELD:
                raise FormError(f"field {state['field']!r} is over {_MAX_TEXT_FIELD} bytes")

    def on_part_end() -> None:
        sink: _FileSink | None = state["sink"]
        if sink is None:
            form.fields[state["field"]] = bytes(state["text"]).decode("utf-8", "replace")
            return
        sink.handle.close()
        if (earlier := form.files.get(state["field"])) is not None:
            earlier.path.unlink(missing_ok=True)
        content_type = state["headers"].get(b"content-type", b"").decode("latin-1")
        form.files[state["field"]] = ReceivedFile(
            sink.path, sink.size, sink.digest.hexdigest(), state["filename"], content_type
        )

    def on_end() -> None:
        state["ended"] = True

    callbacks = {
        "on_end": on_end,
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
    }
    received = 0
    try:
        parser = MultipartParser(options[b"boundary"], callbacks)  # type: ignore[arg-type]
        async for chunk in stream:
            received += len(chunk)
            if received > max_bytes:
                raise FormError(f"the body is over {max_bytes} bytes", too_large=True)
            parser.write(chunk)
        parser.finalize()
        if not state["ended"]:
            raise FormError("the body ends before the closing boundary")
    except Exception as exc:
        for sink in sinks:
            sink.handle.close()
            sink.path.unlink(missing_ok=True)
        if isinstance(exc, FormError):
            raise
        raise FormError(f"unreadable multipart body: {exc}") from None
    return form


@dataclass
class CallLimit:
    """A platform's call limit as a token bucket: ``per_second`` refill, ``burst`` calls saved up at most
    (one second's worth by default); a caller who empties it is banned for ``ban_seconds`` (0: refused
    only until the next token)."""

    per_second: float = 0.0
    burst: float = 0.0
    ban_seconds: float = 1.0

    @property
    def on(self) -> bool:
        return self.per_second > 0


@dataclass
class _Bucket:
    tokens: float
    at: float
    banned_until: float = 0.0


@dataclass
class QueuedFault:
    """A fault queued through ``POST /_sandbox/<name>/faults`` (or drawn by the dice) for one API or
    operation (``target``; ``*``: any): what it is is the platform's business (see each backend)."""

    kind: str
    target: str = "*"
    remaining: int = 1
    seconds: float = 0.0


class EmulatorBackend:
    """The state every emulator keeps besides its platform's: data folder, clock, lock, faults, requests."""

    #: The emulator's name in its inspection routes: ``/_sandbox/<name>/state`` ...
    name: str
    #: What a fault spec calls its target: ``api`` (Lazada) or ``operation`` (VOD, OBS).
    fault_target: str

    def __init__(self, config: EmulatorConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._lock = threading.RLock()
        self._own_data_dir = config.data_dir is None
        self.data_dir = Path(config.data_dir or tempfile.mkdtemp(prefix=f"{self.name}-sandbox-"))
        #: Base URL this backend is served at; set by the server once it is bound.
        self.public_url = "http://127.0.0.1"
        self.faults: list[QueuedFault] = []
        self.dice = FaultDice(config.fault_rate, config.fault_seed, slow_seconds=config.slow_seconds)
        self.request_log: deque[dict[str, Any]] = deque(maxlen=5000)
        self.request_counts: Counter[str] = Counter()
        self._rate_window: dict[str, tuple[int, int]] = {}
        self._buckets: dict[str, _Bucket] = {}
        #: Calls refused by a call limit (token buckets), by bucket.
        self.limited: Counter[str] = Counter()

    def close(self) -> None:
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    # ------------------------------------------------------------------ faults

    def check_fault(self, kind: str, target: str) -> None:
        """Raise ``ValueError`` for a fault this platform cannot show."""
        raise NotImplementedError

    def add_fault(self, kind: str, target: str = "*", count: int = 1, seconds: float = 0.0) -> QueuedFault:
        if count < 1:
            raise ValueError(f"count {count} < 1")
        self.check_fault(kind, target)
        fault = QueuedFault(kind, target, count, seconds)
        with self._lock:
            self.faults.append(fault)
        return fault

    def take_fault(self, target: str, kinds: Iterable[str] | None = None) -> QueuedFault | None:
        """The first queued fault for ``target`` (of ``kinds``, when given), used up once."""
        wanted = None if kinds is None else set(kinds)
        with self._lock:
            for fault in self.faults:
                if fault.target in ("*", target) and (wanted is None or fault.kind in wanted):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def clear_faults(self) -> int:
        with self._lock:
            cleared = len(self.faults)
            self.faults.clear()
        return cleared

    # ---------------------------------------------------------------- requests

    def over_rate(self, name: str, per_second: int) -> bool:
        """Count one call of ``name`` in this clock second: True once more than ``per_second`` arrived
        (``per_second`` 0 or less: no limit)."""
        if per_second <= 0:
            return False
        second = int(self.clock())
        with self._lock:
            window, count = self._rate_window.get(name, (second, 0))
            count = count + 1 if window == second else 1
            self._rate_window[name] = (second, count)
        return count > per_second

    def limit_calls(self, bucket: str, limit: CallLimit) -> float:
        """Count one call against ``bucket``: 0 when it may go, else the seconds until one may (a call that
        finds the bucket empty starts a ban of ``limit.ban_seconds``; calls during a ban are refused and do
        not lengthen it)."""
        if not limit.on:
            return 0.0
        now = self.clock()
        burst = limit.burst or max(1.0, limit.per_second)
        with self._lock:
            state = self._buckets.setdefault(bucket, _Bucket(burst, now))
            if now < state.banned_until:
                self.limited[bucket] += 1
                return state.banned_until - now
            state.tokens = min(burst, state.tokens + (now - state.at) * limit.per_second)
            state.at = now
            if state.tokens >= 1.0:
                state.tokens -= 1.0
                return 0.0
            state.banned_until = now + limit.ban_seconds
            self.limited[bucket] += 1
            return max(limit.ban_seconds, (1.0 - state.tokens) / limit.per_second)

    def record_request(self, name: str, started: float, **fields: Any) -> None:
        """Keep one request (secrets already masked by the caller) and count it under ``name``."""
        entry = {"at": started, "ms": round((self.clock() - started) * 1000, 1), **fields}
        with self._lock:
            self.request_log.append(entry)
            self.request_counts[name] += 1

    def snapshot(self) -> dict[str, Any]:
        """Everything a test may want to assert on, with no secret in it."""
        raise NotImplementedError


def add_inspection_routes(app: FastAPI, backend: EmulatorBackend) -> None:
    """``/_sandbox/<name>/``: ``state``, ``requests``, and ``faults`` to queue (POST) or clear (DELETE)."""
    prefix = f"/_sandbox/{backend.name}"

    @app.get(f"{prefix}/state", tags=["sandbox"])
    def state() -> dict[str, Any]:
        """What the emulator holds (no secret), request counts, queued faults."""
        return backend.snapshot()

    @app.get(f"{prefix}/requests", tags=["sandbox"])
    def requests_log(limit: int = 100) -> list[dict[str, Any]]:
        """The most recent requests, secrets masked, newest last."""
        return list(backend.request_log)[-limit:]

    @app.post(f"{prefix}/faults", tags=["sandbox"])
    async def add_fault(request: Request) -> JSONResponse:
        """Queue a fault: ``{"kind": ..., "<api or operation>": "..." or "*", "count": 1, "seconds": 0}``
        (the kinds each emulator knows are in its docs)."""
        spec = await request.json()
        try:
            fault = backend.add_fault(
                str(spec["kind"]),
                str(spec.get(backend.fault_target, "*")),
                int(spec.get("count", 1)),
                float(spec.get("seconds", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad fault {spec!r}: {exc}"}, status_code=400)
        return JSONResponse({"queued": asdict(fault)})

    @app.delete(f"{prefix}/faults", tags=["sandbox"])
    def clear_faults() -> dict[str, int]:
        return {"cleared": backend.clear_faults()}

    @app.put(f"{prefix}/fault-rate", tags=["sandbox"])
    async def fault_rate(request: Request) -> JSONResponse:
        """Random faults from now on: ``{"rate": 0.1}`` (a share of requests; 0 turns them off), so a test
        sets up its data first and faults the work that follows."""
        spec = await request.json()
        try:
            rate = float(spec["rate"])
            if not 0 <= rate <= 1:
                raise ValueError(f"{rate} is not between 0 and 1")
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": f"bad fault rate {spec!r}: {exc}"}, status_code=400)
        backend.dice.rate = rate
        return JSONResponse({"rate": rate, "faults": backend.dice.summary()})


BackendT = TypeVar("BackendT", bound=EmulatorBackend)
SelfT = TypeVar("SelfT", bound="Emulator[Any]")


class Emulator(Generic[BackendT]):
    """An emulator's backend served on loopback by uvicorn on a background thread, for tests, demos and
    offline work: ``with LazadaSandbox() as sandbox: ...``."""

    def __init__(
        self,
        backend: BackendT,
        app: ASGIApp,
        link: LinkModel,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.backend = backend
        config = backend.config
        self._server = SandboxServer(app, host, port, log_level, link, config.tls, config.tls_client_ca)

    def start(self: SelfT) -> SelfT:
        bound = self._server.start()
        self.backend.public_url = (self.backend.config.public_url or bound).rstrip("/")
        return self

    def stop(self) -> None:
        self._server.stop()
        self.backend.close()

    def __enter__(self: SelfT) -> SelfT:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.backend.public_url
