"""Deferred wait for a Lazada video's audit: the triggers only read (pushed states, GetVideo), never upload or commit."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.hooks.lazada import API_SPECS, LazadaError, LazadaHook, is_retryable
from media_upload.protocols.lazada import FAILED_VIDEO_STATES, VideoState
from media_upload.triggers.base import PollingTrigger, StateReader


class LazadaStateReader(StateReader):
    """Video states of one ``lazada`` connection: pushed when the connection turns push on (its
    ``seller_id`` names the seller the messages are for), else from GetVideo."""

    @cached_property
    def hook(self) -> LazadaHook:
        return LazadaHook(self.conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, LazadaError) and is_retryable(exc, API_SPECS["/media/video/get"]))

    async def push_account(self) -> tuple[tuple[str, str], float] | None:
        credentials = await self.hook.acredentials()
        if not credentials.push:
            return None
        return (credentials.app_key, str(credentials.seller_id)), credentials.push_poll_seconds

    async def state(self, video_id: str) -> str:
        return str((await self.hook.aget_video(video_id))["state"])


class LazadaVideoAuditTrigger(PollingTrigger):
    """Poll GetVideo until the video reaches a terminal state.

    Yields ``{"status": "success" | "failed", "video_id", "state"}`` or, after too many failed polls,
    ``{"status": "error", "video_id", "message"}`` (see :class:`~media_upload.triggers.base.PollingTrigger`).
    """

    def __init__(
        self,
        video_id: str,
        lazada_conn_id: str = LAZADA_CONN_ID,
        poll_interval: float = 30.0,
        max_consecutive_errors: int = 5,
        first_poll_interval: float = 2.0,
    ) -> None:
        super().__init__(poll_interval, max_consecutive_errors, first_poll_interval)
        self.video_id = str(video_id)
        self.lazada_conn_id = lazada_conn_id
        self._last_state: str | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.lazada.LazadaVideoAuditTrigger",
            {"video_id": self.video_id, "lazada_conn_id": self.lazada_conn_id, **self.polling_kwargs()},
        )

    @property
    def subject(self) -> dict[str, Any]:
        return {"video_id": self.video_id}

    @cached_property
    def reader(self) -> LazadaStateReader:
        return LazadaStateReader(self.lazada_conn_id)

    @property
    def hook(self) -> LazadaHook:
        return self.reader.hook

    def is_permanent(self, exc: Exception) -> bool:
        return self.reader.is_permanent(exc)

    async def pause(self, seconds: float) -> None:
        await self.reader.pause([self.video_id], seconds)

    async def check(self) -> dict[str, Any] | None:
        state = (await self.reader.states([self.video_id])).get(self.video_id)
        if state is None:
            return None
        if state != self._last_state:
            pushed = " (pushed by Lazada)" if self.reader.pushed else ""
            self.log.info("Video %s is %s%s", self.video_id, state, pushed)
            self._last_state = state
        if state == VideoState.AUDIT_SUCCESS:
            return {"status": "success", "state": state}
        if state in FAILED_VIDEO_STATES:
            return {"status": "failed", "state": state}
        return None
