"""The VOD emulator's MFS event notifications: the end of each asset's processing, signed and retried.

VOD posts a JSON message to the callback address of the console's notification settings when a media
file is created (``createComplete``) and when its transcoding ends (``transcodeComplete``, ``SUCCEED`` or
``FAILED``); with an authentication key, ``auth_timestamp`` and ``auth_sign`` (hex HMAC-SHA256 of
``VOD_{timestamp}_{message}``) ride in the headers. Here an asset that transcodes is notified twice (created
at confirm, transcoded when its time is up), one that does not once (created, when it is ready or failed).
VOD does not publish its retry schedule: a delivery that is not answered HTTP 200 is tried again after each
of ``retry_seconds`` (docs/huawei-vod-sandbox.md). Delivery, retries and random faults are the shared
:class:`~media_upload.sandbox.push_queue.PushQueue`'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from media_upload.protocols.huawei_vod import notification, notification_signature
from media_upload.sandbox.faults import FaultDice
from media_upload.sandbox.push_queue import Delivery, PushQueue

#: ``(event_type, status, information, when it is due)`` of each notification an asset's processing sends.
Notice = tuple[str, str, Mapping[str, Any], float]


@dataclass
class NotifySettings:
    url: str
    #: The authentication key; None: notifications go unsigned (as VOD sends them without a key).
    key: str | None
    retry_seconds: tuple[float, ...]
    timeout: float = 10.0


class NotificationSender:
    """Sends each asset's notifications when they are due, once each (plus retries)."""

    def __init__(
        self,
        settings: NotifySettings,
        notices_of: Callable[[str], list[Notice]],
        clock: Callable[[], float],
        dice: FaultDice,
    ) -> None:
        self.settings = settings
        self.notices_of = notices_of
        self.clock = clock
        self._sent: set[tuple[str, str]] = set()
        delays = settings.retry_seconds
        self.queue = PushQueue(
            settings.url,
            name="huawei-vod",
            clock=clock,
            dice=dice,
            retry_delay=lambda attempt: delays[attempt - 1] if attempt <= len(delays) else None,
            timeout=settings.timeout,
        )

    @property
    def log(self) -> deque[dict[str, Any]]:
        """Every delivery attempt, newest last: asset, event, status, attempt, outcome."""
        return self.queue.log

    def watch(self, asset_id: str) -> None:
        """Look at an asset just confirmed when each of its notifications is due (again when its end was
        moved: each event goes out once, as the asset is when it is due)."""
        for *_, due in self.notices_of(asset_id):
            self.queue.call_at(due, lambda: self._look(asset_id))

    def close(self) -> None:
        self.queue.close()

    def _look(self, asset_id: str) -> None:
        now = self.clock()
        for event_type, status, info, due in self.notices_of(asset_id):
            if due > now or (asset_id, event_type) in self._sent:
                continue
            self._sent.add((asset_id, event_type))
            body, message = notification(event_type, {"asset_id": asset_id, "status": status, **info})
            headers = {"Content-Type": "application/json"}
            if self.settings.key:
                timestamp = str(int(now))
                headers["auth_timestamp"] = timestamp
                headers["auth_sign"] = notification_signature(self.settings.key, timestamp, message)
            label = {"asset_id": asset_id, "event_type": event_type, "status": status}
            self.queue.send(Delivery(body, headers, label))
