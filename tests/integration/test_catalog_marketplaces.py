"""One catalog for every marketplace, against the three emulators: each row's video goes up once per
marketplace it is listed on, each with its own ledger row, wait and attach; a failure stays with its
video and marketplace; VOD rows (a video with no product) end ready; a second run sends nothing."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import pytest
import requests

from media_upload.hooks.lazada import LazadaHook
from media_upload.ledger import ATTACHED, AUDITED, UploadLedger
from media_upload.sandbox.lazada.products import sample_product_payload
from media_upload.sandbox.shopee.products import sample_item
from tests.integration.catalog import CatalogRun

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
CONNECTIONS = {"lazada": "lazada_default", "shopee": "shopee_default", "huawei_vod": "huawei_vod_default"}


def test_every_video_goes_to_every_marketplace_it_is_listed_on_once(
    marketplaces, tmp_path, sample_video, task_context
):
    lazada, shopee, vod = marketplaces
    hook = LazadaHook()
    cover = hook.upload_image(PNG, "cover.png")
    folder = tmp_path / "catalog"
    folder.mkdir()
    rows = []
    for n in range(3):
        sku = f"both-{n}"
        sample_video(900_000 + 10_000 * n, seed=n, name=f"catalog/{sku}.mp4", duration_seconds=12)
        hook.create_product(sample_product_payload(cover, sku, name=sku))
        item = requests.post(f"{shopee.url}/_sandbox/shopee/items", json=sample_item(sku), timeout=10).json()
        rows.append({"seller_sku": sku, "shopee_item_id": item["item_id"], "video": f"{sku}.mp4"})
    # Too short for Shopee (under 10 s), fine for Lazada: the Shopee half fails alone, before any upload.
    sample_video(800_000, seed=9, name="catalog/short.mp4", duration_seconds=5)
    hook.create_product(sample_product_payload(cover, "short", name="short"))
    short_item = requests.post(
        f"{shopee.url}/_sandbox/shopee/items", json=sample_item("short"), timeout=10
    ).json()
    rows.append({"seller_sku": "short", "shopee_item_id": short_item["item_id"], "video": "short.mp4"})
    rows.append({"huawei_vod": "lookbook", "video": "both-1.mp4"})  # a video with no product
    manifest = folder / "catalog.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["seller_sku", "shopee_item_id", "huawei_vod", "video", "title", "cover_url"]
        )
        writer.writeheader()
        writer.writerows({**row, "title": f"Video {row['video']}", "cover_url": cover} for row in rows)

    run = CatalogRun(task_context, connections=CONNECTIONS)
    summary = run.whole(str(manifest), chunks=2)
    by = {(row["platform"], row["product"]): row for row in summary["rows"]}
    for n in range(3):
        assert by[("lazada", f"both-{n}")]["state"] == ATTACHED
        assert by[("shopee", f"shopee {rows[n]['shopee_item_id']}")]["state"] == ATTACHED
    assert by[("lazada", "short")]["state"] == ATTACHED
    (invalid,) = [row for row in summary["rows"] if row["state"] == "invalid"]
    assert (invalid["line"], invalid["platform"]) == (5, "shopee") and "Video is too short" in invalid[
        "reason"
    ]
    assert by[("huawei_vod", "lookbook")]["state"] == AUDITED  # ready: a VOD asset goes on no product
    assert (summary["attached"], summary["failed"], summary["invalid"]) == (8, 0, 1)
    assert summary["uploaded"] == 8  # 4 to Lazada, 3 to Shopee and the VOD asset, each counted once
    sizes = [(folder / row["video"]).stat().st_size for row in rows]
    assert summary["bytes_uploaded"] == sum(sizes[:4]) + sum(sizes[:3]) + sizes[1]

    # Each video went up once per marketplace, whole, and sits on its product there.
    lazada_state, shopee_state = lazada.backend.snapshot(), shopee.backend.snapshot()
    assert len(lazada_state["videos"]) == 4 and len(shopee_state["uploads"]) == 3
    md5s = {hashlib.md5(Path(folder / row["video"]).read_bytes()).hexdigest() for row in rows}
    assert {video["md5"] for video in lazada_state["videos"].values()} <= md5s
    assert {upload["video_md5"] for upload in shopee_state["uploads"].values()} <= md5s
    for n in range(3):
        assert shopee_state["items"][str(rows[n]["shopee_item_id"])]["video_upload_id"]
    (asset,) = vod.backend.snapshot()["assets"].values()
    assert asset["status"] == "PUBLISHED"
    entry = next(e for e in UploadLedger().all() if e.platform == "huawei_vod")
    assert (entry.product, entry.state) == ("lookbook", AUDITED)

    # A second run sends nothing anywhere.
    sent = (
        lazada.backend.request_counts["/media/video/block/upload"],
        shopee.backend.request_counts["/api/v2/media_space/upload_video_part"],
        vod.backend.request_counts["UploadPart"],
    )
    again = CatalogRun(task_context, "run-2", connections=CONNECTIONS).whole(str(manifest), chunks=2)
    assert again["uploaded"] == 0 and again["bytes_uploaded"] == 0
    assert (
        lazada.backend.request_counts["/media/video/block/upload"],
        shopee.backend.request_counts["/api/v2/media_space/upload_video_part"],
        vod.backend.request_counts["UploadPart"],
    ) == sent


def test_a_marketplace_whose_states_cannot_be_read_does_not_hold_back_the_others(
    marketplaces, tmp_path, sample_video, task_context
):
    """Shopee answers every state read with its daily call limit: Lazada's videos are attached all the
    same, the Shopee rows keep their videos with the reason, and the task fails so a retry finishes them."""
    from airflow.sdk.exceptions import AirflowException

    from media_upload.ledger import COMMITTED

    _, shopee, _ = marketplaces
    hook = LazadaHook()
    cover = hook.upload_image(PNG, "cover.png")
    folder = tmp_path / "catalog"
    folder.mkdir()
    lines = ["seller_sku,shopee_item_id,video,title,cover_url"]
    for n in range(2):
        sku = f"pair-{n}"
        sample_video(700_000 + n, seed=20 + n, name=f"catalog/{sku}.mp4", duration_seconds=12)
        hook.create_product(sample_product_payload(cover, sku, name=sku))
        item = requests.post(f"{shopee.url}/_sandbox/shopee/items", json=sample_item(sku), timeout=10).json()
        lines.append(f"{sku},{item['item_id']},{sku}.mp4,Video {n},{cover}")
    manifest = folder / "catalog.csv"
    manifest.write_text("\n".join(lines) + "\n")
    fault = {"kind": "error_limit", "api": "/api/v2/media_space/get_video_upload_result", "count": 1000}
    assert requests.post(f"{shopee.url}/_sandbox/shopee/faults", json=fault, timeout=10).ok

    run = CatalogRun(task_context, connections=CONNECTIONS)
    run.upload(run.plan(str(manifest)))
    run.settle()
    with pytest.raises(AirflowException, match="state not read: shopee:") as failed:
        run.attach()
    assert "daily API call limit" in str(failed.value)
    rows = {(e.platform, e.product): e for e in UploadLedger().all()}
    assert [rows[("lazada", f"sku:pair-{n}")].state for n in range(2)] == [ATTACHED, ATTACHED]
    shopee_rows = [e for e in rows.values() if e.platform == "shopee"]
    assert len(shopee_rows) == 2
    assert all(e.state == COMMITTED and "could not be read" in (e.reason or "") for e in shopee_rows)

    requests.delete(f"{shopee.url}/_sandbox/shopee/faults", timeout=10)
    run.attach()  # the task's retry
    assert all(e.state == ATTACHED for e in UploadLedger().all())
    assert run.report()["attached"] == 4
