"""huawei_vod_upload end to end with ``dag.test()`` against the VOD emulator on loopback."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

import pytest
import requests
from airflow.models.renderedtifields import RenderedTaskInstanceFields
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from media_upload.hooks.huawei_vod import HuaweiVodHook
from media_upload.ledger import AUDITED, FAILED, REJECTED, UPLOADING, UploadLedger
from media_upload.sandbox.huawei_vod import backend as vod_backend
from tests.dags.conftest import SAMPLE

MiB = 1024 * 1024
GROUP = "huawei_vod."


@pytest.fixture
def sandbox(make_huawei_vod_sandbox, huawei_vod_connection, ledger_connection, airflow_db):
    """An emulator, and a ledger of this test's own (emulators number their assets from the same start)."""
    sandbox = make_huawei_vod_sandbox(transcode_seconds=1)
    huawei_vod_connection(sandbox)
    ledger_connection("sqlite")
    return sandbox


@pytest.fixture
def run_output(capfd, caplog):
    caplog.set_level(logging.INFO)
    return lambda: "".join(capfd.readouterr()) + caplog.text


@pytest.fixture
def chunk_retries_without_delay(dagbag, monkeypatch):
    """The chunk task keeps its configured retries; only the 10 s between them is dropped. Returns them."""
    chunks = dagbag.dags["huawei_vod_upload"].get_task(GROUP + "upload_chunk")
    monkeypatch.setattr(chunks, "retry_delay", timedelta(0))
    assert chunks.retries >= 1
    return chunks.retries


def run(dagbag, video_path, **conf):
    """One dag.test() run. Every param is given: a test run leaves its conf in the DAG object's params."""
    full = {
        "title": "E2E asset",
        "description": "",
        "category_id": -1,
        "auto_publish": True,
        "product": "",
        "part_size": 8 * MiB,
    }
    return dagbag.dags["huawei_vod_upload"].test(run_conf={**full, "video_path": str(video_path), **conf})


def states(dag_run) -> dict:
    return {
        (ti.task_id, ti.map_index): (ti.state, ti.rendered_map_index) for ti in dag_run.get_task_instances()
    }


def chunk_states(dag_run) -> list:
    tasks = states(dag_run)
    return [value for (task_id, index), value in sorted(tasks.items()) if task_id == GROUP + "upload_chunk"]


def final_xcom(dag_run) -> dict:
    task_id = GROUP + "wait_until_ready"
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def md5_of(path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_small_file_single_put(dagbag, sandbox, run_output):
    """Under 20 MB the create task PUTs the whole file: no multipart upload, no chunk task."""
    dag_run = run(dagbag, SAMPLE)
    assert dag_run.state == DagRunState.SUCCESS
    tasks = states(dag_run)
    assert tasks[(GROUP + "upload_chunk", -1)][0] == TaskInstanceState.SKIPPED  # mapped over no chunk
    assert tasks[(GROUP + "confirm_upload", -1)][0] == TaskInstanceState.SUCCESS
    assert tasks[(GROUP + "cancel_upload", -1)][0] == TaskInstanceState.SKIPPED
    result = final_xcom(dag_run)
    assert result["status"] == "PUBLISHED" and result["play_url"].endswith("/index.mp4")
    stored = sandbox.backend.snapshot()["assets"][result["asset_id"]]["object"]
    assert stored["md5"] == hashlib.md5(SAMPLE.read_bytes()).hexdigest()
    assert requests.get(result["play_url"]).content == SAMPLE.read_bytes()
    counts = sandbox.backend.request_counts
    assert counts["PutObject"] == 1 and counts["ConfirmAssetUpload"] == 1
    assert counts["InitiateMultipartUpload"] == counts["UploadPart"] == 0
    assert "[DAG TEST] running trigger in line" in run_output()


def test_vods_verdict_is_recorded_in_the_ledger(dagbag, sandbox, sample_video):
    """The sensor records what VOD decided, as a catalog does: ``audited`` when ready, ``rejected`` with
    the status when the asset failed (the sensor fails without retries)."""
    passed = run(dagbag, SAMPLE, product="SKU-OK")
    assert passed.state == DagRunState.SUCCESS
    entry = UploadLedger().get("huawei_vod", "huawei_vod_default", "SKU-OK", sha256_of(SAMPLE))
    assert (entry.state, entry.video_id) == (AUDITED, final_xcom(passed)["asset_id"])
    other = sample_video(400_000)  # other bytes: the same ones would reuse the asset that passed
    failed = run(dagbag, other, product="SKU-BAD", title="[TRANSCODE_FAILED] clip")
    assert failed.state == DagRunState.FAILED
    assert states(failed)[(GROUP + "wait_until_ready", -1)][0] == TaskInstanceState.FAILED
    entry = UploadLedger().get("huawei_vod", "huawei_vod_default", "SKU-BAD", sha256_of(other))
    assert entry.state == REJECTED and "TRANSCODE_FAILED" in entry.reason


def test_sixty_megabytes_in_eight_mib_parts(dagbag, sandbox, sample_video):
    """Eight parts in two chunk tasks; the chunk with the last part completes and confirms, once."""
    path = sample_video(60_000_000, seed=60)
    dag_run = run(dagbag, path, part_size=8 * MiB)
    assert dag_run.state == DagRunState.SUCCESS
    asset_id = final_xcom(dag_run)["asset_id"]
    states = chunk_states(dag_run)
    suffix = f" · confirmed asset {asset_id}"  # on the chunk that delivered the last part, whichever it was
    assert sum(label.endswith(suffix) for _, label in states) == 1
    assert [(state, label.removesuffix(suffix)) for state, label in states] == [
        (TaskInstanceState.SUCCESS, "chunk 1/2 · parts 1–4 · 34 MB"),
        (TaskInstanceState.SUCCESS, "chunk 2/2 · parts 5–8 · 26 MB"),
    ]
    stored = sandbox.backend.snapshot()["assets"][asset_id]["object"]
    assert (stored["size"], stored["md5"]) == (60_000_000, md5_of(path))
    counts = sandbox.backend.request_counts
    assert (counts["CreateAsset"], counts["UploadPart"], counts["CompleteMultipartUpload"]) == (1, 8, 1)
    assert counts["ConfirmAssetUpload"] == 1


def test_part_size_zero_means_equal_parts_under_twenty_megabytes(dagbag, sandbox, sample_video):
    path = sample_video(21_000_000, seed=22)
    dag_run = run(dagbag, path, part_size=0)
    assert dag_run.state == DagRunState.SUCCESS
    asset_id = final_xcom(dag_run)["asset_id"]
    assert chunk_states(dag_run) == [
        (TaskInstanceState.SUCCESS, f"chunk 1/1 · parts 1–8 · 21 MB · confirmed asset {asset_id}")
    ]
    (upload,) = sandbox.backend.snapshot()["uploads"].values()
    sizes = [part["size"] for part in upload["parts"].values()]
    assert len(sizes) == 8 and max(sizes) - min(sizes) <= 1 and max(sizes) < 20 * MiB
    stored = sandbox.backend.snapshot()["assets"][final_xcom(dag_run)["asset_id"]]["object"]
    assert stored["md5"] == md5_of(path)


def test_the_same_content_for_the_same_product_is_uploaded_once(dagbag, sandbox, sample_video, run_output):
    """The ledger keys uploads by product and content: a second run creates no asset and sends nothing."""
    path = sample_video(21_000_000, seed=23)
    first = run(dagbag, path, product="sku-1")
    assert first.state == DagRunState.SUCCESS
    before = dict(sandbox.backend.request_counts)
    run_output()

    again = run(dagbag, path, product="sku-1")
    assert again.state == DagRunState.SUCCESS
    counts = sandbox.backend.request_counts
    for operation in ("CreateAsset", "InitiateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        assert counts[operation] == before[operation], operation
    assert counts["ConfirmAssetUpload"] == before["ConfirmAssetUpload"]
    assert states(again)[(GROUP + "upload_chunk", -1)][0] == TaskInstanceState.SKIPPED
    assert final_xcom(again)["asset_id"] == final_xcom(first)["asset_id"]
    assert f"VOD already has asset {final_xcom(first)['asset_id']}" in run_output()
    assert len(sandbox.backend.snapshot()["assets"]) == 1


def test_a_refused_complete_fails_the_upload_and_cancels_the_asset(dagbag, sandbox, sample_video, run_output):
    """OBS refuses the complete: the ledger row is failed (nothing left to resume), so cancel_upload aborts
    the OBS upload and confirms the asset CANCELLED."""
    path = sample_video(21_000_000, seed=21)
    sandbox.backend.add_fault("InvalidPart", "CompleteMultipartUpload", 1)
    dag_run = run(dagbag, path, part_size=8 * MiB)
    output = run_output()
    assert dag_run.state == DagRunState.FAILED
    tasks = states(dag_run)
    assert chunk_states(dag_run) == [(TaskInstanceState.FAILED, "chunk 1/1 · parts 1–3 · 21 MB")]
    assert dag_run.get_task_instance(GROUP + "upload_chunk", map_index=0).try_number == 1  # a refusal
    assert tasks[(GROUP + "confirm_upload", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    assert tasks[(GROUP + "cancel_upload", -1)][0] == TaskInstanceState.SUCCESS
    assert tasks[(GROUP + "wait_until_ready", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    snapshot = sandbox.backend.snapshot()
    (asset,) = snapshot["assets"].values()
    assert asset["status"] == "CANCELLED" and asset["object"] is None
    assert all(upload["state"] == "aborted" for upload in snapshot["uploads"].values())
    assert snapshot["request_counts"]["CompleteMultipartUpload"] == 1  # a refused complete is not repeated
    assert snapshot["request_counts"]["UploadPart"] == 3  # nor are the parts, on the chunk's retry
    assert "cancelled; VOD discards what was uploaded" in output
    entry = UploadLedger().get("huawei_vod", "huawei_vod_default", "", sha256_of(path))
    assert entry.state == FAILED and "InvalidPart" in entry.reason and entry.video_id is None


def test_parts_failing_past_every_retry_keep_the_asset_for_the_next_run(
    dagbag, sandbox, sample_video, run_output, chunk_retries_without_delay, monkeypatch
):
    """OBS keeps failing every part (500), through the hook's attempts and the chunk task's retries: the
    upload can still be resumed (the row stays uploading), so cancel_upload keeps the asset, and the next
    run sends the parts to the same asset and OBS upload."""
    monkeypatch.setitem(HuaweiVodHook.__init__.__kwdefaults__, "backoff_seconds", 0.0)  # no waits
    attempts = HuaweiVodHook.__init__.__kwdefaults__["max_attempts"]
    tries = chunk_retries_without_delay + 1
    path = sample_video(21_000_000, seed=24)  # three 8 MiB parts in one chunk
    sandbox.backend.add_fault("InternalError", "UploadPart", 3 * attempts * tries)
    first = run(dagbag, path, part_size=8 * MiB)
    output = run_output()
    assert first.state == DagRunState.FAILED
    tasks = states(first)
    assert chunk_states(first) == [(TaskInstanceState.FAILED, "chunk 1/1 · parts 1–3 · 21 MB")]
    assert first.get_task_instance(GROUP + "upload_chunk", map_index=0).try_number == tries
    assert tasks[(GROUP + "confirm_upload", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    assert tasks[(GROUP + "cancel_upload", -1)][0] == TaskInstanceState.SUCCESS
    cancel = first.get_task_instance(GROUP + "cancel_upload").xcom_pull(task_ids=GROUP + "cancel_upload")
    assert cancel["cancelled"] is False
    assert "is kept: the next run resumes its upload" in output
    snapshot = sandbox.backend.snapshot()
    (asset_id,) = snapshot["assets"]
    assert snapshot["assets"][asset_id]["status"] != "CANCELLED"
    assert snapshot["request_counts"]["UploadPart"] == 3 * attempts * tries
    entry = UploadLedger().get("huawei_vod", "huawei_vod_default", "", sha256_of(path))
    assert (entry.state, entry.video_id) == (UPLOADING, asset_id)

    again = run(dagbag, path, part_size=8 * MiB)
    assert again.state == DagRunState.SUCCESS
    counts = sandbox.backend.request_counts
    assert counts["CreateAsset"] == 1 and counts["InitiateMultipartUpload"] == 1  # resumed, not restarted
    assert counts["UploadPart"] == 3 * attempts * tries + 3
    assert final_xcom(again)["asset_id"] == asset_id
    stored = sandbox.backend.snapshot()["assets"][asset_id]["object"]
    assert (stored["size"], stored["md5"]) == (21_000_000, md5_of(path))


def test_a_refused_part_fails_the_chunk_at_once_and_the_next_run_sends_only_the_rest(
    dagbag, sandbox, sample_video, run_output
):
    """OBS refuses two of the three parts in flight (400): a retry cannot help, so the chunk fails without
    one; the part OBS took stays acknowledged in the ledger, the asset is kept, and the next run sends
    only the two missing parts."""
    path = sample_video(21_000_000, seed=25)  # three 8 MiB parts, all in flight at once in one chunk
    sandbox.backend.add_fault("InvalidPart", "UploadPart", 2)
    first = run(dagbag, path, part_size=8 * MiB)
    output = run_output()
    assert first.state == DagRunState.FAILED
    assert chunk_states(first) == [(TaskInstanceState.FAILED, "chunk 1/1 · parts 1–3 · 21 MB")]
    assert first.get_task_instance(GROUP + "upload_chunk", map_index=0).try_number == 1
    assert states(first)[(GROUP + "cancel_upload", -1)][0] == TaskInstanceState.SUCCESS
    assert "is kept: the next run resumes its upload" in output
    snapshot = sandbox.backend.snapshot()
    (asset_id,) = snapshot["assets"]
    (upload,) = snapshot["uploads"].values()
    assert upload["state"] != "aborted" and len(upload["parts"]) == 1
    entry = UploadLedger().get("huawei_vod", "huawei_vod_default", "", sha256_of(path))
    assert entry.state == UPLOADING
    assert len(UploadLedger().acknowledged("huawei_vod", entry.upload_id)) == 1

    again = run(dagbag, path, part_size=8 * MiB)
    assert again.state == DagRunState.SUCCESS
    counts = sandbox.backend.request_counts
    assert counts["UploadPart"] == 3 + 2  # only the two parts OBS did not have
    assert counts["CreateAsset"] == 1 and final_xcom(again)["asset_id"] == asset_id
    stored = sandbox.backend.snapshot()["assets"][asset_id]["object"]
    assert (stored["size"], stored["md5"]) == (21_000_000, md5_of(path))
    # VOD's verdict is in the ledger, as a catalog records it: the row is done
    assert UploadLedger().get("huawei_vod", "huawei_vod_default", "", sha256_of(path)).state == AUDITED


def test_no_secret_or_signature_leaks(dagbag, sandbox, sample_video, run_output, monkeypatch):
    signatures: list[str] = []
    real = vod_backend.obs_signed_url

    def recording(*args, **kwargs):
        url = real(*args, **kwargs)
        signatures.append(url.rsplit("Signature=", 1)[1])
        return url

    monkeypatch.setattr(vod_backend, "obs_signed_url", recording)
    dag_run = run(dagbag, sample_video(21_000_000, seed=7), part_size=8 * MiB)
    assert dag_run.state == DagRunState.SUCCESS
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
    assert len(signatures) >= 5
    secrets = [sandbox.config.sk, *signatures, *(requests.utils.unquote(s) for s in signatures)]
    assert [secret for secret in secrets if secret in output or secret in stored] == []
