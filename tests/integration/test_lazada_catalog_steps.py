"""Catalog steps on their own: the ledger guards that keep a cleared or re-run task from a second video."""

from __future__ import annotations

import hashlib
import json

import pytest

from media_upload.catalog.lazada import (
    LazadaCatalogAttachOperator,
    LazadaCatalogCommitOperator,
    LazadaCatalogInitOperator,
    LazadaCatalogPlanOperator,
)
from media_upload.ledger import ATTACHED, COMMITTED, REJECTED, LedgerEntry, UploadLedger
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.integration.conftest import COVER_URL, LazopDriver

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


class FakeTaskInstance:
    def __init__(self) -> None:
        self.pushed: dict[str, object] = {}

    def xcom_push(self, key: str, value: object) -> None:
        self.pushed[key] = value


@pytest.fixture
def setup(lazada_sandbox, lazada_connection, ledger_connection, sample_video, tmp_path):
    lazada_connection(lazada_sandbox)
    ledger_connection("sqlite")
    video = sample_video(1_200_000, seed=3)
    return lazada_sandbox, video


def job_for(video, product: str = "sku:shoe", label: str = "shoe") -> dict:
    data = video.read_bytes()
    return {
        "line": 2,
        "label": label,
        "product": product,
        "seller_sku": label,
        "item_id": None,
        "sku_ids": [],
        "video": str(video),
        "name": video.name,
        "title": "Shoe",
        "cover_url": COVER_URL,
        "video_usage": "pro_main_video",
        "block_size": 1_000_000,
        "file_size": len(data),
        "content_sha256": hashlib.sha256(data).hexdigest(),
        "followers": [],
    }


def context(run_id: str = "run-1") -> dict:
    return {"run_id": run_id, "ti": FakeTaskInstance()}


def test_init_and_commit_never_make_a_second_video_for_recorded_content(setup):
    sandbox, video = setup
    job = job_for(video)
    UploadLedger().record(
        LedgerEntry(
            "lazada",
            "lazada_default",
            job["product"],
            job["content_sha256"],
            COMMITTED,
            video_id="31111111111",
        )
    )
    initialised = LazadaCatalogInitOperator(task_id="init", job=job, account="lazada_default").execute(
        context()
    )
    committed = LazadaCatalogCommitOperator(
        task_id="commit", job={**job, "upload_id": "U"}, parts=[], account="lazada_default"
    ).execute(context())
    assert initialised["video_id"] == committed["video_id"] == "31111111111"
    assert "/media/video/block/create" not in sandbox.backend.request_counts
    assert "/media/video/block/commit" not in sandbox.backend.request_counts


def plan(manifest: str) -> tuple[list[dict], dict]:
    ctx = context()
    uploads = LazadaCatalogPlanOperator(task_id="plan", manifest=manifest, block_size=1_000_000).execute(ctx)
    return uploads, ctx["ti"].pushed


def write_manifest(tmp_path, video, *skus: str) -> str:
    path = tmp_path / "m.csv"
    rows = [f"{sku},,,{video},Title {sku},{COVER_URL}" for sku in skus]
    path.write_text("seller_sku,item_id,sku_id,video,title,cover_url\n" + "\n".join(rows) + "\n")
    return str(path)


def test_plan_decisions_from_the_ledger(setup, tmp_path):
    _, video = setup
    job = job_for(video)
    ledger = UploadLedger()
    key = ("lazada", "lazada_default")
    ledger.record(LedgerEntry(*key, "sku:attached", job["content_sha256"], ATTACHED, video_id="31"))
    ledger.record(LedgerEntry(*key, "sku:rejected", job["content_sha256"], REJECTED, reason="audit said no"))
    manifest = write_manifest(tmp_path, video, "attached", "rejected", "fresh")
    uploads, pushed = plan(manifest)
    assert uploads == []  # the content is already a video: "fresh" reuses it
    assert [(r["label"], r["video_id"]) for r in pushed["resume"]] == [("fresh", "31")]
    skipped = {row["label"]: row["reason"] for row in pushed["report"]["skipped"]}
    assert skipped["attached"] == "already carries video 31"
    assert skipped["rejected"].startswith("this content was rejected before (audit said no)")
    assert (
        "reuses the video uploaded for sku:attached"
        in ledger.get(*key, "sku:fresh", job["content_sha256"]).reason
    )


def test_plan_uploads_shared_content_once(setup, tmp_path):
    _, video = setup
    uploads, pushed = plan(write_manifest(tmp_path, video, "left", "right"))
    assert [u["label"] for u in uploads] == ["left"]
    assert [f["label"] for f in uploads[0]["followers"]] == ["right"]
    assert pushed["resume"] == []


def test_attach_finds_the_item_by_seller_sku_and_emits_the_asset_extra(setup, lazop):
    sandbox, video = setup
    driver = LazopDriver(lazop, sandbox)
    image = driver.call("/image/upload", files={"image": PNG})["data"]["image"]["url"]
    driver.call("/product/create", {"payload": json.dumps(sample_product_payload(image, "shoe"))})
    video_id = driver.upload(video)
    sandbox.backend.set_video_outcome(video_id, "AUDIT_SUCCESS", finish_now=True)
    job = {**job_for(video), "video_id": video_id}

    class Events(dict):
        def __missing__(self, key):
            self[key] = type("Event", (), {"extra": None})()
            return self[key]

    from media_upload.catalog.lazada import product_videos_asset

    asset = product_videos_asset()
    ctx = {**context(), "outlet_events": Events()}
    attach = LazadaCatalogAttachOperator(task_id="attach", job=job, account="lazada_default", outlets=[asset])
    result = attach.execute(ctx)
    assert ctx["outlet_events"][asset].extra == {
        "seller_sku": "shoe",
        "item_id": result["item_id"],
        "video_id": video_id,
        "content_sha256": job["content_sha256"],
    }
    assert UploadLedger().get("lazada", "lazada_default", "sku:shoe", job["content_sha256"]).state == ATTACHED


def test_a_video_too_big_for_one_batch_is_a_bad_row_not_an_endless_next_batch(setup, tmp_path, monkeypatch):
    _, video = setup
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "1")
    uploads, pushed = plan(write_manifest(tmp_path, video, "big"))  # 1.2 MB in 1 MB blocks: two blocks
    assert uploads == [] and pushed["report"]["next_after_line"] is None
    (problem,) = pushed["report"]["invalid"]
    assert (
        problem["field"] == "block_size"
        and "2 blocks of 1,000,000 bytes exceed [core] max_map_length (1)" in problem["reason"]
    )
