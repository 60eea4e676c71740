"""Sample products and videos for the emulators, and the run conf of each example DAG that uses them.

``make demo``, ``make stack``, ``make stack-demo`` and ``make airflow`` all start from these: a product
to attach the bundled sample video to, a Shopee item and a 15-second video for it, a 24 MB video for
Huawei VOD, and a small catalog listed on every marketplace (products on Lazada and Shopee, a twin that
shares a video, one video the audit rejects, two VOD assets, two bad rows).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import requests

from media_upload.hooks.lazada import LazadaHook
from media_upload.sandbox.lazada.products import sample_product_payload
from media_upload.sandbox.sample_media import write_sample_mp4
from media_upload.sandbox.shopee.products import sample_item

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "include" / "media" / "product-demo.mp4"
COVER = ROOT / "include" / "media" / "cover.png"
LAZADA_BLOCK = 128 * 1024  # small on purpose: the 600 KB sample then shows five blocks in two chunk tasks
LAZADA_CHUNKS = 2


def cover_url(hook: LazadaHook) -> str:
    """The sample cover, uploaded first: Lazada takes only images it hosts."""
    return hook.upload_image(COVER.read_bytes(), COVER.name)


def product_video(hook: LazadaHook, cover: str) -> dict[str, Any]:
    """A product to attach the bundled sample video to; the ``lazada_product_video`` conf for it."""
    created = hook.create_product(sample_product_payload(cover, "demo-backpack-blue", name="Demo backpack"))
    return {
        "video_path": str(SAMPLE),
        "title": "Demo backpack in 6 seconds",
        "cover_url": cover,
        "item_id": str(created["item_id"]),
        "sku_id": str(created["sku_list"][0]["sku_id"]),
        "block_size": LAZADA_BLOCK,
        "chunks": LAZADA_CHUNKS,
    }


def shopee_item(shopee_url: str, name: str) -> str:
    """An item in the Shopee emulator (its seeding route): its id."""
    answer = requests.post(f"{shopee_url}/_sandbox/shopee/items", json=sample_item(name), timeout=30)
    answer.raise_for_status()
    return str(answer.json()["item_id"])


def shopee_video(shopee_url: str, folder: Path) -> dict[str, Any]:
    """A Shopee item and a 15-second 5 MB video for it (two 4 MiB parts); the ``shopee_product_video`` conf."""
    folder.mkdir(parents=True, exist_ok=True)
    video = write_sample_mp4(
        folder / "shopee-15s.mp4", 5_000_000, seed=15, duration_seconds=15, width=720, height=720
    )
    item_id = shopee_item(shopee_url, "Demo backpack on Shopee")
    return {"video_path": str(video), "item_id": item_id, "chunks": 0, "parts_in_flight": 0}


def vod_video(folder: Path) -> dict[str, Any]:
    """A generated 24 MB, 30 s video; the ``huawei_vod_upload`` conf for it."""
    folder.mkdir(parents=True, exist_ok=True)
    video = write_sample_mp4(folder / "catalog-24mb.mp4", 24_000_000, seed=24, duration_seconds=30)
    return {"video_path": str(video), "title": "Demo backpack, 30 s", "auto_publish": True}


def catalog(hook: LazadaHook, folder: Path, cover: str, shopee_url: str) -> dict[str, Any]:
    """A catalog on every marketplace; the ``catalog_videos`` conf.

    Six products listed on Lazada and on Shopee, a twin sharing product 1's video (Lazada), a video the
    audit rejects (Lazada; on Shopee it passes), two Huawei VOD assets, and two bad rows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for number in range(6):
        sku = f"catalog-{number + 1}"
        write_sample_mp4(
            folder / f"{sku}.mp4", 1_500_000 + 250_000 * number, seed=100 + number, duration_seconds=12
        )
        hook.create_product(sample_product_payload(cover, sku, name=f"Catalog product {number + 1}"))
        title = f"Product {number + 1}" + (" [AUDIT_FAILED]" if number == 5 else "")
        rows.append(f"{sku},{shopee_item(shopee_url, sku)},,{sku}.mp4,{title},{cover}")
    hook.create_product(sample_product_payload(cover, "catalog-twin", name="Twin of product 1"))
    rows += [
        f"catalog-twin,,,catalog-1.mp4,Twin,{cover}",
        f",,lookbook-1,catalog-2.mp4,Lookbook 1,{cover}",
        f",,lookbook-2,catalog-3.mp4,Lookbook 2,{cover}",
        f"catalog-8,,,missing.mp4,Lost,{cover}",
        "catalog-9,,,catalog-2.mp4,No cover,cover.png",
    ]
    manifest = folder / "catalog.csv"
    manifest.write_text(
        "seller_sku,shopee_item_id,huawei_vod,video,title,cover_url\n" + "\n".join(rows) + "\n"
    )
    return {
        "manifest": str(manifest),
        "block_size": 1_000_000,
        "after_line": 0,
        "fail_on_video_errors": False,
    }


def catalog_manifest(
    hook: LazadaHook, manifest: Path, rows: Iterable[tuple[str, Path, str]], cover: str
) -> Path:
    """A product in the emulator for each ``(seller_sku, video, title)`` row, and the manifest listing them
    (videos relative to the manifest's folder)."""
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seller_sku", "video", "title", "cover_url"])
        for sku, video, title in rows:
            hook.create_product(sample_product_payload(cover, sku, name=title))
            writer.writerow([sku, video.relative_to(manifest.parent).as_posix(), title, cover])
    return manifest
