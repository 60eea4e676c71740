"""``kill -9`` in the middle of an upload, then a new run: no second video, no lost row, no acknowledged
block sent again.

Each test runs ``airflow dags test lazada_product_video`` as its own process group against the Lazada
emulator, kills the whole group with SIGKILL at a chosen moment, and runs the DAG again.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.dags.conftest import SAMPLE, airflow_db, create_product, run_conf  # noqa: F401  (fixtures)

pytestmark = pytest.mark.faults
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture
def sandbox(make_lazada_sandbox, lazada_connection, airflow_db):  # noqa: F811
    """A slow link (0.2 MB/s per connection), so a kill can land while blocks are on their way."""
    sandbox = make_lazada_sandbox(audit_seconds=1, bandwidth_per_connection=0.2, latency_ms=20)
    lazada_connection(sandbox)
    return sandbox


def dags_test(conf: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [AIRFLOW, "dags", "test", "lazada_product_video", "-c", json.dumps(conf)],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes every child with it
    )


def kill_when(process: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill never came"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def ledger_rows(tmp_path: Path, sql: str) -> list[tuple]:
    """Rows from the run's ledger; none while the run has not created its tables yet."""
    try:
        with sqlite3.connect(tmp_path / "own-ledger.db") as db:
            return db.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def blocks_sent(sandbox) -> list[int]:
    return [
        int(entry["params"]["blockNo"])
        for entry in sandbox.backend.request_log
        if entry["api"] == "/media/video/block/upload" and entry["code"] == "0"
    ]


def finish_and_check(sandbox, conf: dict, tmp_path: Path) -> None:
    """The new run succeeds with one video on the item and its bytes intact."""
    result = subprocess.run(
        [AIRFLOW, "dags", "test", "lazada_product_video", "-c", json.dumps(conf)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    state = sandbox.backend.snapshot()
    assert len(state["videos"]) == 1, state["videos"]  # no second video
    (video_id,) = state["videos"]
    assert state["products"][conf["item_id"]]["attributes"]["video"] == video_id
    assert state["videos"][video_id]["md5"] == hashlib.md5(SAMPLE.read_bytes()).hexdigest()
    assert ledger_rows(tmp_path, "SELECT state, video_id FROM media_upload_ledger") == [
        ("attached", video_id)
    ]


def test_killed_while_blocks_upload(sandbox, tmp_path):
    conf = run_conf(create_product("crash-blocks"), block_size=100_000, chunks=1, blocks_in_flight=2)
    process = dags_test(conf, tmp_path / "first.log")
    kill_when(process, lambda: len(ledger_rows(tmp_path, "SELECT 1 FROM media_upload_blocks")) >= 2)
    acked = {number - 1 for (number,) in ledger_rows(tmp_path, "SELECT part_number FROM media_upload_blocks")}
    (row,) = ledger_rows(tmp_path, "SELECT state, upload_id FROM media_upload_ledger")
    assert row[0] == "uploading" and acked  # the row survived the kill, with what was acknowledged
    before = len(blocks_sent(sandbox))
    finish_and_check(sandbox, conf, tmp_path)
    resent = blocks_sent(sandbox)[before:]
    assert set(resent).isdisjoint(acked), (sorted(acked), resent)
    assert sandbox.backend.request_counts["/media/video/block/create"] == 1  # the same upload, resumed


def test_killed_right_after_the_commit_reached_lazada(sandbox, tmp_path):
    """The commit runs, its answer is held back, and the run dies before it arrives."""
    conf = run_conf(create_product("crash-commit"), block_size=200_000)
    sandbox.backend.add_fault("delay", "/media/video/block/commit", seconds=30)
    process = dags_test(conf, tmp_path / "first.log")
    kill_when(process, lambda: bool(sandbox.backend.videos))
    (row,) = ledger_rows(tmp_path, "SELECT state FROM media_upload_ledger")
    assert row == ("commit_unknown",)  # claimed before it was sent, so the next run asks first
    uploads = len(blocks_sent(sandbox))
    finish_and_check(sandbox, conf, tmp_path)
    assert len(blocks_sent(sandbox)) == uploads  # nothing sent again
    assert sandbox.backend.request_counts["/media/video/block/create"] == 1


def test_killed_while_waiting_for_the_audit(make_lazada_sandbox, lazada_connection, airflow_db, tmp_path):  # noqa: F811
    sandbox = make_lazada_sandbox(audit_seconds=20)
    lazada_connection(sandbox)
    conf = run_conf(create_product("crash-audit"), block_size=200_000)
    process = dags_test(conf, tmp_path / "first.log")
    kill_when(process, lambda: sandbox.backend.request_counts.get("/media/video/get", 0) >= 2)
    (row,) = ledger_rows(tmp_path, "SELECT state FROM media_upload_ledger")
    assert row == ("committed",)
    uploads = len(blocks_sent(sandbox))
    sandbox.backend.set_video_outcome(next(iter(sandbox.backend.videos)), "AUDIT_SUCCESS", finish_now=True)
    finish_and_check(sandbox, conf, tmp_path)
    assert len(blocks_sent(sandbox)) == uploads
    assert sandbox.backend.request_counts["/media/video/block/create"] == 1
