"""Local emulator of the Lazada Open Platform gateway (Media Center, images, products, tokens)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from media_upload.sandbox.core import Emulator
from media_upload.sandbox.lazada.app import create_app
from media_upload.sandbox.lazada.backend import LazadaBackend, LazadaSandboxConfig

__all__ = ["LazadaBackend", "LazadaSandbox", "LazadaSandboxConfig"]


class LazadaSandbox(Emulator[LazadaBackend]):
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
        backend = LazadaBackend(config, clock)
        super().__init__(backend, create_app(backend), backend.config.link, host, port, log_level)
        self.config = backend.config

    @property
    def gateway_url(self) -> str:
        return f"{self.url}/rest"

    def airflow_connection(self) -> dict[str, Any]:
        """The ``lazada`` connection (JSON form of ``AIRFLOW_CONN_LAZADA_DEFAULT``) that reaches this sandbox;
        with push on, audit waits take the pushed states."""
        extra: dict[str, Any] = {
            "access_token": self.config.access_token,
            "refresh_token": self.config.refresh_token,
            "seller_id": self.config.seller_id,
        }
        if self.config.push_url:
            extra["push"] = True
        return {
            "conn_type": "lazada",
            "host": self.gateway_url,
            "login": self.config.app_key,
            "password": self.config.app_secret,
            "extra": extra,
        }
