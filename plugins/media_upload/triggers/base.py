"""The polling loop every platform trigger shares: growing waits, a budget of consecutive errors."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from media_upload import metrics

#: The shortest time from a trigger's start to its event (``[media_upload] trigger_hand_back_seconds``).
#: A task that defers is reported done by its executor a few seconds after it exits; Airflow 3.3's
#: scheduler takes that late report for a failure of the task it has already queued again
#: (apache/airflow issues 67287 and 72716) and retries it after ``retry_delay``. An event that waits this
#: long lets the report arrive first (measured: five seconds after the exit on a loaded LocalExecutor); a
#: catalog gathers what settles meanwhile into one event.
HAND_BACK_SECONDS = 8.0


async def hand_back(started: float) -> None:
    """Wait until the hand-back time has passed since ``started`` (``time.monotonic()``)."""
    from airflow.sdk import conf

    least = conf.getfloat("media_upload", "trigger_hand_back_seconds", fallback=HAND_BACK_SECONDS)
    await asyncio.sleep(max(0.0, least - (time.monotonic() - started)))


if TYPE_CHECKING:
    from media_upload.hooks.base import PlatformHook


class PollingTrigger(BaseTrigger):
    """Call :meth:`check` until it returns a final event payload.

    The first check comes after ``first_poll_interval`` seconds (the sensor has just checked once itself)
    and each wait grows by half up to ``poll_interval``, so a quick platform is seen quickly and a slow
    one costs few calls (a subclass's :meth:`pause` may end a wait early, on a pushed message). Errors
    count against ``max_consecutive_errors``; errors :meth:`is_permanent`
    calls permanent end the wait at once. Either way the event is ``{"status": "error", "message"}``.
    Subclasses only read: a trigger may run twice after a triggerer restart.
    """

    def __init__(self, poll_interval: float, max_consecutive_errors: int, first_poll_interval: float) -> None:
        super().__init__()
        self.poll_interval = float(poll_interval)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.first_poll_interval = float(first_poll_interval)

    def polling_kwargs(self) -> dict[str, Any]:
        return {
            "poll_interval": self.poll_interval,
            "max_consecutive_errors": self.max_consecutive_errors,
            "first_poll_interval": self.first_poll_interval,
        }

    @property
    def subject(self) -> dict[str, Any]:
        """What every event names (``{"video_id": ...}``, ``{"asset_id": ...}``)."""
        raise NotImplementedError

    async def check(self) -> dict[str, Any] | None:
        """One poll: the final event payload, or None to keep waiting."""
        raise NotImplementedError

    def is_permanent(self, exc: Exception) -> bool:
        """Errors no amount of polling will cure (refused credentials, a bad request)."""
        raise NotImplementedError

    @property
    def hook(self) -> PlatformHook[Any]:
        raise NotImplementedError

    def is_throttled(self, exc: Exception) -> bool:
        """The platform's "too many calls": the hook has paused the connection, so the look is waited
        out and never counts as a failed one."""
        return self.hook.is_throttle(exc)

    async def pause(self, seconds: float) -> None:
        """The wait before the next check; a trigger woken by pushed messages waits for those."""
        await asyncio.sleep(seconds)

    def looked(self, outcome: str) -> None:
        """Count one look at the platform (``read``, ``throttled`` or ``failed``): what waiting costs."""
        try:
            platform = self.hook.conn_type
        except Exception:  # a metric never stops a wait
            platform = None
        metrics.incr(metrics.AUDIT_LOOKS, platform=platform, outcome=outcome)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started, errors = time.monotonic(), 0
        wait = min(self.first_poll_interval, self.poll_interval)
        while True:
            await self.pause(wait)
            wait = min(wait * 1.5, self.poll_interval)
            try:
                payload = await self.check()
            except Exception as exc:
                if self.is_throttled(exc):
                    self.looked("throttled")
                    continue
                self.looked("failed")
                errors += 1
                self.log.warning("Polling %s failed (%d in a row): %s", self.subject, errors, exc)
                if self.is_permanent(exc) or errors >= self.max_consecutive_errors:
                    await hand_back(started)
                    yield TriggerEvent({"status": "error", **self.subject, "message": str(exc)})
                    return
                continue
            self.looked("read")
            errors = 0
            if payload is not None:
                await hand_back(started)
                yield TriggerEvent({**payload, **self.subject})
                return


class StateReader:
    """How a trigger learns the states of one connection's videos on one platform: :meth:`pause` waits
    before a look, :meth:`states` looks. Triggers only read.

    When the connection turns push on (:meth:`push_account`), each pause waits for the platform's pushed
    states (see :mod:`media_upload.push`) up to the connection's ``push_poll_seconds``; a pause that ends
    with a message takes the states from it, one that ends without asks the platform.

    :param conn_id: the platform connection.
    """

    #: Reads in flight at once.
    concurrency = 8
    #: How much each pushed state decides when a video has several (see :func:`media_upload.push.latest_states`).
    push_weight: Callable[[str], int] | None = None

    def __init__(self, conn_id: str) -> None:
        self.conn_id = conn_id
        #: The states the last pause ended with, when pushed; the newest pushed state id seen.
        self.pushed: dict[str, str] = {}
        self._after = 0

    async def push_account(self) -> tuple[tuple[str, str], float] | None:
        """Where the connection's pushed states are filed and how long to wait for one before asking the
        platform; None when the connection does not take pushes."""
        return None

    async def pause(self, video_ids: Sequence[str], seconds: float) -> None:
        self.pushed = {}
        try:
            push = await self.push_account()
        except Exception:  # the look that follows reports it
            push = None
        if push is None:
            await asyncio.sleep(seconds)
            return
        from media_upload.ledger import DEFAULT_CONN_ID
        from media_upload.push import inbox, latest_states

        account, poll_seconds = push
        pushed = await inbox(DEFAULT_CONN_ID).wait(account, video_ids, self._after, poll_seconds)
        if pushed:
            self._after = max(state.id for state in pushed)
            self.pushed = latest_states(pushed, self.push_weight)

    async def states(self, video_ids: Sequence[str]) -> dict[str, str]:
        """The states that ended the last pause if pushed, else :meth:`read`'s."""
        return dict(self.pushed) if self.pushed else await self.read(video_ids)

    async def read(self, video_ids: Sequence[str]) -> dict[str, str]:
        """The states read, ``concurrency`` reads at once. A read that fails in passing (a throttle answer
        under the platform's call limit, a reset) leaves its video for the next look while the others
        count; a permanent error, or no state read at all, is raised."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(video_id: str) -> str:
            async with gate:
                return await self.state(video_id)

        found: dict[str, str] = {}
        failures: list[Exception] = []
        for video_id, result in zip(
            video_ids, await asyncio.gather(*map(one, video_ids), return_exceptions=True), strict=True
        ):
            if isinstance(result, Exception):
                failures.append(result)
            elif isinstance(result, BaseException):  # cancelled: the trigger is stopping
                raise result
            else:
                found[video_id] = result
        permanent = [exc for exc in failures if self.is_permanent(exc)]
        if permanent or (failures and not found):
            raise (permanent or failures)[0]
        return found

    async def state(self, video_id: str) -> str:
        raise NotImplementedError

    def is_permanent(self, exc: Exception) -> bool:
        """Errors no amount of polling will cure (refused credentials, a bad request)."""
        raise NotImplementedError

    @property
    def hook(self) -> PlatformHook[Any]:
        raise NotImplementedError

    def is_throttled(self, exc: Exception) -> bool:
        """The platform's "too many calls": the hook has paused the connection, so the look is waited
        out and never counts as a failed one."""
        return self.hook.is_throttle(exc)
