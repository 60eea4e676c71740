"""Local emulator of the Lazada Open Platform gateway (Media Center, images, products, tokens)."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from media_upload.sandbox.lazada.app import create_app
from media_upload.sandbox.lazada.backend import LazadaBackend, LazadaSandboxConfig
from media_upload.sandbox.server import SandboxServer

__all__ = ["LazadaBackend", "LazadaSandbox", "LazadaSandboxConfig"]


class LazadaSandbox:
    """The Lazada emulator served on loopback, for tests, demos and offline work.

    >>> with LazadaSandbox() as sandbox:
    ...     sandbox.gateway_url  # e.g. http://127.0.0.1:40123/rest
    """

    def __init__(
        self,
        config: LazadaSandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = LazadaBackend(config, clock)
        self.config = self.backend.config
        self._server = SandboxServer(create_app(self.backend), host, port, log_level, self.config.link)

    def start(self) -> LazadaSandbox:
        bound = self._server.start()
        self.backend.public_url = (self.config.public_url or bound).rstrip("/")
        return self

    def stop(self) -> None:
        self._server.stop()
        self.backend.close()

    def __enter__(self) -> LazadaSandbox:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.backend.public_url

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/rest"

    def airflow_connection(self) -> dict[str, Any]:
        """The ``lazada`` connection (JSON form of ``AIRFLOW_CONN_LAZADA_DEFAULT``) that reaches this sandbox."""
        return {
            "conn_type": "lazada",
            "host": self.gateway_url,
            "login": self.config.app_key,
            "password": self.config.app_secret,
            "extra": {"access_token": self.config.access_token, "refresh_token": self.config.refresh_token},
        }
