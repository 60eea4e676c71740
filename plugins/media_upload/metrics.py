"""Metrics through Airflow's own ``Stats``, every name under one prefix, ``media_upload.``.

Airflow's ``[metrics]`` settings decide where they go (StatsD, Datadog, OpenTelemetry, or nowhere) and
prefix every name (``statsd_prefix``, ``airflow`` by default): ``media_upload.bytes.sent`` arrives as
``airflow.media_upload.bytes.sent``. :data:`METRICS` is the one list of names; docs/observability.md
lists the same names (a test checks both ways).

Three rules hold here so callers need not think about them:

* a metric never fails an upload: every function swallows (and logs at debug) whatever goes wrong;
* names and tags carry no secret, URL or file path: names are constants, and a metric keeps only the
  tag keys :data:`METRICS` gives it, values cut to a short ``[A-Za-z0-9_.-]`` string;
* the metrics reach the backend from every process that emits them. On Airflow 3.3 only the task runner
  sets up the Task SDK's ``Stats``; the api-server (push receivers) and the triggerer set up core
  Airflow's, so the SDK one would drop everything there. :func:`_ensure_backend` sets it up once per
  process when nobody did, from the same ``[metrics]`` settings.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import threading
from typing import Any, Literal, NamedTuple

log = logging.getLogger(__name__)

#: Every name this provider emits starts with this (after Airflow's own ``statsd_prefix``).
PREFIX = "media_upload."

Kind = Literal["counter", "timer", "gauge"]


class Metric(NamedTuple):
    kind: Kind
    tags: tuple[str, ...]
    why: str


# Names, one constant each, so call sites and tests name the same string.
BYTES_SENT = "media_upload.bytes.sent"
BLOCKS_SENT = "media_upload.blocks.sent"
BLOCKS_RETRIED = "media_upload.blocks.retried"
UPLOADS_COMMITTED = "media_upload.uploads.committed"
COMMITS_RECONCILED = "media_upload.commits.reconciled"
VIDEOS_MADE = "media_upload.videos.made"
VIDEOS_REJECTED = "media_upload.videos.rejected"
VIDEOS_ATTACHED = "media_upload.videos.attached"
AUDIT_WAIT = "media_upload.audit.wait"
AUDIT_LOOKS = "media_upload.audit.looks"
CATALOG_ROWS = "media_upload.catalog.rows"
CATALOG_ROWS_ATTENTION = "media_upload.catalog.rows.attention"
CATALOG_ROWS_FAILED = "media_upload.catalog.rows.failed"
PUSH_RECEIVED = "media_upload.push.received"
PUSH_REFUSED = "media_upload.push.refused"
TOKEN_REFRESHED = "media_upload.token.refreshed"
THROTTLE_WAITED = "media_upload.throttle.waited"
BUDGET_WAIT = "media_upload.budget.wait"

#: The documented list: name → kind, tags, and why anyone would watch it.
METRICS: dict[str, Metric] = {
    BYTES_SENT: Metric("counter", ("platform", "conn_id"), "video bytes the platform acknowledged"),
    BLOCKS_SENT: Metric("counter", ("platform", "conn_id"), "blocks (parts) the platform acknowledged"),
    BLOCKS_RETRIED: Metric("counter", ("platform", "conn_id"), "block sends tried again after a failure"),
    UPLOADS_COMMITTED: Metric("counter", ("platform", "conn_id"), "uploads committed into a video"),
    COMMITS_RECONCILED: Metric(
        "counter", ("platform", "conn_id"), "commits whose answer was lost, asked about and found done"
    ),
    VIDEOS_MADE: Metric("counter", ("platform", "conn_id"), "videos whose audit or transcoding passed"),
    VIDEOS_REJECTED: Metric("counter", ("platform", "conn_id"), "videos the platform refused for good"),
    VIDEOS_ATTACHED: Metric("counter", ("platform", "conn_id"), "videos put on their product"),
    AUDIT_WAIT: Metric("timer", ("platform", "outcome"), "time from the commit to the settled verdict"),
    AUDIT_LOOKS: Metric("counter", ("platform", "outcome"), "state looks the deferred waits made"),
    CATALOG_ROWS: Metric("counter", ("dag_id",), "manifest rows a catalog run reported on"),
    CATALOG_ROWS_ATTENTION: Metric("counter", ("dag_id",), "catalog rows a person has to decide"),
    CATALOG_ROWS_FAILED: Metric("counter", ("dag_id",), "catalog rows whose video did not get done"),
    PUSH_RECEIVED: Metric("counter", ("platform",), "platform pushes the receivers took"),
    PUSH_REFUSED: Metric("counter", ("platform", "status"), "platform pushes refused, by HTTP status"),
    TOKEN_REFRESHED: Metric("counter", ("platform", "conn_id", "outcome"), "refused access tokens renewed"),
    THROTTLE_WAITED: Metric("counter", ("platform", "conn_id"), "call-limit answers, each waited out"),
    BUDGET_WAIT: Metric("timer", ("platform", "conn_id"), "time a call waited for the shared call budget"),
}

#: Every tag key in use: none of them can hold a secret, a URL or a path.
TAG_KEYS = frozenset(tag for metric in METRICS.values() for tag in metric.tags)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_TAG_MAX = 64

_init_lock = threading.Lock()
_init_pid: int | None = None
_warned: set[str] = set()


def _ensure_backend() -> Any:
    """Airflow's SDK ``Stats``, set up from ``[metrics]`` in this process if nobody did (once per pid)."""
    global _init_pid
    from airflow.sdk.observability.stats import Stats

    if _init_pid == os.getpid():
        return Stats
    with _init_lock:
        if _init_pid != os.getpid():
            try:
                _initialize_if_needed(Stats)
            finally:
                _init_pid = os.getpid()
    return Stats


def _initialize_if_needed(stats: Any) -> None:
    from airflow.sdk.observability.metrics import stats_utils

    try:  # Airflow 3.3+: module-level singleton, set up by the task runner only.
        from airflow.sdk._shared.observability.metrics import stats as module
    except ImportError:  # pragma: no cover - layout we do not know: leave Stats as Airflow made it
        return
    if hasattr(module, "_factory"):
        if module._factory is None:
            from airflow.sdk.configuration import conf

            module.initialize(
                factory=stats_utils.get_stats_factory(),
                export_legacy_names=conf.getboolean("metrics", "legacy_names_on", fallback=True),
            )
        return
    # Airflow 3.2: a metaclass singleton; importing the SDK's serde usually set it up already.
    if type.__getattribute__(stats, "factory") is None:
        stats.initialize(factory=stats_utils.get_stats_factory(stats))  # type: ignore[call-arg]


def _name(name: str) -> str:
    full = name if name.startswith(PREFIX) else PREFIX + name
    if full not in METRICS and full not in _warned:
        _warned.add(full)
        log.warning("metric %s is not in media_upload.metrics.METRICS; add it there and to the docs", full)
    return full


def _tags(name: str, tags: dict[str, Any]) -> dict[str, str] | None:
    """The metric's documented keys only, values short and plain: never a secret, a URL or a path."""
    known = METRICS[name].tags if name in METRICS else ()
    clean = {
        key: _UNSAFE.sub("_", str(value))[:_TAG_MAX]
        for key, value in tags.items()
        if key in known and value is not None and value != ""
    }
    return clean or None


def incr(name: str, count: int = 1, **tags: Any) -> None:
    """Add ``count`` to a counter (0 too: the series then exists for alerts); never raises."""
    try:
        _ensure_backend().incr(full := _name(name), int(count), tags=_tags(full, tags))
    except Exception:
        log.debug("metric %s not sent", name, exc_info=True)


def timing(name: str, elapsed: float | datetime.timedelta, **tags: Any) -> None:
    """Record a duration, given in seconds or as a timedelta (backends get milliseconds); never raises."""
    try:
        if not isinstance(elapsed, datetime.timedelta):
            elapsed = datetime.timedelta(seconds=max(0.0, float(elapsed)))
        _ensure_backend().timing(full := _name(name), elapsed, tags=_tags(full, tags))
    except Exception:
        log.debug("metric %s not sent", name, exc_info=True)


def gauge(name: str, value: float, **tags: Any) -> None:
    """Set a gauge; never raises."""
    try:
        _ensure_backend().gauge(full := _name(name), float(value), tags=_tags(full, tags))
    except Exception:
        log.debug("metric %s not sent", name, exc_info=True)


def reset() -> None:
    """Check again, at the next metric, whether this process's ``Stats`` is set up (tests)."""
    global _init_pid
    with _init_lock:
        _init_pid = None
