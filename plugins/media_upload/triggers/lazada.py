"""Deferred wait for a Lazada video's audit: the trigger only reads GetVideo, it never uploads or commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from media_upload.hooks.lazada import API_SPECS, LazadaError, LazadaHook, is_retryable
from media_upload.protocols.lazada import FAILED_VIDEO_STATES, VideoState


class LazadaVideoAuditTrigger(BaseTrigger):
    """Poll GetVideo until the video reaches a terminal state.

    The first poll comes after ``first_poll_interval`` seconds and each wait grows by half up to
    ``poll_interval``, so a quick audit is seen quickly and a slow one costs few calls.

    Yields one event: ``{"status": "success" | "failed", "video_id", "state"}``, or
    ``{"status": "error", "video_id", "message"}`` after ``max_consecutive_errors`` failed polls in a row
    (or at once for errors that cannot go away, such as a refused signature).
    """

    def __init__(
        self,
        video_id: str,
        lazada_conn_id: str = LazadaHook.default_conn_name,
        poll_interval: float = 30.0,
        max_consecutive_errors: int = 5,
        first_poll_interval: float = 2.0,
    ) -> None:
        super().__init__()
        self.video_id = str(video_id)
        self.lazada_conn_id = lazada_conn_id
        self.poll_interval = float(poll_interval)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.first_poll_interval = float(first_poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.lazada.LazadaVideoAuditTrigger",
            {
                "video_id": self.video_id,
                "lazada_conn_id": self.lazada_conn_id,
                "poll_interval": self.poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "first_poll_interval": self.first_poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = LazadaHook(self.lazada_conn_id)
        errors, last_state = 0, None
        wait = min(self.first_poll_interval, self.poll_interval)
        while True:
            await asyncio.sleep(wait)
            wait = min(wait * 1.5, self.poll_interval)
            try:
                state = str((await hook.aget_video(self.video_id))["state"])
            except LazadaError as exc:
                errors += 1
                permanent = not is_retryable(exc, API_SPECS["/media/video/get"])
                self.log.warning("Polling video %s failed (%d in a row): %s", self.video_id, errors, exc)
                if permanent or errors >= self.max_consecutive_errors:
                    yield TriggerEvent({"status": "error", "video_id": self.video_id, "message": str(exc)})
                    return
            else:
                errors = 0
                if state != last_state:
                    self.log.info("Video %s is %s", self.video_id, state)
                    last_state = state
                if state == VideoState.AUDIT_SUCCESS:
                    yield TriggerEvent({"status": "success", "video_id": self.video_id, "state": state})
                    return
                if state in FAILED_VIDEO_STATES:
                    yield TriggerEvent({"status": "failed", "video_id": self.video_id, "state": state})
                    return
