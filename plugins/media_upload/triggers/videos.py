"""The catalog's deferred wait, for videos on any platforms: it fires as soon as one of them settles.

A catalog attaches each video the moment its own audit (or transcoding) ends, so its wait cannot be "until
all are done". This trigger watches every (platform, connection) group of pending videos at once, each
with its platform's :class:`~media_upload.triggers.base.StateReader` (pushed states where the platform
pushes them, polls with growing waits otherwise), and fires when at least one video reached a final
state, after a short gathering pause so videos that settle together come back together. The task then
attaches what settled and defers again for the rest. A video (or a whole group) whose state cannot be read
is named in the event and left out of the wait; the others go on. It only reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from media_upload import metrics
from media_upload.platforms import load, steps_class
from media_upload.triggers.base import StateReader, hand_back


def video_key(platform: str, video_id: str) -> str:
    """How events name a video: its platform and id (ids of two platforms may look alike)."""
    return f"{platform}:{video_id}"


class VideosSettledTrigger(BaseTrigger):
    """Wait until at least one of ``videos`` reaches a final state.

    :param videos: ``[{"platform", "conn_id", "video_id", "final": [states after which it never changes]}]``.
    :param gather_seconds: how long to wait, once one video settled, for others settling with it.
    :param echo: what the deferring task needs back when it resumes (every event carries it): a task's own
        deferral arguments are not kept by every way Airflow runs triggers.
    :param until: when to give the task back the states seen so far even if none settled (epoch seconds).

    Yields ``{"status": "settled", "states": {"<platform>:<video id>": state}, "failed": {"<platform>:<video
    id>": message}, "echo"}`` with every state seen and every video whose state could not be read: after
    too many failed looks in a row at its group, or at once for a permanent error (a permanent error on a
    group of several is tried video by video, so one bad video does not stop its siblings).
    """

    def __init__(
        self,
        videos: Sequence[dict[str, Any]],
        poll_interval: float = 30.0,
        first_poll_interval: float = 2.0,
        max_consecutive_errors: int = 5,
        gather_seconds: float = 0.25,
        echo: dict[str, Any] | None = None,
        until: float | None = None,
    ) -> None:
        super().__init__()
        self.videos = [dict(video) for video in videos]
        self.poll_interval = float(poll_interval)
        self.first_poll_interval = float(first_poll_interval)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.gather_seconds = float(gather_seconds)
        self.echo = dict(echo or {})
        self.until = until
        self.seen: dict[str, str] = {}
        self.failed: dict[str, str] = {}

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "media_upload.triggers.videos.VideosSettledTrigger",
            {
                "videos": self.videos,
                "poll_interval": self.poll_interval,
                "first_poll_interval": self.first_poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "gather_seconds": self.gather_seconds,
                "echo": self.echo,
                "until": self.until,
            },
        )

    def _groups(self) -> dict[tuple[str, str], list[dict[str, Any]]]:
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for video in self.videos:
            groups.setdefault((video["platform"], video["conn_id"]), []).append(video)
        return groups

    async def _watch(self, platform: str, reader: StateReader, videos: list[dict[str, Any]]) -> None:
        """Look at one group until one of its videos settles or cannot be read (named in ``failed``)."""
        title = steps_class(platform).title
        final = {str(video["video_id"]): set(video["final"]) for video in videos}
        wait, errors = min(self.first_poll_interval, self.poll_interval), 0
        while True:
            pending = [
                video_id
                for video_id in final
                if self.seen.get(video_key(platform, video_id)) not in final[video_id]
                and video_key(platform, video_id) not in self.failed
            ]
            if not pending:
                return
            await reader.pause(pending, wait)
            wait = min(wait * 1.5, self.poll_interval)
            failed_before = len(self.failed)
            try:
                states = await reader.states(pending)
            except Exception as exc:
                throttled = reader.is_throttled(exc)
                metrics.incr(
                    metrics.AUDIT_LOOKS, platform=platform, outcome="throttled" if throttled else "failed"
                )
                if throttled:
                    continue
                if reader.is_permanent(exc) and len(pending) > 1:
                    states = await self._one_by_one(platform, reader, pending)
                else:
                    errors += 1
                    self.log.warning("Reading %s states failed (%d in a row): %s", title, errors, exc)
                    if reader.is_permanent(exc) or errors >= self.max_consecutive_errors:
                        self.failed.update(
                            {video_key(platform, video_id): f"{title}: {exc}" for video_id in pending}
                        )
                        return
                    continue
            pushed = bool(getattr(reader, "pushed", None))
            metrics.incr(metrics.AUDIT_LOOKS, platform=platform, outcome="pushed" if pushed else "read")
            errors = 0
            settled = False
            for video_id, state in states.items():
                if video_id not in final:
                    continue
                key = video_key(platform, video_id)
                if state != self.seen.get(key):
                    self.log.info("%s %s is %s", title, video_id, state)
                self.seen[key] = state
                settled = settled or state in final[video_id]
            if settled or len(self.failed) > failed_before:
                return

    async def _one_by_one(self, platform: str, reader: StateReader, video_ids: list[str]) -> dict[str, str]:
        """After a permanent error on a group: each video alone, so only the ones that fail are left out."""
        found: dict[str, str] = {}
        for video_id in video_ids:
            try:
                found.update(await reader.states([video_id]))
            except Exception as exc:
                if reader.is_permanent(exc):
                    self.failed[video_key(platform, video_id)] = f"{steps_class(platform).title}: {exc}"
        return found

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        watches = {
            asyncio.create_task(
                self._watch(platform, load(steps_class(platform).state_reader_path)(conn_id), videos)
            )
            for (platform, conn_id), videos in self._groups().items()
        }
        try:
            timeout = None if self.until is None else max(self.until - time.time(), 0.0)
            done, _ = await asyncio.wait(watches, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a bug in a watch ends the trigger with its error
            if done:  # others settling meanwhile come in the same event
                await asyncio.sleep(self.gather_seconds)
                await hand_back(started)
            yield TriggerEvent(
                {
                    "status": "settled",
                    "states": dict(self.seen),
                    "failed": dict(self.failed),
                    "echo": self.echo,
                }
            )
        finally:
            for task in watches:
                task.cancel()
