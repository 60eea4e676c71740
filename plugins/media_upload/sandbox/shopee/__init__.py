"""Local emulator of the Shopee Open Platform v2 gateway (media_space video upload, items, tokens, push)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from media_upload.sandbox.core import Emulator
from media_upload.sandbox.shopee.app import create_app
from media_upload.sandbox.shopee.backend import ShopeeBackend, ShopeeSandboxConfig

__all__ = ["ShopeeBackend", "ShopeeSandbox", "ShopeeSandboxConfig"]


class ShopeeSandbox(Emulator[ShopeeBackend]):
    """The Shopee emulator served on loopback, for tests, demos and offline work.

    >>> with ShopeeSandbox() as sandbox:
    ...     sandbox.gateway_url  # e.g. http://127.0.0.1:40123 (signed paths start with /api/v2)
    """

    def __init__(
        self,
        config: ShopeeSandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        clock: Callable[[], float] = time.time,
    ) -> None:
        backend = ShopeeBackend(config, clock)
        super().__init__(backend, create_app(backend), backend.config.link, host, port, log_level)
        self.config = backend.config

    @property
    def gateway_url(self) -> str:
        """The origin the API paths (``/api/v2/...``) hang off, as Shopee's hosts are written."""
        return self.url

    @property
    def sdk_base_url(self) -> str:
        """The ``base_url`` form of the TypeScript SDK, which appends paths to ``.../api/v2``."""
        return f"{self.url}/api/v2"

    def airflow_connection(self) -> dict[str, Any]:
        """The ``shopee`` connection (JSON form of ``AIRFLOW_CONN_SHOPEE_DEFAULT``) that reaches this sandbox."""
        extra: dict[str, Any] = {
            "access_token": self.config.access_token,
            "refresh_token": self.config.refresh_token,
            "shop_id": self.config.shop_id,
        }
        if self.config.push_url:
            extra["push"] = True
        return {
            "conn_type": "shopee",
            "host": self.gateway_url,
            "login": str(self.config.partner_id),
            "password": self.config.partner_key,
            "extra": extra,
        }
