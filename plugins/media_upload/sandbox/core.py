"""What both emulators share: their settings, the state every backend keeps (data folder, queued and
random faults, request log), the inspection routes, and the wrapper that serves an emulator on a port."""

from __future__ import annotations

import hashlib
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
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
        self._server = SandboxServer(app, host, port, log_level, link)

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
