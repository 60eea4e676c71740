"""The Lazada operators against the emulator: checks before any API call, range reads, commit, product."""

from __future__ import annotations

import hashlib
import json

import jinja2
import pytest
import requests
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

from media_upload.hooks.lazada import LazadaApiError
from media_upload.operators.lazada import (
    LazadaCommitVideoOperator,
    LazadaCreateProductOperator,
    LazadaInitVideoUploadOperator,
    LazadaUpdateProductVideoOperator,
    LazadaUploadVideoBlockOperator,
)
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.integration.conftest import COVER_URL, LazopDriver

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


@pytest.fixture
def sandbox(lazada_sandbox, lazada_connection):
    lazada_connection(lazada_sandbox)
    return lazada_sandbox


def init(source: str, **options) -> list[dict]:
    options.setdefault("title", "Red dress")
    options.setdefault("cover_url", COVER_URL)
    return LazadaInitVideoUploadOperator(task_id="init", source=source, **options).execute({})


def upload(plan: list[dict]) -> list[dict]:
    return [LazadaUploadVideoBlockOperator(task_id="block", **block).execute({}) for block in plan]


def commit(plan, parts, **options) -> str:
    options.setdefault("title", "Red dress")
    options.setdefault("cover_url", COVER_URL)
    return LazadaCommitVideoOperator(task_id="commit", plan=plan, parts=parts, **options).execute({})


def test_init_plans_blocks_and_calls_init_create_video(sandbox, sample_video):
    path = sample_video(5_000_000)
    plan = init(str(path), block_size=2_000_000)
    assert [(b["block_no"], b["offset"], b["length"]) for b in plan] == [
        (0, 0, 2_000_000),
        (1, 2_000_000, 2_000_000),
        (2, 4_000_000, 1_000_000),
    ]
    assert {b["upload_id"] for b in plan} == set(sandbox.backend.snapshot()["uploads"])
    assert all(
        b["block_count"] == 3 and b["file_size"] == 5_000_000 and b["source"] == str(path) for b in plan
    )
    assert len(json.dumps(plan)) < 2_000  # a small XCom: ids and offsets, never bytes


def test_default_block_size_is_under_three_megabytes(sandbox, sample_video):
    plan = init(str(sample_video(7_000_000)))
    assert max(b["length"] for b in plan) == 2 * 1024 * 1024 < 3_000_000


@pytest.mark.parametrize(
    ("setup", "options", "fragment"),
    [
        ("missing", {}, "missing.mp4: no such file"),
        ("empty", {}, "is empty (0 bytes); Lazada needs 1 to 99,999,999 bytes"),
        ("huge", {}, "is 100,000,000 bytes; Lazada takes files under 100,000,000 bytes"),
        ("text", {}, "is not an MP4/MOV video"),
        ("video", {"title": " "}, "the video title is missing"),
        ("video", {"cover_url": ""}, "is not an http(s) URL"),
        ("video", {"cover_url": "cover.png"}, "is not an http(s) URL"),
        ("video", {"block_size": 0}, "block_size 0 is outside 1..10,000,000 bytes"),
        ("video", {"block_size": 10_000_001}, "block_size 10,000,001 is outside"),
    ],
)
def test_bad_input_fails_before_any_api_call(sandbox, tmp_path, sample_video, setup, options, fragment):
    paths = {
        "missing": tmp_path / "missing.mp4",
        "empty": tmp_path / "empty.mp4",
        "huge": tmp_path / "huge.mp4",
        "text": tmp_path / "notes.mp4",
    }
    if setup == "empty":
        paths["empty"].write_bytes(b"")
    elif setup == "huge":
        with paths["huge"].open("wb") as handle:
            handle.truncate(100_000_000)
    elif setup == "text":
        paths["text"].write_text("not a video")
    source = str(sample_video(5000)) if setup == "video" else str(paths[setup])
    with pytest.raises(AirflowFailException) as refused:
        init(source, **options)
    assert fragment in str(refused.value)
    assert sandbox.backend.request_counts == {}


def test_too_many_blocks_for_max_map_length(sandbox, sample_video, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "4")
    with pytest.raises(AirflowFailException, match=r"make 5 blocks, more than \[core\] max_map_length \(4\)"):
        init(str(sample_video(5000)), block_size=1000)
    assert sandbox.backend.request_counts == {}


def test_unknown_connection_and_wrong_secret(lazada_sandbox, lazada_connection, sample_video):
    source = str(sample_video(5000))
    with pytest.raises(AirflowNotFoundException, match="lazada_nowhere"):
        init(source, lazada_conn_id="lazada_nowhere")
    lazada_connection(lazada_sandbox, password="not-the-secret")
    with pytest.raises(LazadaApiError, match="IncompleteSignature: The request signature does not conform"):
        init(source)


def test_blocks_and_commit_make_one_intact_video(sandbox, sample_video):
    path = sample_video(1_234_567, seed=7)
    plan = init(str(path), block_size=500_000)
    parts = upload(plan)
    assert [p["partNumber"] for p in parts] == [1, 2, 3]
    video_id = commit(plan, list(reversed(parts)))
    video = sandbox.backend.snapshot()["videos"][video_id]
    assert video["md5"] == hashlib.md5(path.read_bytes()).hexdigest() and video["title"] == "Red dress"


def test_block_task_refuses_a_source_that_changed(sandbox, sample_video):
    path = sample_video(50_000)
    plan = init(str(path), block_size=20_000)
    with path.open("ab") as handle:
        handle.write(b"more")
    with pytest.raises(
        AirflowFailException, match="is now 50,004 bytes but the upload was planned for 50,000"
    ):
        upload(plan[:1])


def test_block_label_names_the_block():
    task = LazadaUploadVideoBlockOperator(
        task_id="b", upload_id="U", source="s", block_no=2, block_count=34, offset=0, length=1
    )
    assert jinja2.Template(task.map_index_template).render(task=task) == "block 3/34"
    task.video_label = "SKU-1"
    assert jinja2.Template(task.map_index_template).render(task=task) == "SKU-1 block 3/34"


def test_commit_checks_parts_and_metadata_before_calling(sandbox, sample_video):
    plan = init(str(sample_video(3000)), block_size=1000)
    parts = upload(plan)
    with pytest.raises(AirflowFailException, match=r"has parts \[1, 3\] but needs exactly 1..3"):
        commit(plan, [parts[0], parts[2]])
    with pytest.raises(AirflowFailException, match="title is missing"):
        commit(plan, parts, title="")
    assert "/media/video/block/commit" not in sandbox.backend.request_counts


def test_a_99_megabyte_file_in_ten_megabyte_blocks(sandbox, sample_video):
    path = sample_video(99_000_000, seed=99)
    plan = init(str(path), block_size=10_000_000)
    assert len(plan) == 10 and plan[-1]["length"] == 9_000_000
    video_id = commit(plan, upload(plan))
    digest = hashlib.md5()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    stored = sandbox.backend.snapshot()["videos"][video_id]
    assert (stored["size"], stored["md5"]) == (99_000_000, digest.hexdigest())


# ------------------------------------------------------------------------------ products


@pytest.fixture
def product(sandbox, lazop):
    """An item with two SKUs, created through the official client."""
    driver = LazopDriver(lazop, sandbox)
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    payload = sample_product_payload(image, "shoe-41", "shoe-42", name="Shoe")
    data = driver.call("/product/create", {"payload": json.dumps(payload)})["data"]
    return {
        "item_id": str(data["item_id"]),
        "sku_ids": [str(s["sku_id"]) for s in data["sku_list"]],
        "image": image,
    }


def audited_video(sandbox, lazop, sample_video, title: str = "Shoe") -> str:
    driver = LazopDriver(lazop, sandbox)
    video_id = driver.upload(sample_video(3000), title=title)
    requests.post(
        f"{sandbox.url}/_sandbox/lazada/videos/{video_id}/outcome",
        json={"outcome": "AUDIT_SUCCESS", "finish_now": True},
    )
    return video_id


def attach(**options) -> dict:
    return LazadaUpdateProductVideoOperator(task_id="attach", **options).execute({})


def test_attach_names_every_sku_when_none_given_and_is_idempotent(sandbox, lazop, sample_video, product):
    video_id = audited_video(sandbox, lazop, sample_video)
    result = attach(item_id=product["item_id"], video_id=video_id)
    assert result["sku_ids"] == product["sku_ids"] and result["previous_video_id"] is None
    assert sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]["video"] == video_id
    again = attach(item_id=product["item_id"], video_id=video_id, sku_ids=",".join(product["sku_ids"]))
    assert again["previous_video_id"] == video_id
    assert sandbox.backend.request_counts["/product/update"] == 1


def test_attach_replaces_then_removes(sandbox, lazop, sample_video, product):
    first, second = audited_video(sandbox, lazop, sample_video), audited_video(sandbox, lazop, sample_video)
    attach(item_id=product["item_id"], video_id=first, sku_ids=product["sku_ids"][0])
    assert attach(item_id=product["item_id"], video_id=second)["previous_video_id"] == first
    removed = attach(item_id=product["item_id"], remove_video=True)
    assert removed["previous_video_id"] == second and removed["video_id"] is None
    assert "video" not in sandbox.backend.snapshot()["products"][product["item_id"]]["attributes"]


def test_attach_refuses_a_video_not_yet_audited(lazop, make_lazada_sandbox, lazada_connection, sample_video):
    sandbox = make_lazada_sandbox(audit_seconds=3600)
    lazada_connection(sandbox)
    driver = LazopDriver(lazop, sandbox)
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    payload = json.dumps(sample_product_payload(image, "cap", name="Cap"))
    created = LazadaCreateProductOperator(task_id="create", payload=payload).execute({})
    video_id = driver.upload(sample_video(3000))
    with pytest.raises(LazadaApiError) as refused:
        attach(item_id=created["item_id"], video_id=video_id)
    assert refused.value.code == "309"


def test_attach_needs_a_video_or_removal(sandbox):
    with pytest.raises(AirflowFailException, match="no video_id to attach"):
        attach(item_id="1")
    with pytest.raises(AirflowFailException, match="no item_id"):
        attach(item_id=" ", video_id="3")


def test_create_product_with_the_video(sandbox, lazop, sample_video, product):
    video_id = audited_video(sandbox, lazop, sample_video)
    payload = sample_product_payload(product["image"], "boot-1", name="Boot")
    data = LazadaCreateProductOperator(task_id="create", payload=payload, video_id=video_id).execute({})
    assert sandbox.backend.snapshot()["products"][str(data["item_id"])]["attributes"]["video"] == video_id
    with pytest.raises(AirflowFailException, match="JSON payload"):
        LazadaCreateProductOperator(task_id="create", payload="<Request/>", video_id=video_id).execute({})
