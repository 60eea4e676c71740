"""Deferred wait for a Lazada video's audit: the trigger only reads GetVideo, it never uploads or commits."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from media_upload.hooks import LAZADA_CONN_ID
from media_upload.hooks.lazada import API_SPECS, LazadaError, LazadaHook, is_retryable
from media_upload.protocols.lazada import FAILED_VIDEO_STATES, TERMINAL_VIDEO_STATES, VideoState
from media_upload.triggers.base import PollingTrigger


class _GetVideoTrigger(PollingTrigger):
    """What both audit triggers share: GetVideo through the hook, and which of its errors end the wait."""

    lazada_conn_id: str

    @cached_property
    def hook(self) -> LazadaHook:
        return LazadaHook(self.lazada_conn_id)

    def is_permanent(self, exc: Exception) -> bool:
        return not (isinstance(exc, LazadaError) and is_retryable(exc, API_SPECS["/media/video/get"]))


class LazadaVideoAuditTrigger(_GetVideoTrigger):
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

    async def check(self) -> dict[str, Any] | None:
        state = str((await self.hook.aget_video(self.video_id))["state"])
        if state != self._last_state:
            self.log.info("Video %s is %s", self.video_id, state)
            self._last_state = state
        if state == VideoState.AUDIT_SUCCESS:
            return {"status": "success", "state": state}
        if state in FAILED_VIDEO_STATES:
            return {"status": "failed", "state": state}
        return None


class LazadaVideosAuditTrigger(_GetVideoTrigger):
    """Poll GetVideo for several videos (a catalog batch) until every one reaches a terminal state.

    One trigger, and one deferred task, for the whole batch; each poll asks only about the videos still
    pending, at most ``concurrency`` at once. Yields ``{"status": "success", "states": {video_id: state}}``
    or, after too many failed polls in a row, ``{"status": "error", "states": {...}, "message"}`` with the
    states seen so far.
    """

    def __init__(
        self,
        video_ids: list[str],
        lazada_conn_id: str = LAZADA_CONN_ID,
        poll_interval: float = 30.0,
        max_consecutive_errors: int = 5,
        first_poll_interval: float = 2.0,
        concurrency: int = 8,
    ) -> None:
        super().__init__(poll_interval, max_consecutive_errors, first_poll_interval)
        self.video_ids = [str(video_id) for video_id in video_ids]
        self.lazada_conn_id = lazada_conn_id
        self.concurrency = int(concurrency)
        self.states: dict[str, str] = {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.lazada.LazadaVideosAuditTrigger",
            {
                "video_ids": self.video_ids,
                "lazada_conn_id": self.lazada_conn_id,
                "concurrency": self.concurrency,
                **self.polling_kwargs(),
            },
        )

    @property
    def subject(self) -> dict[str, Any]:
        return {"states": dict(self.states)}

    async def check(self) -> dict[str, Any] | None:
        import asyncio

        pending = [
            video_id for video_id in self.video_ids if self.states.get(video_id) not in TERMINAL_VIDEO_STATES
        ]
        gate = asyncio.Semaphore(self.concurrency)

        async def state_of(video_id: str) -> None:
            async with gate:
                state = str((await self.hook.aget_video(video_id))["state"])
            if state != self.states.get(video_id):
                self.log.info("Video %s is %s", video_id, state)
            self.states[video_id] = state

        await asyncio.gather(*(state_of(video_id) for video_id in pending))
        if all(self.states.get(video_id) in TERMINAL_VIDEO_STATES for video_id in self.video_ids):
            return {"status": "success"}
        return None
