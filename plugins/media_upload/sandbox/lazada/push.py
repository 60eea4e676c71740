"""The Lazada emulator's push messages: every video state change, signed and retried as Lazada does it.

Lazada Push Mechanism posts JSON to the seller app's callback URL with the signature in the
``Authorization`` header and retries a message 12 times, 30 minutes apart, while the callback does not
answer HTTP 200. Here the callback is ``--push-url`` and the interval ``--push-retry-seconds`` (scaled
down for rehearsals and tests). One message goes out per state a video is seen in: each of the three
audit steps, the outcome, and ``DELETED`` after RemoveVideo. Delivery, retries and random faults are the
shared :class:`~media_upload.sandbox.push_queue.PushQueue`'s.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from media_upload.protocols.lazada import push_signature, video_state_message
from media_upload.sandbox.faults import FaultDice
from media_upload.sandbox.push_queue import Delivery, PushQueue

#: ``(state, when it began, when it changes next or None)`` of a video now, or None once it is gone.
StateOf = Callable[[str, float], tuple[str, float, float | None] | None]


@dataclass
class PushSettings:
    url: str
    app_key: str
    app_secret: str
    seller_id: str
    site: str
    retries: int
    retry_seconds: float
    timeout: float = 10.0


class PushSender:
    """Watches videos and pushes each state they are seen in."""

    def __init__(
        self, settings: PushSettings, state_of: StateOf, clock: Callable[[], float], dice: FaultDice
    ) -> None:
        self.settings = settings
        self.state_of = state_of
        self.clock = clock
        self._pushed: dict[str, str] = {}
        self.queue = PushQueue(
            settings.url,
            name="lazada",
            clock=clock,
            dice=dice,
            retry_delay=lambda attempt: settings.retry_seconds if attempt <= settings.retries else None,
            timeout=settings.timeout,
        )

    @property
    def log(self) -> deque[dict[str, Any]]:
        """Every delivery attempt, newest last: video, state, attempt, outcome."""
        return self.queue.log

    def watch(self, video_id: str) -> None:
        """Look at ``video_id`` now, and again at each of its state changes."""
        self.queue.call_at(self.clock(), lambda: self._look(video_id))

    def close(self) -> None:
        self.queue.close()

    def _look(self, video_id: str) -> None:
        now = self.clock()
        seen = self.state_of(video_id, now)
        if seen is None:
            return
        state, since, next_change = seen
        if self._pushed.get(video_id) != state:
            self._pushed[video_id] = state
            s = self.settings
            message = video_state_message(s.seller_id, video_id, state, since, now, s.site)
            body = json.dumps(message, separators=(",", ":")).encode()
            headers = {
                "Content-Type": "application/json",
                "Authorization": push_signature(s.app_key, s.app_secret, body),
            }
            self.queue.send(Delivery(body, headers, {"video_id": video_id, "state": state}))
        if next_change is not None:
            self.queue.call_at(next_change, lambda: self._look(video_id))
