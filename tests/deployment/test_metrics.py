"""Metrics on a real Airflow (include/stack.py: LocalExecutor, PostgreSQL, api-server, scheduler,
dag-processor, triggerer as processes) with StatsD on and a listener on loopback: a Lazada catalog with push
on sends the documented metrics from the three kinds of process that run this provider's code: the task
runner (blocks, commits, verdicts, the catalog's rows), the triggerer (the deferred wait's looks) and the
api-server (pushed states received). The listener also finds which process owns each sending socket and
its parents, so "from the triggerer" means the triggerer process or one it started, not just a name that
only triggers send."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from media_upload import metrics
from media_upload.sandbox.sample_media import write_sample_mp4

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from samples import catalog_manifest  # noqa: E402
from stack import LocalStack  # noqa: E402

DAG = "lazada_catalog_videos"
VIDEOS = 3
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
#: ``airflow.media_upload.bytes.sent,platform=lazada,conn_id=lazada_default:400000|c`` (InfluxDB tags).
LINE = re.compile(r"^(?P<name>[^,:]+)(?P<tags>(?:,[^,=:]+=[^,:]*)*):(?P<value>[^|]+)\|(?P<kind>\w+)")


@dataclass
class Sample:
    name: str
    tags: dict[str, str]
    value: float
    kind: str
    port: int


@dataclass
class Listener:
    """A StatsD listener on 127.0.0.1: every line it got, and the process group that owns each sender."""

    sock: socket.socket
    samples: list[Sample] = field(default_factory=list)
    owners: dict[int, set[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def serve(self) -> None:
        while True:
            try:
                data, (_, port) = self.sock.recvfrom(65535)
            except OSError:  # closed: the test is over
                return
            if port not in self.owners:
                self.owners[port] = _lineage(port)  # at its first line, while the sender is surely alive
            with self.lock:
                for line in data.decode(errors="replace").splitlines():
                    if (found := LINE.match(line)) is not None:
                        tags = dict(pair.split("=", 1) for pair in found["tags"].split(",") if pair)
                        self.samples.append(
                            Sample(found["name"], tags, float(found["value"]), found["kind"], port)
                        )

    def ours(self, name: str) -> list[Sample]:
        with self.lock:
            return [sample for sample in self.samples if sample.name == f"airflow.{name}"]

    def total(self, name: str) -> float:
        return sum(sample.value for sample in self.ours(name))

    def sent_by(self, name: str, pid: int) -> bool:
        """Whether the lines of ``name`` came from process ``pid`` or its descendants: every sender found,
        and at least one (a task process that ended before it was looked up is not found)."""
        found = [lineage for sample in self.ours(name) if (lineage := self.owners.get(sample.port))]
        return bool(found) and all(pid in lineage for lineage in found)


def _lineage(port: int) -> set[int]:
    """The process whose UDP socket has local ``port`` and all its parents (empty when it is gone)."""
    for connection in psutil.net_connections(kind="udp4"):
        if connection.laddr and connection.laddr.port == port and connection.pid:
            try:
                process = psutil.Process(connection.pid)
                return {process.pid, *(parent.pid for parent in process.parents())}
            except psutil.NoSuchProcess:
                return set()
    return set()


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 2**20)  # Airflow's own metrics come too
    sock.bind(("127.0.0.1", 0))
    running = Listener(sock)
    thread = threading.Thread(target=running.serve, daemon=True)
    thread.start()
    yield running
    sock.close()
    thread.join(timeout=10)


@pytest.fixture
def stack(listener: Listener, tmp_path: Path) -> Iterator[LocalStack]:
    with LocalStack(
        tmp_path / "airflow",
        executor="LocalExecutor",
        database="airflow_metrics",
        sandboxes={"lazada": ["--audit-seconds", "4"]},
        lazada_push=True,
        # Pushed states end the waits; a lost one is asked about after 60 s.
        connection_extras={"lazada_default": {"push_poll_seconds": 60}},
        env={
            "AIRFLOW__METRICS__STATSD_ON": "True",
            "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
            "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
            # Tags in the lines (InfluxDB style), so the test sees the platform of each metric.
            "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
        },
    ) as running:
        yield running


@pytest.mark.timeout(900)
def test_a_catalog_sends_the_documented_metrics_from_workers_triggerer_and_api_server(
    stack, listener, monkeypatch
):
    monkeypatch.setenv("AIRFLOW_CONN_LAZADA_DEFAULT", json.dumps(stack.connections()["lazada_default"]))
    from media_upload.hooks.lazada import LazadaHook

    hook = LazadaHook()
    sizes = [900_000 + 50_000 * n for n in range(VIDEOS)]
    rows = [
        (f"metric-{n}", write_sample_mp4(stack.media / f"metric-{n}.mp4", size, seed=n), f"Metric video {n}")
        for n, size in enumerate(sizes)
    ]
    manifest = catalog_manifest(hook, stack.media / "catalog.csv", rows, hook.upload_image(PNG, "cover.png"))
    stack.wait_for_dags(DAG)
    run_id = stack.trigger(DAG, {"manifest": str(manifest)})
    assert stack.wait(DAG, run_id, timeout=600)["state"] == "success"

    # The task runner: every byte of every video, and every video's way to its product.
    files = sum(path.stat().st_size for _, path, _ in rows)
    assert listener.total(metrics.BYTES_SENT) == files
    assert listener.total(metrics.UPLOADS_COMMITTED) == VIDEOS
    assert listener.total(metrics.VIDEOS_MADE) == VIDEOS
    assert listener.total(metrics.VIDEOS_ATTACHED) == VIDEOS
    assert listener.total(metrics.CATALOG_ROWS) == VIDEOS
    assert listener.total(metrics.CATALOG_ROWS_FAILED) == 0
    assert listener.total(metrics.CATALOG_ROWS_ATTENTION) == 0
    waits = listener.ours(metrics.AUDIT_WAIT)
    assert len(waits) == VIDEOS and all(sample.kind == "ms" and sample.value > 0 for sample in waits)
    assert {sample.tags.get("platform") for sample in listener.ours(metrics.BYTES_SENT)} == {"lazada"}
    assert {sample.tags.get("conn_id") for sample in listener.ours(metrics.BYTES_SENT)} == {"lazada_default"}
    # The triggerer: the deferred wait looked (at pushed states, or by asking).
    assert listener.total(metrics.AUDIT_LOOKS) >= 1
    # Each from its own component: LocalExecutor runs tasks in processes the scheduler starts.
    pids = {name: process.pid for name, process in stack.processes.items()}
    assert listener.sent_by(metrics.AUDIT_LOOKS, pids["triggerer"])
    assert listener.sent_by(metrics.BYTES_SENT, pids["scheduler"])

    # Every name under the one prefix, and each one documented.
    names = {sample.name for sample in listener.samples if sample.name.startswith("airflow.media_upload.")}
    assert names and {name.removeprefix("airflow.") for name in names} <= set(metrics.METRICS)
    # No secret travels in a metric: the connection's app secret and token appear in no line.
    extra = stack.connections()["lazada_default"]
    secrets = [str(extra.get("password") or ""), str((extra.get("extra") or {}).get("access_token") or "")]
    lines = json.dumps([sample.__dict__ for sample in listener.samples])
    assert not [secret for secret in secrets if len(secret) > 4 and secret in lines]

    # The api-server: the emulator's pushes reached the receiver, which counted them there.
    assert listener.total(metrics.PUSH_RECEIVED) >= VIDEOS
    assert {sample.tags.get("platform") for sample in listener.ours(metrics.PUSH_RECEIVED)} == {"lazada"}
    assert listener.sent_by(metrics.PUSH_RECEIVED, pids["api-server"])
