"""Metrics: through Airflow's own ``Stats`` (a real StatsD client sending to a UDP listener on loopback), one
prefix, only documented tags, never an exception into an upload; each concern counted at its one place;
the docs and the sample Grafana dashboard name exactly the metrics the module defines."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from media_upload import metrics
from media_upload.hooks.retry import RetryPolicy, count_retries
from media_upload.ledger import COMMITTED, NEEDS_ATTENTION, UploadLedger
from media_upload.steps.common import (
    PlatformSteps,
    RunInfo,
    Segment,
    UploadJob,
    chunk_payload,
    send_and_finish,
)

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "observability.md"
DASHBOARD = ROOT / "docs" / "grafana" / "media-upload-dashboard.json"


# ----------------------------------------------------------------------------- capture


class Recorder:
    """Stands for Airflow's ``Stats``: what :mod:`media_upload.metrics` hands it."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any, dict[str, str]]] = []

    def incr(self, stat: str, count: int | None = None, rate: Any = None, *, tags: Any = None) -> None:
        self.sent.append(("incr", stat, count, tags or {}))

    def timing(self, stat: str, dt: Any, *, tags: Any = None) -> None:
        self.sent.append(("timing", stat, dt, tags or {}))

    def gauge(
        self, stat: str, value: float, rate: Any = None, delta: Any = None, *, tags: Any = None
    ) -> None:
        self.sent.append(("gauge", stat, value, tags or {}))

    def of(self, name: str, **tags: str) -> list[tuple[str, str, Any, dict[str, str]]]:
        return [item for item in self.sent if item[1] == name and tags.items() <= item[3].items()]

    def total(self, name: str, **tags: str) -> int:
        return sum(item[2] for item in self.of(name, **tags))


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(metrics, "_ensure_backend", lambda: recorder)
    return recorder


def _airflow_stats(monkeypatch: pytest.MonkeyPatch, factory: Any) -> None:
    """Airflow's SDK ``Stats`` as a process finds it: set up with ``factory``, or not at all (None)."""
    from airflow.sdk._shared.observability.metrics import stats as module

    if hasattr(module, "_factory"):  # Airflow 3.3+
        monkeypatch.setattr(module, "_factory", factory)
        monkeypatch.setattr(module, "_backend", None)
    else:  # Airflow 3.2
        monkeypatch.setattr(module.Stats, "factory", factory)
        monkeypatch.setattr(module.Stats, "instance", None)
    metrics.reset()


class Listener:
    """A StatsD server on 127.0.0.1 that keeps the lines it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.lines: list[str] = []

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def ours(self, count: int, seconds: float = 10.0) -> list[str]:
        """Lines of this provider's metrics, once ``count`` arrived (or the time is up)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [line for line in self.lines if line.startswith("airflow.media_upload.")]
            if len(found) >= count:
                return found
            with suppress(TimeoutError):
                self.lines += self.sock.recv(65535).decode().splitlines()
        return [line for line in self.lines if line.startswith("airflow.media_upload.")]


@pytest.fixture
def statsd(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """StatsD on (with InfluxDB-style tags) to a listener, and Airflow's SDK ``Stats`` set up by nobody: the
    api-server's and the triggerer's case on Airflow 3.3."""
    listener = Listener()
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_ON", "True")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_HOST", "127.0.0.1")
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_PORT", str(listener.port))
    monkeypatch.setenv("AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED", "True")
    _airflow_stats(monkeypatch, None)
    yield listener
    listener.sock.close()
    metrics.reset()


# ------------------------------------------------------------------------ the module


def test_metrics_reach_a_statsd_listener_with_the_prefix_and_tags(statsd):
    metrics.incr(metrics.BYTES_SENT, 4096, platform="lazada", conn_id="lazada_default")
    metrics.timing(metrics.AUDIT_WAIT, 2.5, platform="shopee", outcome="ready")
    metrics.gauge(metrics.CATALOG_ROWS, 7, dag_id="catalog_videos")
    lines = statsd.ours(3)
    assert "airflow.media_upload.bytes.sent,platform=lazada,conn_id=lazada_default:4096|c" in lines
    assert "airflow.media_upload.audit.wait,platform=shopee,outcome=ready:2500.000000|ms" in lines
    assert "airflow.media_upload.catalog.rows,dag_id=catalog_videos:7.0|g" in lines


def test_a_timedelta_is_a_duration_too(statsd):
    metrics.timing(metrics.BUDGET_WAIT, timedelta(milliseconds=1500), platform="lazada", conn_id="c")
    assert statsd.ours(1) == ["airflow.media_upload.budget.wait,platform=lazada,conn_id=c:1500.000000|ms"]


def test_only_the_documented_tags_go_out_and_values_stay_plain(statsd):
    metrics.incr(
        metrics.PUSH_REFUSED,
        platform="lazada",
        status=401,
        token="s3cr3t-token",  # not a tag of this metric: dropped
        url="https://user:pw@example.com/x",
        conn_id="lazada_default",  # a real tag, of other metrics
    )
    metrics.incr(metrics.THROTTLE_WAITED, platform="lazada", conn_id="a,b=c d/e")
    lines = statsd.ours(2)
    assert lines[0] == "airflow.media_upload.push.refused,platform=lazada,status=401:1|c"
    assert lines[1] == "airflow.media_upload.throttle.waited,platform=lazada,conn_id=a_b_c_d_e:1|c"


def test_metrics_go_where_airflow_already_sent_them(monkeypatch):
    """In a task, Airflow set up ``Stats`` itself: the module uses that and does not set up its own."""
    recorder = Recorder()
    _airflow_stats(monkeypatch, lambda *args: recorder)
    metrics.incr(metrics.VIDEOS_MADE, platform="lazada", conn_id="lazada_default")
    assert recorder.of(metrics.VIDEOS_MADE, platform="lazada")


def test_no_warning_per_call(statsd, caplog):
    caplog.set_level(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, metric in metrics.METRICS.items():
            for _ in range(3):
                if metric.kind == "timer":
                    metrics.timing(name, 0.1, platform="lazada")
                elif metric.kind == "gauge":
                    metrics.gauge(name, 1, platform="lazada")
                else:
                    metrics.incr(name, platform="lazada")
    got = statsd.ours(3 * len(metrics.METRICS))
    names = Counter(re.split("[,:]", line)[0] for line in got)
    assert names == {f"airflow.{name}": 3 for name in metrics.METRICS}
    assert [record.getMessage() for record in caplog.records] == []
    assert [str(warning.message) for warning in caught] == []


def test_an_unknown_name_warns_once_and_is_still_sent(sent, caplog):
    caplog.set_level(logging.WARNING, logger=metrics.__name__)
    for _ in range(3):
        metrics.incr("media_upload.not.in.the.table")
    assert len(sent.of("media_upload.not.in.the.table")) == 3
    assert len([record for record in caplog.records if "not.in.the.table" in record.getMessage()]) == 1


def test_a_failing_backend_never_reaches_the_caller(monkeypatch):
    class Broken:
        def incr(self, *args: Any, **kwargs: Any) -> None:
            raise OSError("no route to host")

        timing = gauge = incr

    monkeypatch.setattr(metrics, "_ensure_backend", Broken)
    metrics.incr(metrics.BYTES_SENT, 10, platform="lazada")
    metrics.timing(metrics.AUDIT_WAIT, 1.0, platform="lazada")
    metrics.gauge(metrics.CATALOG_ROWS, 1)

    def no_airflow() -> None:
        raise ImportError("no Airflow here")

    monkeypatch.setattr(metrics, "_ensure_backend", no_airflow)
    metrics.incr(metrics.BYTES_SENT, 10, platform="lazada")


def test_every_name_is_under_the_prefix_and_valid_for_statsd_and_opentelemetry():
    from airflow.sdk._shared.observability.metrics.validators import (
        stat_name_default_handler,
        stat_name_otel_handler,
    )

    for name, metric in metrics.METRICS.items():
        assert name.startswith(metrics.PREFIX)
        assert metric.kind in ("counter", "timer", "gauge") and metric.why
        stat_name_default_handler(f"airflow.{name}")
        stat_name_otel_handler("airflow", name)
    constants = {value for key, value in vars(metrics).items() if key.isupper() and isinstance(value, str)}
    assert set(metrics.METRICS) <= constants  # every name has its constant


# ------------------------------------------------------------------- where they come from


class FakeSteps(PlatformSteps):
    """A platform whose verdicts come from a table and whose blocks fail ``fail_first`` times first."""

    platform = "lazada"
    title = "Lazada"
    transport_error = ConnectionError
    api_error = ValueError
    fail_first = 0

    def verdict(self, job: UploadJob, state: str) -> str | None:
        return {"good": "ready", "bad": "failed"}.get(state)

    def reconcile(self, job: UploadJob) -> UploadJob:
        entry = job.entry(self.ledger)
        self._record(entry, state=COMMITTED, video_id="v-" + job.product)
        return job.with_(video_id="v-" + job.product)

    def send_block(self, job: UploadJob, task: Any, data: bytes) -> str:
        def once() -> str:
            if self.fail_first:
                self.fail_first -= 1
                raise ConnectionError("reset")
            return f"tag-{task.block.part_number}"

        policy = RetryPolicy(max_attempts=3, backoff_seconds=0.0, backoff_max_seconds=0.0)
        return policy.retrying(lambda exc: True, lambda exc: False, logging.getLogger("test"))(once)

    def finish(self, job: UploadJob, *, settle: bool = True) -> UploadJob | None:
        return None


def _job(product: str, source: str = "/nowhere.mp4", size: int = 10, **changes: Any) -> UploadJob:
    return UploadJob(
        "lazada",
        "seller",
        product,
        product.ljust(64, "0"),
        product,
        source,
        "v.mp4",
        size,
        4_000,
        "T",
        **changes,
    )


@pytest.fixture
def steps() -> FakeSteps:
    hook = SimpleNamespace(conn_id="lazada_default")
    return FakeSteps(
        hook, UploadLedger(), RunInfo("catalog_videos", "run-1"), logging.getLogger("test"), "seller"
    )


def _committed(steps: FakeSteps, job: UploadJob, seconds_ago: float = 0.0) -> None:
    """The way a platform commits: claimed (commit_unknown), then the answer recorded."""
    entry = steps._record(job.entry(steps.ledger), state="uploading", upload_id="u-" + job.product)
    claimed = steps.claim_finish(entry)
    assert claimed is not None
    stamp = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat(timespec="milliseconds")
    steps._record(claimed, state=COMMITTED, video_id="v-" + job.product, committed_at=stamp)


def test_commits_verdicts_and_attachments_count_once_each(sent, steps):
    good, bad, lost, reused = (_job(name) for name in ("good", "bad", "lost", "reused"))
    _committed(steps, good, seconds_ago=90)
    _committed(steps, bad)
    entry = steps._record(lost.entry(steps.ledger), state="uploading", upload_id="u-lost")
    steps.claim_finish(entry)
    steps.reconcile(lost)  # the answer was lost: asked about and found done
    tags = {"platform": "lazada", "conn_id": "lazada_default"}
    assert sent.total(metrics.UPLOADS_COMMITTED, **tags) == 3
    assert sent.total(metrics.COMMITS_RECONCILED, **tags) == 1

    for _ in range(2):  # a verdict seen twice is counted once
        steps.audited(good.with_(video_id="v-good"), "good")
        steps.audited(bad.with_(video_id="v-bad"), "bad")
    assert sent.total(metrics.VIDEOS_MADE, **tags) == 1
    assert sent.total(metrics.VIDEOS_REJECTED, **tags) == 1
    [ready] = sent.of(metrics.AUDIT_WAIT, outcome="ready")
    assert ready[3] == {"platform": "lazada", "outcome": "ready"}
    assert timedelta(seconds=90) <= ready[2] < timedelta(seconds=150)  # from the commit, not from now
    assert len(sent.of(metrics.AUDIT_WAIT, outcome="rejected")) == 1

    steps.attached(good)
    steps.attached(good)
    steps.record(reused, state=COMMITTED, video_id="v-good", reason="reuses the video uploaded for good")
    steps.attached(reused)  # another product's video: attached, but no new video and no audit
    assert sent.total(metrics.VIDEOS_ATTACHED, **tags) == 2
    assert sent.total(metrics.VIDEOS_MADE) == 1 and len(sent.of(metrics.AUDIT_WAIT)) == 2
    assert sent.total(metrics.UPLOADS_COMMITTED) == 3


def test_blocks_and_bytes_sent_and_retried_per_platform(sent, steps, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(bytes(10_000))
    job = _job("p1", source=str(video), size=10_000, upload_id="u-p1")
    chunk = chunk_payload(0, 1, [Segment(job, 0, job.plan.count - 1)], in_flight=2)
    steps.fail_first = 2
    result = send_and_finish(chunk, {"lazada": steps}, logging.getLogger("test"))
    assert not result.failures and result.sent_blocks == 3
    tags = {"platform": "lazada", "conn_id": "lazada_default"}
    assert sent.total(metrics.BLOCKS_SENT, **tags) == 3
    assert sent.total(metrics.BYTES_SENT, **tags) == 10_000
    assert sent.total(metrics.BLOCKS_RETRIED, **tags) == 2


def test_retries_count_only_where_the_caller_asks():
    """Outside a block's send (an init, a product update), a retry is not a block retried."""
    counted = Recorder()
    attempts = iter([ConnectionError("reset"), None, ConnectionError("reset"), None])

    def flaky() -> str:
        if (exc := next(attempts)) is not None:
            raise exc
        return "ok"

    policy = RetryPolicy(max_attempts=2, backoff_seconds=0.0, backoff_max_seconds=0.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(metrics, "_ensure_backend", lambda: counted)
        policy.retrying(lambda exc: True, lambda exc: False, logging.getLogger("test"))(flaky)
        with count_retries(metrics.BLOCKS_RETRIED, platform="shopee"):
            policy.retrying(lambda exc: True, lambda exc: False, logging.getLogger("test"))(flaky)
    assert counted.total(metrics.BLOCKS_RETRIED) == 1
    assert counted.of(metrics.BLOCKS_RETRIED)[0][3] == {"platform": "shopee"}


def test_budget_waits_are_timed_and_calls_that_did_not_wait_are_not(sent, monkeypatch):
    from media_upload.budget import CallBudget

    budget = CallBudget("media_upload_ledger", "shopee", "shopee_default")
    answers = iter([0.01, 0.0, 0.0, 0.02, 0.0])
    monkeypatch.setattr(budget, "_try", lambda: next(answers))
    budget.take()
    budget.take()  # no wait: nothing to time
    asyncio.run(budget.atake())
    waits = sent.of(metrics.BUDGET_WAIT, platform="shopee", conn_id="shopee_default")
    assert len(waits) == 2
    assert waits[0][2] >= timedelta(seconds=0.01) and waits[1][2] >= timedelta(seconds=0.02)
    assert budget.waited == pytest.approx(sum(wait[2].total_seconds() for wait in waits), abs=1e-5)


def test_throttle_answers_and_token_renewals_are_counted_by_the_hook(sent):
    from media_upload.hooks.lazada import LazadaCredentials, LazadaHook
    from media_upload.token_store import TokenPair

    hook = LazadaHook("lazada_shop")
    hook.__dict__["budget"] = SimpleNamespace(ban=lambda seconds: None)
    hook.throttled(Exception("ApiCallLimit: this ban will last 1 seconds"))
    assert sent.total(metrics.THROTTLE_WAITED, platform="lazada", conn_id="lazada_shop") == 1

    credentials = LazadaCredentials("http://gw", "http://auth", "key", "app-secret", "old-token", "refresh-1")

    class Store:
        def __init__(self, refreshed: bool | None) -> None:
            self.refreshed = refreshed

        def renew(self, *args: Any, **kwargs: Any) -> tuple[TokenPair, bool]:
            if self.refreshed is None:
                raise ConnectionError("the auth host did not answer")
            return TokenPair("new-token", "refresh-2"), self.refreshed

    hook._renew(credentials, Store(True), lambda *args: "lineage")
    hook._renew(credentials, Store(False), lambda *args: "lineage")
    with pytest.raises(ConnectionError):
        hook._renew(credentials, Store(None), lambda *args: "lineage")
    renewals = sent.of(metrics.TOKEN_REFRESHED, platform="lazada", conn_id="lazada_shop")
    assert [item[3]["outcome"] for item in renewals] == ["refreshed", "reused", "failed"]
    assert "new-token" not in json.dumps(sent.sent, default=str)


def test_the_waits_count_their_looks(sent, monkeypatch):
    from media_upload.triggers import videos
    from media_upload.triggers.base import PollingTrigger, StateReader

    class Throttled(Exception):
        pass

    class Reader(StateReader):
        answers: list[Any] = []

        async def pause(self, video_ids: Sequence[str], seconds: float) -> None:
            await asyncio.sleep(0)

        async def states(self, video_ids: Sequence[str]) -> dict[str, str]:
            answer = Reader.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return {video_id: answer for video_id in video_ids}

        def is_permanent(self, exc: Exception) -> bool:
            return False

        def is_throttled(self, exc: Exception) -> bool:
            return isinstance(exc, Throttled)

    Reader.answers = [Throttled(), ConnectionError("reset"), "AUDITING", "AUDIT_SUCCESS"]
    monkeypatch.setattr(videos, "load", lambda path: Reader)
    trigger = videos.VideosSettledTrigger(
        [{"platform": "lazada", "conn_id": "c", "video_id": "1", "final": ["AUDIT_SUCCESS"]}],
        first_poll_interval=0.0,
        gather_seconds=0.0,
    )

    async def first(trigger: Any) -> Any:
        async for event in trigger.run():
            return event

    asyncio.run(first(trigger))
    looks = [(item[3]["outcome"], item[2]) for item in sent.of(metrics.AUDIT_LOOKS, platform="lazada")]
    assert looks == [("throttled", 1), ("failed", 1), ("read", 1), ("read", 1)]

    class Polling(PollingTrigger):
        answers: list[Any] = [Throttled(), ConnectionError("reset"), None, {"status": "success"}]
        hook = SimpleNamespace(conn_type="shopee", is_throttle=lambda exc: isinstance(exc, Throttled))
        subject = {"video_id": "9"}

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return ("tests.Polling", {})

        async def check(self) -> dict[str, Any] | None:
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

        def is_permanent(self, exc: Exception) -> bool:
            return False

    asyncio.run(first(Polling(0.0, 5, 0.0)))
    looks = [item[3]["outcome"] for item in sent.of(metrics.AUDIT_LOOKS, platform="shopee")]
    assert looks == ["throttled", "failed", "read", "read"]


def test_a_catalog_report_counts_its_rows(sent):
    from media_upload.catalog.report import count_rows

    rows = [{"state": "attached"}, {"state": NEEDS_ATTENTION}, {"state": "failed"}, {"state": "skipped"}]
    count_rows({"rows": rows, "failed": 2}, "catalog_videos")
    assert sent.total(metrics.CATALOG_ROWS, dag_id="catalog_videos") == 4
    assert sent.total(metrics.CATALOG_ROWS_FAILED, dag_id="catalog_videos") == 2
    assert sent.total(metrics.CATALOG_ROWS_ATTENTION, dag_id="catalog_videos") == 1
    count_rows({"rows": rows[:1], "failed": 0}, "catalog_videos")  # a clean run still says 0
    assert [item[2] for item in sent.of(metrics.CATALOG_ROWS_ATTENTION)] == [1, 0]


# ------------------------------------------------------------------------- docs, dashboard


def _documented() -> dict[str, tuple[str, str]]:
    """Name → (type, tags) from the table in the Metrics section of docs/observability.md."""
    text = DOCS.read_text()
    section = text.split("## Metrics", 1)[1].split("\n## ", 1)[0]
    found = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and (name := re.fullmatch(r"`(media_upload\.[a-z_.]+)`", cells[0])):
            found[name.group(1)] = (cells[1], cells[2])
    return found


def test_the_docs_list_every_metric_with_its_type_and_tags():
    documented = _documented()
    assert set(documented) == set(metrics.METRICS)
    for name, metric in metrics.METRICS.items():
        kind, tags = documented[name]
        assert kind == metric.kind, name
        assert re.findall(r"`([a-z_]+)`", tags) == list(metric.tags), name


def test_the_sample_dashboard_loads_and_shows_only_and_every_defined_metric():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["title"] and dashboard["panels"]
    expressions = [
        target["expr"]
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    used = {
        re.sub(r"_(sum|count|bucket)$", "", found)
        for expr in expressions
        for found in re.findall(r"\bairflow_media_upload_[a-z_]+", expr)
    }
    defined = {"airflow_" + name.replace(".", "_"): name for name in metrics.METRICS}
    assert used <= set(defined), used - set(defined)
    assert used == set(defined), set(defined) - used
    assert all(panel.get("datasource") for panel in dashboard["panels"] if panel.get("targets"))
