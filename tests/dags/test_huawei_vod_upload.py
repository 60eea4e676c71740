"""huawei_vod_upload end to end with ``dag.test()`` against the VOD emulator on loopback."""

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

from media_upload.sandbox.huawei_vod import backend as vod_backend
from tests.dags.conftest import SAMPLE

MiB = 1024 * 1024


@pytest.fixture
def sandbox(make_huawei_vod_sandbox, huawei_vod_connection, airflow_db):
    sandbox = make_huawei_vod_sandbox(transcode_seconds=1)
    huawei_vod_connection(sandbox)
    return sandbox


@pytest.fixture
def run_output(capfd, caplog):
    caplog.set_level(logging.INFO)
    return lambda: "".join(capfd.readouterr()) + caplog.text


def run(dagbag, video_path, **conf):
    """One dag.test() run. Every param is given: a test run leaves its conf in the DAG object's params."""
    full = {
        "title": "E2E asset",
        "description": "",
        "category_id": -1,
        "auto_publish": True,
        "part_size": 8 * MiB,
    }
    return dagbag.dags["huawei_vod_upload"].test(run_conf={**full, "video_path": str(video_path), **conf})


def states(dag_run) -> dict:
    return {
        (ti.task_id, ti.map_index): (ti.state, ti.rendered_map_index) for ti in dag_run.get_task_instances()
    }


def final_xcom(dag_run) -> dict:
    task_id = "huawei_vod.wait_until_ready"
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id)


def test_small_file_single_put(dagbag, sandbox, run_output):
    dag_run = run(dagbag, SAMPLE)
    assert dag_run.state == DagRunState.SUCCESS
    tasks = states(dag_run)
    assert tasks[("huawei_vod.upload_part", -1)][0] == TaskInstanceState.SKIPPED
    assert tasks[("huawei_vod.cancel_upload", -1)][0] == TaskInstanceState.SKIPPED
    result = final_xcom(dag_run)
    assert result["status"] == "PUBLISHED" and result["play_url"].endswith("/index.mp4")
    stored = sandbox.backend.snapshot()["assets"][result["asset_id"]]["object"]
    assert stored["md5"] == hashlib.md5(SAMPLE.read_bytes()).hexdigest()
    assert requests.get(result["play_url"]).content == SAMPLE.read_bytes()
    assert "[DAG TEST] running trigger in line" in run_output()


def test_sixty_megabytes_in_eight_mib_parts(dagbag, sandbox, sample_video):
    path = sample_video(60_000_000, seed=60)
    dag_run = run(dagbag, path, part_size=8 * MiB)
    assert dag_run.state == DagRunState.SUCCESS
    tasks = states(dag_run)
    assert [tasks[("huawei_vod.upload_part", i)] for i in range(8)] == [
        (TaskInstanceState.SUCCESS, f"part {i + 1}/8") for i in range(8)
    ]
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    stored = sandbox.backend.snapshot()["assets"][final_xcom(dag_run)["asset_id"]]["object"]
    assert (stored["size"], stored["md5"]) == (60_000_000, digest.hexdigest())


def test_a_failed_upload_is_cancelled(dagbag, sandbox, sample_video, run_output):
    path = sample_video(21_000_000, seed=21)
    fault = {"kind": "InvalidPart", "operation": "CompleteMultipartUpload", "count": 1}
    requests.post(f"{sandbox.endpoint}/_sandbox/huawei-vod/faults", json=fault)
    dag_run = run(dagbag, path, part_size=8 * MiB)
    assert dag_run.state == DagRunState.FAILED
    tasks = states(dag_run)
    assert tasks[("huawei_vod.complete_upload", -1)][0] == TaskInstanceState.FAILED
    assert tasks[("huawei_vod.cancel_upload", -1)][0] == TaskInstanceState.SUCCESS
    assert tasks[("huawei_vod.wait_until_ready", -1)][0] == TaskInstanceState.UPSTREAM_FAILED
    (asset,) = sandbox.backend.snapshot()["assets"].values()
    assert asset["status"] == "CANCELLED" and asset["object"] is None
    assert all(upload["state"] == "aborted" for upload in sandbox.backend.snapshot()["uploads"].values())
    assert "CANCELLED; VOD discards what was uploaded" in run_output()


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
    assert len(signatures) >= 6
    secrets = [sandbox.config.sk, *signatures, *(requests.utils.unquote(s) for s in signatures)]
    assert [secret for secret in secrets if secret in output or secret in stored] == []
