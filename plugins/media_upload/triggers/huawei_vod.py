"""Deferred wait for a VOD asset's status: the trigger only reads ShowAssetMeta."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.hooks.huawei_vod import HuaweiVodError, HuaweiVodHook, is_retryable
from media_upload.protocols.huawei_vod import FAILED_ASSET_STATUSES, play_url
from media_upload.triggers.base import PollingTrigger, StateReader


class HuaweiVodAssetTrigger(PollingTrigger):
    """Poll ShowAssetMeta until the asset reaches one of ``ready_statuses`` or a failed status.

    Yields ``{"status": "success" | "failed", "asset_id", "asset_status", "play_url"}`` or, after too many
    failed polls, ``{"status": "error", "asset_id", "message"}``.
    """

    def __init__(
        self,
        asset_id: str,
        ready_statuses: Sequence[str],
        huawei_vod_conn_id: str = HUAWEI_VOD_CONN_ID,
        poll_interval: float = 30.0,
        max_consecutive_errors: int = 5,
        first_poll_interval: float = 2.0,
    ) -> None:
        super().__init__(poll_interval, max_consecutive_errors, first_poll_interval)
        self.asset_id = str(asset_id)
        self.ready_statuses = list(ready_statuses)
        self.huawei_vod_conn_id = huawei_vod_conn_id
        self._last_status: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.huawei_vod.HuaweiVodAssetTrigger",
            {
                "asset_id": self.asset_id,
                "ready_statuses": self.ready_statuses,
                "huawei_vod_conn_id": self.huawei_vod_conn_id,
                **self.polling_kwargs(),
            },
        )

    @property
    def subject(self) -> dict[str, Any]:
        return {"asset_id": self.asset_id}

    @cached_property
    def hook(self) -> HuaweiVodHook:
        return HuaweiVodHook(self.huawei_vod_conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, HuaweiVodError) and is_retryable(exc, idempotent=True))

    async def check(self) -> dict[str, Any] | None:
        info = await self.hook.ashow_asset_meta(self.asset_id)
        status = str(info.get("status"))
        if status != self._last_status:
            self.log.info("Asset %s is %s", self.asset_id, status)
            self._last_status = status
        if status in self.ready_statuses:
            return {"status": "success", "asset_status": status, "play_url": play_url(info)}
        if status in FAILED_ASSET_STATUSES:
            return {"status": "failed", "asset_status": status, "play_url": None}
        return None


class HuaweiVodStateReader(StateReader):
    """Asset statuses of one ``huawei_vod`` connection, from ShowAssetMeta."""

    @cached_property
    def hook(self) -> HuaweiVodHook:
        return HuaweiVodHook(self.conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, HuaweiVodError) and is_retryable(exc, idempotent=True))

    async def state(self, video_id: str) -> str:
        return str((await self.hook.ashow_asset_meta(video_id)).get("status"))
