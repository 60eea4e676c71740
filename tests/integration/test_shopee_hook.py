"""ShopeeHook and the Shopee steps against the emulator: signing, parts, complete, results, items, token
renewal for the deployment, masking, and the operators of the single-video DAG."""

from __future__ import annotations

import hashlib
import logging

import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException

from media_upload.hooks.shopee import ShopeeApiError, ShopeeHook, ShopeeRefusal
from media_upload.ledger import ATTACHED, COMMITTED, UploadLedger
from media_upload.protocols.shopee import PART_BYTES, PART_BYTES_DECIMAL
from media_upload.sandbox.shopee.products import sample_item

FOUR_MIB = PART_BYTES


@pytest.fixture
def shopee_connection(monkeypatch):
    from tests.conftest import _connection_setter

    return _connection_setter(monkeypatch, "shopee_default")


@pytest.fixture
def shop(shopee_sandbox, shopee_connection):
    shopee_connection(shopee_sandbox)
    return shopee_sandbox


def new_item(sandbox, name: str = "Demo item") -> str:
    answer = requests.post(f"{sandbox.url}/_sandbox/shopee/items", json=sample_item(name), timeout=10)
    assert answer.ok, answer.text
    return str(answer.json()["item_id"])


@pytest.fixture
def clip(sample_video):
    """A Shopee-shaped video: MP4, 15 s, 720x720, a little over two 4 MiB parts."""
    return sample_video(2 * FOUR_MIB + 123_456, seed=5, duration_seconds=15, width=720, height=720)


def test_the_whole_upload_through_the_hook(shop, clip):
    hook = ShopeeHook()
    data = clip.read_bytes()
    upload_id = hook.init_video_upload(hashlib.md5(data).hexdigest(), len(data))
    tags = [
        hook.upload_video_part(upload_id, seq, data[seq * FOUR_MIB : (seq + 1) * FOUR_MIB])
        for seq in range(3)
    ]
    assert tags == [hashlib.md5(data[s * FOUR_MIB : (s + 1) * FOUR_MIB]).hexdigest() for s in range(3)]
    hook.complete_video_upload(upload_id, [0, 1, 2], 1234)
    item_id = new_item(shop)
    import time

    deadline = time.monotonic() + 10
    while hook.get_video_upload_result(upload_id)["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    hook.set_item_video(item_id, upload_id)
    assert hook.get_items([item_id])[item_id]["video_info"]
    with pytest.raises(ShopeeApiError, match="already completed"):
        hook.complete_video_upload(upload_id, [0, 1, 2], 1)
    assert hook.test_connection()[0]


def test_a_wrong_partner_key_fails_at_once_with_what_to_do(shop, shopee_connection):
    shopee_connection(shop, password="not-the-partner-key")
    with pytest.raises(ShopeeRefusal, match="error_sign") as refused:
        ShopeeHook().get_items([1])
    assert "partner key (connection password) does not match" in str(refused.value)
    assert isinstance(refused.value, AirflowFailException)


def test_an_expired_token_is_renewed_once_for_every_task(shop, caplog):
    requests.post(f"{shop.url}/_sandbox/shopee/tokens/expire", timeout=10)
    caplog.set_level(logging.INFO)
    first, second = ShopeeHook(), ShopeeHook()
    first.get_items([new_item(shop)])
    second.get_items([new_item(shop)])  # a later task finds the pair the first one stored
    assert shop.backend.request_counts["/api/v2/auth/access_token/get"] == 1
    assert first.credentials.access_token == second.credentials.access_token != shop.config.access_token
    for secret in (shop.config.partner_key, first.credentials.access_token, first.credentials.refresh_token):
        assert secret not in caplog.text


def test_the_part_size_follows_the_connection(shop, shopee_connection):
    connection = shop.airflow_connection()
    shopee_connection(shop, extra={**connection["extra"], "part_size": PART_BYTES_DECIMAL})
    assert ShopeeHook().credentials.part_size == PART_BYTES_DECIMAL
    shopee_connection(shop, extra={**connection["extra"], "part_size": 5_000_000})
    with pytest.raises(AirflowFailException, match="part_size 5000000 is neither"):
        assert ShopeeHook().credentials


# ------------------------------------------------------------------------------ operators and steps


def run_init(task_context, clip, item_id, **kwargs):
    from media_upload.operators.shopee import ShopeeInitVideoUploadOperator

    context = task_context()
    chunks = ShopeeInitVideoUploadOperator(
        task_id="init", source=str(clip), item_id=item_id, **kwargs
    ).execute(context)
    return context, chunks


def test_operators_upload_complete_in_the_chunk_and_attach(shop, clip, task_context):
    from media_upload.operators.shopee import (
        ShopeeCompleteUploadOperator,
        ShopeeUpdateItemVideoOperator,
        ShopeeUploadChunkOperator,
    )
    from media_upload.sensors.shopee import ShopeeVideoUploadSensor

    item_id = new_item(shop)
    context, chunks = run_init(task_context, clip, item_id)
    assert [c["label"] for c in chunks] == ["chunk 1/1 · parts 1–3 · 8.5 MB"]
    chunk_task = ShopeeUploadChunkOperator(task_id="chunk", chunk=chunks[0])
    chunk_task.execute(context)
    job = context["ti"].xcom_pull(key="job")
    video_upload_id = ShopeeCompleteUploadOperator(task_id="complete", job=job).execute(context)
    assert chunk_task.chunk["label"] == f"chunk 1/1 · parts 1–3 · 8.5 MB · completed upload {video_upload_id}"
    assert shop.backend.request_counts["/api/v2/media_space/complete_video_upload"] == 1  # the chunk did it
    row = UploadLedger().get("shopee", "shopee_default", f"item:{item_id}", job["content_sha256"])
    assert (row.state, row.video_id) == (COMMITTED, video_upload_id)
    sensor = ShopeeVideoUploadSensor(
        task_id="wait", video_upload_id=video_upload_id, deferrable=False, poke_interval=0.1
    )
    assert sensor.execute(context) == video_upload_id
    ShopeeUpdateItemVideoOperator(task_id="attach", item_id=item_id, video_upload_id=video_upload_id).execute(
        context
    )
    assert UploadLedger().get(*row.key).state == ATTACHED
    # A second run with the same video and item uploads nothing.
    calls = dict(shop.backend.request_counts)
    assert run_init(task_context, clip, item_id)[1] == []
    assert shop.backend.request_counts["/api/v2/media_space/init_video_upload"] == calls.get(
        "/api/v2/media_space/init_video_upload"
    )


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"duration_seconds": 6}, "Video is too short"),
        ({"duration_seconds": 75}, "Video is too long"),
        ({"width": 1920, "height": 1080, "duration_seconds": 20}, "exceeds 1280x1280"),
    ],
)
def test_a_video_shopee_would_fail_is_refused_before_any_call(
    shop, sample_video, task_context, options, fragment
):
    video = sample_video(1_000_000, seed=9, **options)
    with pytest.raises(AirflowFailException, match=fragment):
        run_init(task_context, video, new_item(shop))
    assert "/api/v2/media_space/init_video_upload" not in shop.backend.request_counts


def test_an_unknown_item_is_refused_before_the_upload(shop, clip, task_context):
    with pytest.raises(AirflowFailException, match="Shopee has no item 999999"):
        run_init(task_context, clip, "999999")
    assert "/api/v2/media_space/init_video_upload" not in shop.backend.request_counts


def test_a_lost_complete_answer_is_settled_without_a_second_video(shop, clip, task_context):
    """The complete took effect and its answer never came: asking again adopts it ("already completed")."""
    from media_upload.operators.shopee import ShopeeCompleteUploadOperator, ShopeeUploadChunkOperator

    item_id = new_item(shop)
    context, chunks = run_init(task_context, clip, item_id)
    requests.post(
        f"{shop.url}/_sandbox/shopee/faults",
        json={"kind": "drop", "api": "/api/v2/media_space/complete_video_upload"},
        timeout=10,
    )
    ShopeeUploadChunkOperator(task_id="chunk", chunk=chunks[0]).execute(context)
    job = context["ti"].xcom_pull(key="job")
    video_upload_id = ShopeeCompleteUploadOperator(task_id="complete", job=job).execute(context)
    assert video_upload_id == job["upload_id"]
    state = shop.backend.snapshot()
    assert len(state["uploads"]) == 1  # one upload, completed once
