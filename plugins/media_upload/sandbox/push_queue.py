"""Timed, retried push deliveries: what the emulators' push mechanisms share.

A platform's push module decides what to send and when; a :class:`PushQueue` runs its timed jobs on one
background thread, posts the deliveries from a few sender threads, retries each on the platform's schedule
until it is accepted or given up, and keeps a log of every attempt. Random faults (``--fault-rate``) reach
deliveries as the seller's side would see them: ``unavailable``, ``throttle`` and ``reset`` keep a delivery
from arriving (it is retried), ``drop`` delivers it and loses the answer (it is delivered again), ``slow``
delivers it late.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from media_upload.sandbox.faults import FaultDice

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """One message to post: its raw body, its headers (the signature among them), and what the log shows of
    it (a video id and a state, never a secret)."""

    body: bytes
    headers: Mapping[str, str]
    label: Mapping[str, Any] = field(default_factory=dict)


def answered_200(response: requests.Response) -> bool:
    return response.status_code == 200


class PushQueue:
    """Posts deliveries to ``url`` and runs timed jobs, on background threads, until :meth:`close`.

    ``retry_delay(attempt)`` is the wait before the delivery after a failed ``attempt`` (1 is the first), or
    None to give up; ``accepted`` decides whether an answer counts as delivered.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        clock: Callable[[], float],
        dice: FaultDice,
        retry_delay: Callable[[int], float | None],
        accepted: Callable[[requests.Response], bool] = answered_200,
        timeout: float = 10.0,
        senders: int = 4,
    ) -> None:
        self.url = url
        self.name = name
        self.clock = clock
        self.dice = dice
        self.retry_delay = retry_delay
        self.accepted = accepted
        self.timeout = timeout
        #: Every delivery attempt, newest last: the delivery's label, attempt, outcome, when.
        self.log: deque[dict[str, Any]] = deque(maxlen=5000)
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closed = False
        self._senders = ThreadPoolExecutor(max_workers=senders, thread_name_prefix=f"{name}-push")
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name=f"{name}-push", daemon=True)
        self._thread.start()

    def call_at(self, due: float, job: Callable[[], None]) -> None:
        """Run ``job`` on the queue's thread once the clock reaches ``due`` (keep it short: it blocks others)."""
        with self._wake:
            heapq.heappush(self._due, (due, next(self._order), job))
            self._wake.notify()

    def send(self, delivery: Delivery, due: float | None = None) -> None:
        """Deliver at ``due`` (now when None), then again on the retry schedule until accepted."""
        self._post_at(self.clock() if due is None else due, delivery, 1)

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(5)
        self._senders.shutdown(wait=False, cancel_futures=True)
        self._session.close()

    def _post_at(self, due: float, delivery: Delivery, attempt: int) -> None:
        self.call_at(due, lambda: self._submit(delivery, attempt))

    def _submit(self, delivery: Delivery, attempt: int) -> None:
        self._senders.submit(self._deliver, delivery, attempt)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._closed and (not self._due or self._due[0][0] > self.clock()):
                    # Short waits: a test's clock may jump ahead without waking this thread.
                    self._wake.wait(0.25 if not self._due else min(0.25, self._due[0][0] - self.clock()))
                if self._closed:
                    return
                _, _, job = heapq.heappop(self._due)
            try:
                job()
            except Exception:  # one broken job must not stop every later push
                log.exception("%s push job failed", self.name)

    def _deliver(self, delivery: Delivery, attempt: int) -> None:
        fault = self.dice.roll("push")
        outcome: str
        if fault in ("unavailable", "throttle", "reset"):
            outcome, delivered = f"not sent ({fault})", False
        else:
            if fault == "slow":
                time.sleep(self.dice.slow_seconds)
            try:
                response = self._session.post(
                    self.url, data=delivery.body, headers=dict(delivery.headers), timeout=self.timeout
                )
                delivered = self.accepted(response)
                outcome = f"HTTP {response.status_code}"
                if not delivered and 200 <= response.status_code < 300:
                    outcome += " (not accepted)"
            except requests.RequestException as exc:
                outcome, delivered = type(exc).__name__, False
            if fault == "drop" and delivered:
                outcome, delivered = "answer lost (drop)", False
        self.log.append({**delivery.label, "attempt": attempt, "outcome": outcome, "at": self.clock()})
        if delivered:
            return
        delay = self.retry_delay(attempt)
        if delay is None:
            log.warning("%s push %s given up after %d attempts", self.name, dict(delivery.label), attempt)
        else:
            self._post_at(self.clock() + delay, delivery, attempt + 1)
