"""Push, not poll: the platforms' video state messages, from the receiver to the waiting triggers.

Lazada's "Short Video State Update" and Huawei Cloud VOD's MFS event notifications take the same path; the
steps below name Lazada's, and :func:`receive_vod` does the same for VOD (``auth_sign`` over
``VOD_{auth_timestamp}_{message}`` with the connection's ``push_secret``, the tenant's authentication key).

1. Lazada posts a "Short Video State Update" (message type 7) to the seller app's callback URL, the
   receiver route of this provider's plugin on the api-server. The route is open to the internet, so it
   refuses cheaply: a body over :data:`MAX_BODY_BYTES` before it is read, and every message whose
   signature does not hold with one answer, whatever the connection id (connections looked up, found or
   not, are remembered a while). :func:`receive` checks the signature against the named ``lazada``
   connection's app key and secret, the seller against its ``seller_id`` and the date against a
   freshness window that still admits Lazada's redeliveries, and keeps the state in the ledger database
   (once: a redelivered message changes nothing). It answers at once; Lazada redelivers what is not
   answered with HTTP 200.
2. Each audit trigger whose connection has ``push`` enabled waits on the :class:`VideoStateInbox` of its
   triggerer process instead of polling GetVideo. One inbox serves every trigger of the process with one
   query of the message table per ``interval``, however many videos wait. When no message comes within
   the connection's ``push_poll_seconds``, the trigger polls GetVideo once and waits again, so a receiver
   that cannot be reached slows the wait down but never stops it.

Why not an ``AssetWatcher``: its event triggers start DAG runs; a message here must wake one task that
already waits, in the run that uploaded the video.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from media_upload.ledger import PushedState, UploadLedger
from media_upload.masking import printable
from media_upload.protocols.lazada import VIDEO_STATE_MESSAGE, VideoState, push_signature

if TYPE_CHECKING:
    from media_upload.hooks.huawei_vod import VodCredentials
    from media_upload.hooks.lazada import LazadaCredentials

A = TypeVar("A")

log = logging.getLogger(__name__)

#: A message is a few hundred bytes; anything much larger is not Lazada's, and is refused unread.
MAX_BODY_BYTES = 64 * 1024
#: How old a message may be: Lazada delivers one again 12 times, 30 minutes apart, so the last try comes
#: six hours after the first; an hour more for queues and clocks. Older messages are replays, not kept.
MAX_AGE_SECONDS = 7 * 3600
#: With push on, a wait asks the platform only after this long without a pushed state (extra
#: ``push_poll_seconds``).
DEFAULT_PUSH_POLL_SECONDS = 300.0
#: Every this many kept messages, the receiver forgets states older than MAX_AGE_SECONDS.
PRUNE_EVERY = 500
_received = itertools.count(1)
#: How far ahead of this clock a message may be dated (the sender's clock may run a little fast).
MAX_AHEAD_SECONDS = 600
_CONN_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,250}$")
_ASSET_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
#: The one answer to every message refused before its signature holds: it says nothing of which
#: connections exist, what type they are or what they lack.
UNAUTHENTICATED = "not a signed message for this receiver"


class PushRefused(Exception):
    """A message the receiver does not keep: ``status`` is the HTTP answer, the message says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Accounts(Generic[A]):
    """Connections read in the last few seconds, found or not, so a burst of messages (or a stranger's
    guesses at a connection id) costs one secrets-backend lookup per id and window; bounded in size."""

    def __init__(
        self,
        read: Callable[[str], A | None],
        ttl: float = 10.0,
        missing_ttl: float = 60.0,
        size: int = 1024,
    ) -> None:
        self.read = read
        self.ttl, self.missing_ttl, self.size = ttl, missing_ttl, size
        self._seen: OrderedDict[str, tuple[float, A | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, conn_id: str) -> A | None:
        with self._lock:
            seen = self._seen.get(conn_id)
        if seen is not None:
            at, account = seen
            if time.monotonic() - at < (self.ttl if account is not None else self.missing_ttl):
                return account
        account = self.read(conn_id) if _CONN_ID.match(conn_id) else None
        with self._lock:
            self._seen[conn_id] = (time.monotonic(), account)
            self._seen.move_to_end(conn_id)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return account

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def _read_account(conn_id: str) -> LazadaCredentials | None:
    """The app and seller of a ``lazada`` connection with an app key and secret, else None (logged, as a
    refusal's cause is not told to the sender)."""
    from media_upload.hooks.lazada import LazadaHook

    return _credentials(LazadaHook, conn_id)


def _read_vod_account(conn_id: str) -> VodCredentials | None:
    """The project of a ``huawei_vod`` connection with a ``push_secret``, else None (logged). Like
    Lazada's, notifications are kept whether or not ``push`` is on: the switch decides what waits read."""
    from media_upload.hooks.huawei_vod import HuaweiVodHook

    account = _credentials(HuaweiVodHook, conn_id)
    if account is not None and not account.push_secret:
        log.warning(
            "Notifications for connection %r cannot be checked: its extra has no push_secret", conn_id
        )
        return None
    return account


def _credentials(hook_class: Any, conn_id: str) -> Any:
    from airflow.sdk.exceptions import AirflowException

    try:
        return hook_class(conn_id).credentials
    except AirflowException as exc:  # missing, another type, no key or secret: says which, never a secret
        log.warning("Pushes for connection %r cannot be checked: %s", conn_id, exc)
        return None


ACCOUNTS: _Accounts[LazadaCredentials] = _Accounts(_read_account)
VOD_ACCOUNTS: _Accounts[VodCredentials] = _Accounts(_read_vod_account)


#: Signs nothing real: a missing connection's message is checked against it, so a refusal takes as long
#: whether or not the connection exists.
_DECOY = ("0", "decoy-secret-" + secrets.token_hex(16))


def check_signature(conn_id: str, body: bytes, authorization: str | None) -> LazadaCredentials:
    """The connection whose app signed ``body``; :class:`PushRefused` (413, or 401 with one answer for
    every other cause) otherwise. Header bytes are compared as bytes: odd characters are just wrong."""
    if len(body) > MAX_BODY_BYTES:
        raise PushRefused(413, f"body larger than {MAX_BODY_BYTES} bytes")
    account = ACCOUNTS.get(conn_id)
    app_key, app_secret = (account.app_key, account.app_secret) if account else _DECOY
    expected = push_signature(app_key, app_secret, body).encode()
    given = (authorization or "").strip().lower().encode("latin-1", "replace")
    if not hmac.compare_digest(given, expected) or account is None:
        raise PushRefused(401, UNAUTHENTICATED)
    return account


def parse_message(account: LazadaCredentials, body: bytes, now: float | None = None) -> PushedState | None:
    """The video state in a message whose signature holds, or None for another message type or a
    message older than the freshness window (answered, not kept).

    Raises :class:`PushRefused`: 400 not a message or dated ahead of this clock, 403 a seller other
    than the connection's (or a connection without one).
    """
    try:
        message = json.loads(body)
        seller_id, message_type = str(message["seller_id"]), int(message["message_type"])
    except (ValueError, TypeError, KeyError) as exc:
        raise PushRefused(400, f"not a push message ({type(exc).__name__})") from None
    if account.seller_id is None:
        raise PushRefused(403, "the connection has no seller_id in its extra, so no seller is known")
    if seller_id != account.seller_id:
        raise PushRefused(403, f"seller {printable(seller_id[:32])!r} is not the connection's seller")
    if message_type != VIDEO_STATE_MESSAGE:
        return None
    try:
        data = message["data"]
        video_id, state = str(int(data["videoId"])), VideoState(str(data["state"]))
        changed_at = int(data["timestamp"])
        pushed_at = int(message["timestamp"]) if message.get("timestamp") is not None else None
    except (ValueError, TypeError, KeyError) as exc:
        raise PushRefused(400, f"not a video state message ({type(exc).__name__})") from None
    sent = pushed_at / 1000 if pushed_at is not None else changed_at
    if not _fresh("Lazada", video_id, sent, now):
        return None
    return PushedState(account.app_key, seller_id, video_id, state.value, changed_at, pushed_at)


def _fresh(platform: str, video_id: str, sent: float, now: float | None) -> bool:
    """Whether a message sent at ``sent`` (epoch seconds) is kept: too old is answered and dropped (a
    replay, or a redelivery no wait still needs), dated ahead of this clock is refused."""
    age = (time.time() if now is None else now) - sent
    if age < -MAX_AHEAD_SECONDS:
        raise PushRefused(400, f"dated {-age:.0f} s ahead of this receiver's clock")
    if age > MAX_AGE_SECONDS:
        log.warning(
            "%s push for video %s is %.0f s old, older than %d s: not kept",
            platform,
            video_id,
            age,
            MAX_AGE_SECONDS,
        )
        return False
    return True


def receive(ledger: UploadLedger, conn_id: str, body: bytes, authorization: str | None) -> dict[str, Any]:
    """Check and keep one Lazada message; the answer's body. Raises :class:`PushRefused`."""
    return _keep(ledger, "Lazada", parse_message(check_signature(conn_id, body, authorization), body))


#: The fields VOD's account is kept under in the pushed states table (beside Lazada's app and seller).
VOD_ACCOUNT_KEY = "huawei_vod"


def vod_account(project_id: str) -> tuple[str, str]:
    """How a VOD project's notifications are filed: waits of that project read only those."""
    return VOD_ACCOUNT_KEY, project_id


def check_vod_signature(
    conn_id: str, body: bytes, timestamp: str | None, signature: str | None
) -> tuple[VodCredentials, str]:
    """The connection whose authentication key signed the notification, and the signed ``message``;
    :class:`PushRefused` otherwise (413; 401 with one answer for every other cause, before any parsing
    that could tell a stranger something)."""
    from media_upload.protocols.huawei_vod import notification_signature

    if len(body) > MAX_BODY_BYTES:
        raise PushRefused(413, f"body larger than {MAX_BODY_BYTES} bytes")
    account = VOD_ACCOUNTS.get(conn_id)
    key = account.push_secret if account and account.push_secret else _DECOY[1]
    message = _signed_message(body)
    stamp = (timestamp or "").strip()
    expected = notification_signature(key, stamp, message or "").encode()
    given = (signature or "").strip().lower().encode("latin-1", "replace")
    if not hmac.compare_digest(given, expected) or account is None or message is None or not stamp:
        raise PushRefused(401, UNAUTHENTICATED)
    return account, message


def _signed_message(body: bytes) -> str | None:
    """What ``auth_sign`` covers: the body's ``message`` property when the body wraps the event in one,
    else the body itself (both shapes are accepted; see docs/huawei-vod-sandbox.md)."""
    try:
        text = body.decode()
        wrapper = json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read: a stranger's
        return None
    if isinstance(wrapper, dict) and isinstance(wrapper.get("message"), str):
        return str(wrapper["message"])
    return text


def parse_vod_notification(
    account: VodCredentials, message: str, timestamp: str, now: float | None = None
) -> PushedState | None:
    """The outcome an authenticated notification reports (``transcodeComplete:SUCCEED``...), or None for
    an event no wait listens to, or one older than the freshness window. Raises :class:`PushRefused` 400
    for a message that is not a VOD event, or is dated ahead of this clock."""
    from media_upload.protocols.huawei_vod import NOTIFIED_EVENTS, pushed_state

    try:
        event = json.loads(message)
        event_type = str(event["event_type"])
        stamp = int(timestamp)
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise PushRefused(400, f"not a VOD event notification ({type(exc).__name__})") from None
    if event_type not in NOTIFIED_EVENTS:
        return None
    try:
        info = event[NOTIFIED_EVENTS[event_type]]
        asset_id, status = str(info["asset_id"]), str(info["status"])
    except (TypeError, KeyError) as exc:
        raise PushRefused(400, f"not a {event_type} notification ({type(exc).__name__})") from None
    if not _ASSET_ID.match(asset_id) or status not in ("SUCCEED", "FAILED"):
        raise PushRefused(400, f"not a {event_type} notification (asset or status)")
    outcome = status
    if event_type == "reviewComplete" and status == "SUCCEED":  # the review ran: its suggestion decides
        outcome = str(info.get("suggestion") or "")
        if outcome not in ("PASS", "BLOCK", "REVIEW"):
            raise PushRefused(400, "not a reviewComplete notification (suggestion)")
    sent = stamp / 1000 if stamp > 10**11 else stamp  # milliseconds or seconds: VOD does not say
    if not _fresh("Huawei VOD", asset_id, sent, now):
        return None
    state = pushed_state(event_type, outcome)
    return PushedState(*vod_account(account.project_id), asset_id, state, int(sent), int(sent * 1000))


def receive_vod(
    ledger: UploadLedger, conn_id: str, body: bytes, timestamp: str | None, signature: str | None
) -> dict[str, Any]:
    """Check and keep one VOD notification; the answer's body. Raises :class:`PushRefused`."""
    account, message = check_vod_signature(conn_id, body, timestamp, signature)
    return _keep(ledger, "Huawei VOD", parse_vod_notification(account, message, str(timestamp)))


def _keep(ledger: UploadLedger, platform: str, state: PushedState | None) -> dict[str, Any]:
    """Keep an authenticated state once (a redelivery changes nothing); now and then, forget old ones."""
    if state is None:
        return {"kept": False, "reason": "not a video state message, or older than the freshness window"}
    new = ledger.add_pushed_state(state)
    if new:
        log.info("%s pushed: video %s is %s", platform, state.video_id, state.state)
    if next(_received) % PRUNE_EVERY == 0:  # states no wait read in time: the table stays small
        cutoff = datetime.now(UTC) - timedelta(seconds=MAX_AGE_SECONDS)
        if pruned := ledger.prune_pushed_states(cutoff.isoformat(timespec="milliseconds")):
            log.info("Forgot %d pushed state(s) older than %d hours", pruned, MAX_AGE_SECONDS // 3600)
    return {"kept": True, "new": new, "video_id": state.video_id, "state": state.state}


def latest_states(
    states: Collection[PushedState], weight: Callable[[str], int] | None = None
) -> dict[str, str]:
    """Each video's deciding pushed state: the heaviest by ``weight`` (VOD's events, whose order says
    little), then the newest (by when it changed; a terminal Lazada state wins a tie)."""
    from media_upload.protocols.lazada import TERMINAL_VIDEO_STATES

    def rank(state: PushedState) -> tuple[int, int, bool, int]:
        heavy = weight(state.state) if weight else 0
        return heavy, state.changed_at, state.state in TERMINAL_VIDEO_STATES, state.id

    latest: dict[str, PushedState] = {}
    for state in states:
        seen = latest.get(state.video_id)
        if seen is None or rank(state) > rank(seen):
            latest[state.video_id] = state
    return {video_id: state.state for video_id, state in latest.items()}


def push_settings(option: Callable[[str], str | None], where: str) -> tuple[bool, float]:
    """A connection's ``push`` switch and ``push_poll_seconds`` (how long a wait goes without a pushed
    state before it asks the platform), from its extra; ``where`` names the connection in errors."""
    from airflow.sdk.exceptions import AirflowFailException

    push = (option("push") or "").strip().lower() in ("1", "true", "yes", "on")
    try:
        poll_seconds = float(option("push_poll_seconds") or DEFAULT_PUSH_POLL_SECONDS)
    except ValueError:
        raise AirflowFailException(
            f"{where}: push_poll_seconds {option('push_poll_seconds')!r} is not a number of seconds"
        ) from None
    return push, poll_seconds


# ------------------------------------------------------------------------------------- the triggerer side


@dataclass(eq=False)
class _Waiter:
    account: tuple[str, str]
    video_ids: frozenset[str]
    after_id: int
    found: asyncio.Future[list[PushedState]]
    fresh: bool = True

    def wants(self, state: PushedState) -> bool:
        return state.id > self.after_id and state.account == self.account and state.video_id in self.video_ids


class VideoStateInbox:
    """Pushed states for every trigger of one triggerer process that waits on one ledger database.

    Each ``interval`` it asks the message table once for what arrived since its last look, plus, for
    triggers that just started waiting, what arrived for their videos before (a message may come before
    the trigger does). Database work runs on one thread of its own, off the event loop.
    """

    def __init__(self, ledger_conn_id: str, interval: float = 0.5) -> None:
        self.ledger_conn_id = ledger_conn_id
        self.interval = interval
        self._waiters: set[_Waiter] = set()
        self._poller: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="push-inbox")
        self._ledger: UploadLedger | None = None
        self._cursor: int | None = None

    async def wait(
        self, account: tuple[str, str], video_ids: Collection[str], after_id: int, timeout: float
    ) -> list[PushedState]:
        """States pushed for ``video_ids`` of ``account`` with an id above ``after_id``; waits up to
        ``timeout`` seconds for the first, and returns an empty list when none came."""
        waiter = _Waiter(account, frozenset(video_ids), after_id, asyncio.get_running_loop().create_future())
        self._waiters.add(waiter)
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.found), timeout)
        except TimeoutError:
            return []
        finally:
            self._waiters.discard(waiter)

    async def _run(self, work: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    async def _poll(self) -> None:
        pause = self.interval
        while self._waiters:
            try:
                await self._look()
                pause = self.interval
            except Exception as exc:  # the triggers' fallback polling covers a database that is away
                pause = min(pause * 4, 60.0)
                log.warning("Reading pushed video states failed; trying again in %.0f s: %s", pause, exc)
                if self._ledger is not None:
                    await self._run(self._ledger.close)
                self._ledger = None
            await asyncio.sleep(pause)

    async def _look(self) -> None:
        if self._ledger is None:
            # Looked up on the event loop: in the triggerer, connections come through its supervisor.
            from airflow.sdk import BaseHook
            from airflow.sdk.exceptions import AirflowNotFoundException

            try:
                connection = await BaseHook.aget_connection(self.ledger_conn_id)
            except AirflowNotFoundException:
                connection = None  # the default ledger falls back to SQLite in AIRFLOW_HOME
            self._ledger = await self._run(UploadLedger, self.ledger_conn_id, connection)
        ledger = self._ledger
        if self._cursor is None:
            self._cursor = await self._run(ledger.last_pushed_id)
        fresh = [waiter for waiter in self._waiters if waiter.fresh]
        found: list[PushedState] = []
        if fresh:
            since = min(waiter.after_id for waiter in fresh)
            video_ids = sorted(set().union(*(waiter.video_ids for waiter in fresh)))
            for start in range(0, len(video_ids), 500):
                found += await self._run(ledger.pushed_states, since, video_ids[start : start + 500])
            for waiter in fresh:
                waiter.fresh = False
        arrived = await self._run(ledger.pushed_states, self._cursor)
        if arrived:
            self._cursor = arrived[-1].id
        found += arrived
        for waiter in list(self._waiters):
            mine = sorted(
                {state.id: state for state in found if waiter.wants(state)}.values(), key=lambda s: s.id
            )
            if mine and not waiter.found.done():
                waiter.found.set_result(mine)


_inboxes: dict[tuple[int, str], VideoStateInbox] = {}


def inbox(ledger_conn_id: str) -> VideoStateInbox:
    """The inbox of this event loop (the triggerer's) for ``ledger_conn_id``."""
    key = (id(asyncio.get_running_loop()), ledger_conn_id)
    if key not in _inboxes:
        _inboxes[key] = VideoStateInbox(ledger_conn_id)
    return _inboxes[key]
