"""Deferred wait for a Shopee upload's transcoding: the trigger only reads get_video_upload_result."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from media_upload.hooks import SHOPEE_CONN_ID
from media_upload.hooks.shopee import ShopeeError, ShopeeHook, is_retryable
from media_upload.protocols.shopee import GET_VIDEO_UPLOAD_RESULT, VideoUploadStatus
from media_upload.triggers.base import PollingTrigger, StateReader


class ShopeeVideoUploadTrigger(PollingTrigger):
    """Poll get_video_upload_result until the upload is ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``.

    Yields ``{"status": "success" | "failed", "video_upload_id", "upload_status", "message"}`` or, after too
    many failed polls, ``{"status": "error", "video_upload_id", "message"}``.
    """

    def __init__(
        self,
        video_upload_id: str,
        shopee_conn_id: str = SHOPEE_CONN_ID,
        poll_interval: float = 30.0,
        max_consecutive_errors: int = 5,
        first_poll_interval: float = 2.0,
    ) -> None:
        super().__init__(poll_interval, max_consecutive_errors, first_poll_interval)
        self.video_upload_id = str(video_upload_id)
        self.shopee_conn_id = shopee_conn_id
        self._last_status: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.shopee.ShopeeVideoUploadTrigger",
            {
                "video_upload_id": self.video_upload_id,
                "shopee_conn_id": self.shopee_conn_id,
                **self.polling_kwargs(),
            },
        )

    @property
    def subject(self) -> dict[str, Any]:
        return {"video_upload_id": self.video_upload_id}

    @cached_property
    def hook(self) -> ShopeeHook:
        return ShopeeHook(self.shopee_conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, ShopeeError) and is_retryable(exc, GET_VIDEO_UPLOAD_RESULT))

    async def check(self) -> dict[str, Any] | None:
        result = await self.hook.aget_video_upload_result(self.video_upload_id)
        status = str(result.get("status"))
        if status != self._last_status:
            self.log.info("Upload %s is %s", self.video_upload_id, status)
            self._last_status = status
        message = str(result.get("message") or "")
        if status == VideoUploadStatus.SUCCEEDED:
            return {"status": "success", "upload_status": status, "message": message}
        if status in (VideoUploadStatus.FAILED, VideoUploadStatus.CANCELLED):
            return {"status": "failed", "upload_status": status, "message": message}
        return None


class ShopeeStateReader(StateReader):
    """Upload statuses of one ``shopee`` connection, from get_video_upload_result."""

    @cached_property
    def hook(self) -> ShopeeHook:
        return ShopeeHook(self.conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, ShopeeError) and is_retryable(exc, GET_VIDEO_UPLOAD_RESULT))

    async def state(self, video_id: str) -> str:
        return str((await self.hook.aget_video_upload_result(video_id)).get("status"))
