"""lazada_product_video end to end with ``dag.test()`` against the Lazada emulator on loopback."""

from __future__ import annotations

import hashlib
import json
import logging

import pytest
import requests
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from media_upload.hooks import lazada as hook_module
from media_upload.ledger import ATTACHED, REJECTED, UploadLedger
from tests.dags.conftest import SAMPLE, create_product, run_conf

SAMPLE_SHA256 = hashlib.sha256(SAMPLE.read_bytes()).hexdigest()


@pytest.fixture
def sandbox(make_lazada_sandbox, lazada_connection, ledger_connection, airflow_db):
    """An emulator, and a ledger of this test's own (each emulator numbers its items from the same start)."""
    sandbox = make_lazada_sandbox(audit_seconds=1)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    return sandbox


@pytest.fixture
def run_output(capfd, caplog):
    """Everything a run printed: task logs go to stdout through structlog, DAG-test lines to logging."""
    caplog.set_level(logging.INFO)
    return lambda: "".join(capfd.readouterr()) + caplog.text


def states(dag_run) -> dict[tuple[str, int], tuple[str, str | None]]:
    return {
        (ti.task_id, ti.map_index): (ti.state, ti.rendered_map_index) for ti in dag_run.get_task_instances()
    }


def ledger_row(product: dict):
    return UploadLedger().get("lazada", "lazada_default", f"item:{product['item_id']}", SAMPLE_SHA256)


def test_uploads_audits_and_attaches(dagbag, sandbox, run_output):
    product = create_product()
    dag_run = dagbag.dags["lazada_product_video"].test(run_conf=run_conf(product))
    output = run_output()
    assert dag_run.state == DagRunState.SUCCESS

    tasks = states(dag_run)
    chunks = {key: value for key, value in tasks.items() if key[0] == "lazada_video.upload_chunk"}
    video_id = ledger_row(product).video_id
    assert chunks == {  # the chunk committed the video as its last block went up, and its label says so
        ("lazada_video.upload_chunk", 0): (
            TaskInstanceState.SUCCESS,
            f"chunk 1/1 · blocks 1–3 · 598 KB · committed video {video_id}",
        )
    }
    assert tasks[("lazada_video.record_audit", -1)][0] == TaskInstanceState.SKIPPED  # the audit passed
    assert all(
        state == TaskInstanceState.SUCCESS
        for (task_id, _), (state, _) in tasks.items()
        if task_id != "lazada_video.record_audit"
    )
    assert "[DAG TEST] running trigger in line" in output  # the audit wait deferred

    snapshot = sandbox.backend.snapshot()
    video_id = snapshot["products"][product["item_id"]]["attributes"]["video"]
    assert snapshot["videos"][video_id]["state"] == "AUDIT_SUCCESS"
    assert snapshot["videos"][video_id]["md5"] == hashlib.md5(SAMPLE.read_bytes()).hexdigest()
    assert snapshot["request_counts"]["/media/video/block/upload"] == 3
    assert snapshot["request_counts"]["/media/video/block/commit"] == 1  # the chunk committed; no second try
    attach = dag_run.get_task_instance("attach_video")
    assert attach.xcom_pull(task_ids="attach_video")["video_id"] == video_id
    entry = ledger_row(product)
    assert (entry.state, entry.video_id, entry.run_id) == (ATTACHED, video_id, dag_run.run_id)


def test_chunks_and_blocks_in_flight_shape_the_mapped_tasks(dagbag, sandbox):
    """``chunks`` maps one task per run of blocks, labelled with its blocks and bytes."""
    product = create_product("chunks-1")
    dag_run = dagbag.dags["lazada_product_video"].test(
        run_conf=run_conf(product, chunks=3, blocks_in_flight=1)
    )
    assert dag_run.state == DagRunState.SUCCESS
    tasks = states(dag_run)
    snapshot = sandbox.backend.snapshot()
    video_id = snapshot["products"][product["item_id"]]["attributes"]["video"]
    labels = [tasks[("lazada_video.upload_chunk", i)] for i in range(3)]
    expected = [
        "chunk 1/3 · block 1 · 200 KB",
        "chunk 2/3 · block 2 · 200 KB",
        "chunk 3/3 · block 3 · 198 KB",
    ]
    # The chunk that delivered the last block (whichever ran last) committed, and says so.
    committed = [label for _, label in labels if label.endswith(f" · committed video {video_id}")]
    assert len(committed) == 1 and all(state == TaskInstanceState.SUCCESS for state, _ in labels)
    assert [label.removesuffix(f" · committed video {video_id}") for _, label in labels] == expected
    assert snapshot["videos"][video_id]["md5"] == hashlib.md5(SAMPLE.read_bytes()).hexdigest()
    assert snapshot["request_counts"]["/media/video/block/upload"] == 3
    assert snapshot["request_counts"]["/media/video/block/commit"] == 1  # only the chunk with the last block


def test_a_second_run_with_the_same_video_and_item_uploads_nothing(dagbag, sandbox, run_output):
    """The ledger knows the item already has this content: no InitCreateVideo, no block, no commit."""
    product = create_product("again-1")
    dag = dagbag.dags["lazada_product_video"]
    first = dag.test(run_conf=run_conf(product))
    assert first.state == DagRunState.SUCCESS
    before = dict(sandbox.backend.request_counts)
    video_id = sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]["video"]
    run_output()

    again = dag.test(run_conf=run_conf(product))
    output = run_output()
    assert again.state == DagRunState.SUCCESS
    after = sandbox.backend.request_counts
    for api in ("/media/video/block/create", "/media/video/block/upload", "/media/video/block/commit"):
        assert after[api] == before[api], api
    tasks = states(again)
    assert tasks[("lazada_video.upload_chunk", -1)][0] == TaskInstanceState.SKIPPED  # mapped over no chunk
    assert tasks[("lazada_video.commit", -1)][0] == TaskInstanceState.SUCCESS
    committed = again.get_task_instance("lazada_video.commit").xcom_pull(task_ids="lazada_video.commit")
    assert str(committed) == video_id  # the metadata DB's XCom read turns a digit string into a number
    assert f"Lazada already has this content as video {video_id}" in output
    assert len(sandbox.backend.snapshot()["videos"]) == 1
    assert ledger_row(product).state == ATTACHED


def test_strictest_reading_of_the_protocol(
    dagbag, make_lazada_sandbox, lazada_connection, ledger_connection, airflow_db
):
    """The same run against the emulator's strict variants: hosted cover only, OSS-like minimum block,
    string-typed values and ``success: false`` failures."""
    sandbox = make_lazada_sandbox(
        audit_seconds=1,
        strict_cover=True,
        min_block_bytes=100 * 1024,
        success_as_string=True,
        failure_shape="result_code",
    )
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    product = create_product("strict-1")
    dag_run = dagbag.dags["lazada_product_video"].test(run_conf=run_conf(product))
    assert dag_run.state == DagRunState.SUCCESS
    assert sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]["video"]
    assert all(entry["code"] == "0" and not entry["empty_params"] for entry in sandbox.backend.request_log)


def test_no_secret_reaches_logs_xcom_or_rendered_fields(dagbag, sandbox, run_output, monkeypatch):
    """The whole run's output, its XComs and rendered templates hold no secret, even across a token refresh."""
    signatures: list[str] = []

    def recording_sign(secret, api, params):
        value = real_sign(secret, api, params)
        signatures.append(value)
        return value

    real_sign = hook_module.sign
    monkeypatch.setattr(hook_module, "sign", recording_sign)
    product = create_product("masking-1")
    requests.post(f"{sandbox.url}/_sandbox/lazada/tokens/expire")  # the first call of the run renews it

    dag_run = dagbag.dags["lazada_product_video"].test(run_conf=run_conf(product))
    assert dag_run.state == DagRunState.SUCCESS
    # Every task met the expired token; one refreshed it, the others used the pair it stored.
    assert sandbox.backend.request_counts["/auth/token/refresh"] == 1

    with create_session() as session:
        xcoms = session.query(XComModel).filter(XComModel.run_id == dag_run.run_id).all()
        rendered = (
            session.query(RenderedTaskInstanceFields)
            .filter(RenderedTaskInstanceFields.run_id == dag_run.run_id)
            .all()
        )
        stored = json.dumps([x.value for x in xcoms], default=str) + json.dumps(
            [r.rendered_fields for r in rendered], default=str
        )
    output = run_output()
    assert "the new pair is kept in the ledger database" in output
    secrets = [sandbox.config.app_secret, *sandbox.backend.tokens, *signatures]
    assert len(signatures) > 10
    leaked = [secret for secret in secrets if secret in output or secret in stored]
    assert leaked == []


def test_a_rejected_video_fails_its_wait_once_and_is_recorded(dagbag, sandbox, run_output):
    """A failed audit fails the wait without retry, ``record_audit`` marks the content rejected, and the
    next run refuses that content for the item before calling Lazada."""
    product = create_product("rejected-1")
    dag = dagbag.dags["lazada_product_video"]
    dag_run = dag.test(run_conf=run_conf(product, title="Blurry [AUDIT_FAILED]"))
    output = run_output()
    assert dag_run.state == DagRunState.FAILED
    tasks = states(dag_run)
    assert tasks[("lazada_video.wait_for_audit", -1)][0] == TaskInstanceState.FAILED
    assert tasks[("lazada_video.record_audit", -1)][0] == TaskInstanceState.SUCCESS
    assert tasks[("attach_video", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    assert dag_run.get_task_instance("lazada_video.wait_for_audit").try_number == 1
    assert "ended in AUDIT_FAILED" in output
    assert "video" not in sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]
    entry = ledger_row(product)
    assert entry.state == REJECTED and "AUDIT_FAILED" in entry.reason

    again = dag.test(run_conf=run_conf(product, title="Blurry [AUDIT_FAILED]"))
    output = run_output()
    assert again.state == DagRunState.FAILED
    init = again.get_task_instance("lazada_video.init_upload")
    assert (init.state, init.try_number) == (TaskInstanceState.FAILED, 1)  # refused, not retried
    assert "this content was rejected before" in output
    assert sandbox.backend.request_counts["/media/video/block/create"] == 1


def test_a_missing_source_fails_before_any_upload(dagbag, sandbox, run_output, tmp_path):
    product = create_product("missing-1")
    missing = tmp_path / "gone.mp4"
    dag_run = dagbag.dags["lazada_product_video"].test(run_conf=run_conf(product, video_path=str(missing)))
    output = run_output()
    assert dag_run.state == DagRunState.FAILED
    tasks = states(dag_run)
    assert tasks[("lazada_video.init_upload", -1)][0] == TaskInstanceState.FAILED
    assert dag_run.get_task_instance("lazada_video.init_upload").try_number == 1  # bad input: no retry
    assert tasks[("lazada_video.commit", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    # No video, so no audit to record: record_audit (one_failed) has nothing to do and skips.
    assert tasks[("lazada_video.record_audit", -1)][0] == TaskInstanceState.SKIPPED
    assert f"{missing}: no such file" in output
    assert "/media/video/block/create" not in sandbox.backend.request_counts
