"""What both emulators share: the settings every emulator has, and the wrapper that serves one on a port."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from starlette.types import ASGIApp

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

    @property
    def link(self) -> LinkModel:
        return LinkModel(self.bandwidth_per_connection, self.latency_ms)


BackendT = TypeVar("BackendT")
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
        backend: Any = self.backend
        backend.public_url = (backend.config.public_url or bound).rstrip("/")
        return self

    def stop(self) -> None:
        self._server.stop()
        self.backend.close()  # type: ignore[attr-defined]

    def __enter__(self: SelfT) -> SelfT:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return str(self.backend.public_url)  # type: ignore[attr-defined]
