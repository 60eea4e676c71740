"""Local emulator of Huawei Cloud VOD's upload APIs and of the OBS bucket its signed URLs point at."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from media_upload.sandbox.core import Emulator
from media_upload.sandbox.huawei_vod.app import create_app
from media_upload.sandbox.huawei_vod.backend import HuaweiVodBackend, HuaweiVodSandboxConfig

__all__ = ["HuaweiVodBackend", "HuaweiVodSandbox", "HuaweiVodSandboxConfig"]


class HuaweiVodSandbox(Emulator[HuaweiVodBackend]):
    """The VOD + OBS emulator served on loopback: ``with HuaweiVodSandbox() as sandbox: sandbox.endpoint``."""

    def __init__(
        self,
        config: HuaweiVodSandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        clock: Callable[[], float] = time.time,
    ) -> None:
        backend = HuaweiVodBackend(config, clock)
        super().__init__(backend, create_app(backend), backend.config.link, host, port, log_level)
        self.config = backend.config

    @property
    def endpoint(self) -> str:
        """The VOD endpoint (and, path-style, the OBS endpoint of the signed URLs)."""
        return self.url

    def airflow_connection(self) -> dict[str, Any]:
        """The ``huawei_vod`` connection (JSON form of ``AIRFLOW_CONN_HUAWEI_VOD_DEFAULT``) for this sandbox;
        with signed notifications on, waits take them."""
        extra: dict[str, Any] = {"project_id": self.config.project_id, "region": self.config.region}
        if self.config.push_url and self.config.push_key:
            extra.update(push=True, push_secret=self.config.push_key)
        return {
            "conn_type": "huawei_vod",
            "host": self.endpoint,
            "login": self.config.ak,
            "password": self.config.sk,
            "extra": extra,
        }
