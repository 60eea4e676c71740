"""The Lazada emulator's push messages: every video state change, signed and retried as Lazada does it.

Lazada Push Mechanism posts JSON to the seller app's callback URL with the signature in the
``Authorization`` header and retries a message 12 times, 30 minutes apart, while the callback does not
answer HTTP 200. Here the callback is ``--push-url`` and the interval ``--push-retry-seconds`` (scaled
down for rehearsals and tests). One message goes out per state a video is seen in: each of the three
audit steps, the outcome, and ``DELETED`` after RemoveVideo.

Random faults (``--fault-rate``) reach pushes too, as the seller's side would see them: ``unavailable``,
``throttle`` and ``reset`` keep a delivery from arriving (it is retried), ``drop`` delivers it and loses
the answer (it is delivered again), ``slow`` delivers it late.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests

from media_upload.protocols.lazada import push_signature, video_state_message
from media_upload.sandbox.faults import FaultDice

log = logging.getLogger(__name__)

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
    """Watches videos and delivers their state changes on a background thread (and a few senders)."""

    def __init__(
        self, settings: PushSettings, state_of: StateOf, clock: Callable[[], float], dice: FaultDice
    ) -> None:
        self.settings = settings
        self.state_of = state_of
        self.clock = clock
        self.dice = dice
        #: Every delivery attempt, newest last: video, state, attempt, outcome.
        self.log: deque[dict[str, Any]] = deque(maxlen=5000)
        self._pushed: dict[str, str] = {}
        self._due: list[tuple[float, int, str, Any]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._senders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="lazada-push")
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="lazada-push", daemon=True)
        self._thread.start()

    def watch(self, video_id: str) -> None:
        """Look at ``video_id`` now, and again at each of its state changes."""
        self._schedule(self.clock(), "look", video_id)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(5)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    # ---------------------------------------------------------------- scheduling

    def _schedule(self, due: float, kind: str, item: Any) -> None:
        with self._wake:
            heapq.heappush(self._due, (due, next(self._order), kind, item))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > self.clock()):
                    # Short waits: a test's clock may jump ahead without waking this thread.
                    self._wake.wait(0.25 if not self._due else min(0.25, self._due[0][0] - self.clock()))
                if self._closed:
                    return
                _, _, kind, item = heapq.heappop(self._due)
            if kind == "look":
                self._look(item)
            else:
                self._senders.submit(self._deliver, *item)

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
            self._schedule(now, "send", (message, 1))
        if next_change is not None:
            self._schedule(next_change, "look", video_id)

    # ------------------------------------------------------------------ delivery

    def _deliver(self, message: dict[str, Any], attempt: int) -> None:
        s = self.settings
        body = json.dumps(message, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": push_signature(s.app_key, s.app_secret, body),
        }
        fault = self.dice.roll("push")
        outcome: str
        if fault in ("unavailable", "throttle", "reset"):
            outcome, delivered = f"not sent ({fault})", False
        else:
            if fault == "slow":
                time.sleep(self.dice.slow_seconds)
            try:
                status = self._session.post(s.url, data=body, headers=headers, timeout=s.timeout).status_code
                outcome, delivered = f"HTTP {status}", status == 200
            except requests.RequestException as exc:
                outcome, delivered = type(exc).__name__, False
            if fault == "drop" and delivered:
                outcome, delivered = "answer lost (drop)", False
        data = message["data"]
        self.log.append(
            {
                "video_id": str(data["videoId"]),
                "state": data["state"],
                "attempt": attempt,
                "outcome": outcome,
                "at": self.clock(),
            }
        )
        if not delivered:
            if attempt <= s.retries:
                self._schedule(self.clock() + s.retry_seconds, "send", (message, attempt + 1))
            else:
                log.warning(
                    "push of video %s %s given up after %d attempts", data["videoId"], data["state"], attempt
                )
