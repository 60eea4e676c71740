"""The Shopee emulator's ``video_upload_push`` (code 11): the final result of every upload, signed as Shopee
signs pushes, delivered at least once and in no guaranteed order.

Shopee's push page: a POST to the callback URL, timeout 3 s, "sequence not guaranteed", "repeats possible",
retried after 300 s, 1800 s and 10800 s while the callback does not answer 2xx with an empty body; the push
guide: ``Authorization`` is the HMAC-SHA256 of ``URL + "|" + body``. Only ``SUCCEEDED`` and ``FAILED`` are
pushed. Here the retry waits can be scaled down, a share of messages is delivered twice
(``push_duplicate_rate``) and each delivery may wait a random moment first (``push_jitter_seconds``) so
messages overtake each other. Delivery, retries and random faults are the shared
:class:`~media_upload.sandbox.push_queue.PushQueue`'s.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from media_upload.protocols.shopee import push_body, push_signature, video_upload_push
from media_upload.sandbox.faults import FaultDice
from media_upload.sandbox.push_queue import Delivery, PushQueue

#: ``(status, message, video_info or None, when the status is final or None)`` of an upload now, or None.
ResultOf = Callable[[str, float], tuple[str, str, Mapping[str, Any] | None, float | None] | None]
PUSHED_STATUSES = ("SUCCEEDED", "FAILED")


@dataclass
class PushSettings:
    url: str
    key: str
    retry_seconds: tuple[float, ...]
    timeout: float
    duplicate_rate: float = 0.0
    jitter_seconds: float = 0.0
    seed: int | None = None


def accepted(response: requests.Response) -> bool:
    """ "Reply 2xx with an empty body": anything else is a failed delivery."""
    return 200 <= response.status_code < 300 and not response.content


class VideoUploadPusher:
    """Watches uploads after complete and pushes each one's final status once (plus any repeats)."""

    def __init__(
        self,
        settings: PushSettings,
        shop_of: Callable[[str], int | None],
        result_of: ResultOf,
        clock: Callable[[], float],
        dice: FaultDice,
    ) -> None:
        if not 0 <= settings.duplicate_rate <= 1:
            raise ValueError(f"push duplicate rate {settings.duplicate_rate} must be between 0 and 1")
        self.settings = settings
        self.shop_of = shop_of
        self.result_of = result_of
        self.clock = clock
        self._random = random.Random(settings.seed)
        self._pushed: dict[str, str] = {}
        delays = settings.retry_seconds
        self.queue = PushQueue(
            settings.url,
            name="shopee",
            clock=clock,
            dice=dice,
            retry_delay=lambda attempt: delays[attempt - 1] if attempt <= len(delays) else None,
            accepted=accepted,
            timeout=settings.timeout,
        )

    @property
    def log(self) -> deque[dict[str, Any]]:
        """Every delivery attempt, newest last: upload, status, copy, attempt, outcome."""
        return self.queue.log

    def watch(self, video_upload_id: str) -> None:
        """Look at the upload now and, until it is final, again when it should be."""
        self.queue.call_at(self.clock(), lambda: self._look(video_upload_id))

    def close(self) -> None:
        self.queue.close()

    def _look(self, video_upload_id: str) -> None:
        now = self.clock()
        seen = self.result_of(video_upload_id, now)
        shop_id = self.shop_of(video_upload_id)
        if seen is None or shop_id is None:
            return
        status, message, video_info, final_at = seen
        if status not in PUSHED_STATUSES:
            if final_at is not None:
                self.queue.call_at(max(final_at, now), lambda: self._look(video_upload_id))
            return
        if self._pushed.get(video_upload_id) == status:
            return
        self._pushed[video_upload_id] = status
        body = push_body(video_upload_push(shop_id, video_upload_id, status, message, int(now), video_info))
        headers = {
            "Content-Type": "application/json",
            "Authorization": push_signature(self.settings.key, self.settings.url, body),
        }
        copies = 2 if self._random.random() < self.settings.duplicate_rate else 1
        for copy in range(1, copies + 1):
            label = {"video_upload_id": video_upload_id, "status": status, "copy": copy}
            wait = (
                self._random.uniform(0, self.settings.jitter_seconds) if self.settings.jitter_seconds else 0.0
            )
            self.queue.send(Delivery(body, headers, label), due=now + wait)
