"""``shopee_product_video`` end to end with ``dag.test()`` against the Shopee emulator: parts in a mapped
chunk task that completes the upload, a deferred wait, the video on the item; a second run sends nothing."""

from __future__ import annotations

import pytest
import requests
from airflow.utils.state import DagRunState, TaskInstanceState

from media_upload.protocols.shopee import PART_BYTES
from media_upload.sandbox.shopee.products import sample_item
from tests.dags.conftest import airflow_db  # noqa: F401  (fixture)


@pytest.fixture
def shop(make_shopee_sandbox, monkeypatch, airflow_db):  # noqa: F811
    from tests.conftest import _connection_setter

    sandbox = make_shopee_sandbox(transcode_seconds=1)
    _connection_setter(monkeypatch, "shopee_default")(sandbox)
    return sandbox


def test_uploads_waits_and_attaches_then_sends_nothing_again(dagbag, shop, sample_video):
    item = requests.post(f"{shop.url}/_sandbox/shopee/items", json=sample_item("DAG item"), timeout=10).json()
    video = sample_video(PART_BYTES + 500_000, seed=11, duration_seconds=20, width=720, height=1280)
    conf = {"video_path": str(video), "item_id": str(item["item_id"]), "chunks": 0, "parts_in_flight": 0}
    dag = dagbag.dags["shopee_product_video"]
    first = dag.test(run_conf=conf)
    assert first.state == DagRunState.SUCCESS
    states = {
        (ti.task_id, ti.map_index): (ti.state, ti.rendered_map_index) for ti in first.get_task_instances()
    }
    upload_id = next(iter(shop.backend.snapshot()["uploads"]))
    assert states[("shopee_video.upload_chunk", 0)] == (
        TaskInstanceState.SUCCESS,
        f"chunk 1/1 · parts 1–2 · 4.7 MB · completed upload {upload_id}",
    )
    assert states[("shopee_video.clean_up", -1)][0] == TaskInstanceState.SKIPPED
    shown = requests.get(f"{shop.url}/_sandbox/shopee/state", timeout=10).json()
    assert shown["items"][str(item["item_id"])]["video_upload_id"] == upload_id
    counts = dict(shop.backend.request_counts)
    second = dag.test(run_conf=conf)
    assert second.state == DagRunState.SUCCESS
    for api in ("init_video_upload", "upload_video_part", "complete_video_upload"):
        assert (
            shop.backend.request_counts[f"/api/v2/media_space/{api}"] == counts[f"/api/v2/media_space/{api}"]
        )
