"""Deferred wait for a VOD asset's status: the trigger only reads (pushed notifications, ShowAssetMeta)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from media_upload.hooks import HUAWEI_VOD_CONN_ID
from media_upload.hooks.huawei_vod import HuaweiVodError, HuaweiVodHook, is_retryable
from media_upload.protocols.huawei_vod import (
    FAILED_ASSET_STATUSES,
    AssetStatus,
    notified_weight,
    play_url,
)
from media_upload.triggers.base import PollingTrigger, StateReader


class HuaweiVodStateReader(StateReader):
    """Asset statuses of one ``huawei_vod`` connection: VOD's event notifications when the connection turns
    push on (``transcodeComplete:SUCCEED``...), else ShowAssetMeta's ``status``."""

    push_weight = staticmethod(notified_weight)

    @cached_property
    def hook(self) -> HuaweiVodHook:
        return HuaweiVodHook(self.conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, HuaweiVodError) and is_retryable(exc, idempotent=True))

    async def push_account(self) -> tuple[tuple[str, str], float] | None:
        from media_upload.push import vod_account

        credentials = await self.hook.acredentials()
        return (
            (vod_account(credentials.project_id), credentials.push_poll_seconds) if credentials.push else None
        )

    async def state(self, video_id: str) -> str:
        return str((await self.hook.ashow_asset_meta(video_id)).get("status"))


class HuaweiVodAssetTrigger(PollingTrigger):
    """Wait until the asset reaches one of ``ready_statuses`` or a failed status: on VOD's notifications
    when the connection takes them, with ShowAssetMeta as the fallback.

    Yields ``{"status": "success" | "failed", "asset_id", "asset_status", "play_url"}`` or, after too many
    failed polls, ``{"status": "error", "asset_id", "message"}``. A wait ended by a notification reports the
    first of ``ready_statuses`` that ShowAssetMeta uses (the outcome means the asset reached it) and reads
    ShowAssetMeta once more only for a published asset's play URL.
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
    def reader(self) -> HuaweiVodStateReader:
        return HuaweiVodStateReader(self.huawei_vod_conn_id)

    @property
    def hook(self) -> HuaweiVodHook:
        return self.reader.hook

    def is_permanent(self, exc: Exception) -> bool:
        return self.reader.is_permanent(exc)

    async def pause(self, seconds: float) -> None:
        await self.reader.pause([self.asset_id], seconds)

    async def check(self) -> dict[str, Any] | None:
        pushed = self.reader.pushed.get(self.asset_id)
        info = None if pushed else await self.hook.ashow_asset_meta(self.asset_id)
        status = pushed or str((info or {}).get("status"))
        if status != self._last_status:
            self.log.info("Asset %s is %s%s", self.asset_id, status, " (notified by VOD)" if pushed else "")
            self._last_status = status
        if status in FAILED_ASSET_STATUSES:
            return {"status": "failed", "asset_status": status, "play_url": None}
        if status not in self.ready_statuses:
            return None
        if pushed:  # the outcome stands for the status ShowAssetMeta would show now
            status = next((s for s in self.ready_statuses if s in AssetStatus.__members__), status)
            if status == AssetStatus.PUBLISHED:
                info = await self.hook.ashow_asset_meta(self.asset_id)
        return {"status": "success", "asset_status": status, "play_url": play_url(info) if info else None}
