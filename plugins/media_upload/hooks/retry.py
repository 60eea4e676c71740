"""Retry policy shared by the platform hooks: jittered exponential backoff, a floor after throttling."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import requests
import tenacity

from media_upload import metrics

Predicate = Callable[[BaseException], bool]
OnThrottle = Callable[[BaseException], None] | None
#: The metric a retry counts under, with its tags, set by the caller around calls worth counting (a block's
#: send): the hooks' policies are shared by every call, and only the caller knows which call this is.
_counted_as: ContextVar[tuple[str, dict[str, Any]] | None] = ContextVar("media_upload_retries", default=None)


@contextmanager
def count_retries(metric: str, **tags: Any) -> Iterator[None]:
    """Every retry of a call made inside this block adds one to ``metric`` (with ``tags``)."""
    token = _counted_as.set((metric, tags))
    try:
        yield
    finally:
        _counted_as.reset(token)


class WarningLog(Protocol):
    """Any logger: the stdlib's, or the structlog one Airflow gives hooks."""

    def warning(self, event: Any, *args: Any, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a hook repeats a failed call.

    :param max_attempts: tries per call, counting the first.
    :param backoff_seconds: base of the jittered exponential backoff.
    :param backoff_max_seconds: longest wait between tries.
    :param throttle_pause_seconds: shortest wait after the platform said "too fast".
    """

    max_attempts: int = 5
    backoff_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    throttle_pause_seconds: float = 1.0

    def _wait(self, throttled: Predicate) -> Callable[[tenacity.RetryCallState], float]:
        exponential = tenacity.wait_random_exponential(
            multiplier=self.backoff_seconds, max=self.backoff_max_seconds
        )

        def wait(state: tenacity.RetryCallState) -> float:
            delay = exponential(state)
            exc = state.outcome.exception() if state.outcome else None
            if exc is not None and throttled(exc):
                pause = self.throttle_pause_seconds
                delay = max(delay, pause + random.uniform(0, pause / 2))
            return delay

        return wait

    def _arguments(
        self, retryable: Predicate, throttled: Predicate, log: WarningLog, on_throttle: OnThrottle
    ) -> dict[str, object]:
        def retry(exc: BaseException) -> bool:
            if on_throttle is not None and throttled(exc):
                on_throttle(exc)  # every throttle answer, the last try's too: the deployment pauses
            return retryable(exc)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("Attempt %d failed (%s); retrying in %.1f s", state.attempt_number, exc, wait)
            if (counted := _counted_as.get()) is not None:
                metrics.incr(counted[0], **counted[1])

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": self._wait(throttled),
            "retry": tenacity.retry_if_exception(retry),
            "before_sleep": before_sleep,
            "reraise": True,
        }

    def retrying(
        self, retryable: Predicate, throttled: Predicate, log: WarningLog, on_throttle: OnThrottle = None
    ) -> tenacity.Retrying:
        """Retries as this policy says; ``on_throttle`` hears of every throttle answer (to share the ban)."""
        return tenacity.Retrying(**self._arguments(retryable, throttled, log, on_throttle))  # type: ignore[arg-type]

    def aretrying(
        self, retryable: Predicate, throttled: Predicate, log: WarningLog, on_throttle: OnThrottle = None
    ) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self._arguments(retryable, throttled, log, on_throttle))  # type: ignore[arg-type]


def never_sent(exc: BaseException) -> bool:
    """True when a ``requests`` or ``aiohttp`` failure happened before the request reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        return "NewConnectionError" in repr(exc)
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiohttp ships with Airflow
        return False
    return isinstance(exc, aiohttp.ClientConnectorError)
