"""One catalog for every marketplace on a real Airflow (include/stack.py: LocalExecutor, PostgreSQL,
api-server, scheduler, dag-processor, triggerer as processes, push on), every platform reached only
through a forward proxy named in its connection: 20 products listed on Lazada and on Shopee and 5 Huawei
VOD assets end with every video on every marketplace it belongs to; a second run sends 0 bytes; with
10 % of requests faulted, a new catalog makes no second video."""

from __future__ import annotations

import csv
import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from media_upload.sandbox.lazada.products import sample_product_payload
from media_upload.sandbox.sample_media import write_sample_mp4
from media_upload.sandbox.shopee.products import sample_item
from tests.proxy import ForwardProxy, forward_proxy

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "include"))

from stack import LocalStack  # noqa: E402

DAG = "catalog_videos"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
NAMES = {"lazada": "lazada.test", "shopee": "shopee.test", "huawei-vod": "vod.test"}
#: Quick client retries: faults end sooner.
CLIENT = {"backoff_seconds": 0.1, "backoff_max_seconds": 1.0, "throttle_pause_seconds": 0.2}


@pytest.fixture(scope="module")
def proxy() -> Iterator[ForwardProxy]:
    with forward_proxy(hosts=dict.fromkeys(NAMES.values(), "127.0.0.1")) as running:
        yield running


@pytest.fixture(scope="module")
def stack(proxy: ForwardProxy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    transport = {"proxies": proxy.url(), **CLIENT}
    with LocalStack(
        tmp_path_factory.mktemp("catalog") / "airflow",
        executor="LocalExecutor",
        database="airflow_catalog",
        sandboxes={
            "lazada": ["--audit-seconds", "3"],
            "shopee": ["--transcode-seconds", "3"],
            "huawei-vod": ["--transcode-seconds", "3"],
        },
        lazada_push=True,
        public_names=NAMES,
        connection_extras={
            **{name: transport for name in ("shopee_default", "huawei_vod_default")},
            # A push the faults lost is delivered again much later: the wait polls after 20 s instead.
            "lazada_default": {**transport, "push_poll_seconds": 20},
        },
    ) as running:
        for name in ("lazada_default", "shopee_default"):  # this process seeds products through the proxy too
            os.environ[f"AIRFLOW_CONN_{name.upper()}"] = json.dumps(running.connections()[name])
        running.wait_for_dags(DAG)
        yield running


def emulator(stack: LocalStack, name: str, path: str) -> Any:
    return requests.get(f"{stack.running_sandboxes[name].url}/_sandbox/{name}/{path}", timeout=60).json()


def bytes_requests(stack: LocalStack) -> int:
    """Requests that carried video bytes, at every emulator."""
    counts = {name: emulator(stack, name, "state")["request_counts"] for name in NAMES}
    return (
        counts["lazada"].get("/media/video/block/upload", 0)
        + counts["shopee"].get("/api/v2/media_space/upload_video_part", 0)
        + counts["huawei-vod"].get("UploadPart", 0)
        + counts["huawei-vod"].get("PutObject", 0)
    )


def catalog(stack: LocalStack, tag: str, products: int = 20, assets: int = 5) -> tuple[Path, dict[str, str]]:
    """Products on Lazada and Shopee and their videos, VOD-only videos; the manifest, and Shopee item ids."""
    from media_upload.hooks.lazada import LazadaHook

    hook = LazadaHook()
    cover = hook.upload_image(PNG, "cover.png")
    folder = stack.media / tag
    folder.mkdir()
    shopee = stack.running_sandboxes["shopee"].url
    items: dict[str, str] = {}
    with (folder / "catalog.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seller_sku", "shopee_item_id", "huawei_vod", "video", "title", "cover_url"])
        for n in range(products + assets):
            sku = f"{tag}-{n:02d}"
            write_sample_mp4(
                folder / f"{sku}.mp4", 400_000 + 7_000 * n, seed=hash(sku) % 10_000, duration_seconds=12
            )
            if n < products:
                hook.create_product(sample_product_payload(cover, sku, name=sku))
                answer = requests.post(f"{shopee}/_sandbox/shopee/items", json=sample_item(sku), timeout=60)
                items[sku] = str(answer.json()["item_id"])
                writer.writerow([sku, items[sku], "", f"{sku}.mp4", f"Video {sku}", cover])
            else:
                writer.writerow(["", "", sku, f"{sku}.mp4", f"Video {sku}", cover])
    return folder / "catalog.csv", items


def run(stack: LocalStack, manifest: Path) -> dict[str, Any]:
    run_id = stack.trigger(DAG, {"manifest": str(manifest), "fail_on_video_errors": False})
    stack.wait(DAG, run_id, timeout=1200)
    return stack.run(DAG, run_id)


@pytest.mark.timeout(1500)
def test_every_video_on_every_marketplace_through_the_proxy_and_a_second_run_sends_nothing(stack, proxy):
    manifest, items = catalog(stack, "clean")
    assert run(stack, manifest)["state"] == "success"
    lazada, shopee, vod = (emulator(stack, name, "state") for name in NAMES)
    shown = {product["attributes"].get("video") for product in lazada["products"].values()}
    audited = {vid for vid, video in lazada["videos"].items() if video["state"] == "AUDIT_SUCCESS"}
    assert len(audited) == 20 and audited <= shown  # every Lazada product shows its audited video
    with_video = [item for item in shopee["items"].values() if item.get("video_upload_id")]
    assert {str(item["item_id"]) for item in with_video} == set(items.values())
    assert all(shopee["uploads"][item["video_upload_id"]]["status"] == "SUCCEEDED" for item in with_video)
    assert sorted(asset["status"] for asset in vod["assets"].values()) == ["PUBLISHED"] * 5
    # Through the proxy, and only through it: the emulators' names resolve nowhere else.
    assert proxy.targets() == {
        f"{NAMES[name]}:{stack.running_sandboxes[name].url.rsplit(':', 1)[1]}" for name in NAMES
    }
    assert all(request.allowed for request in proxy.relayed)

    sent = bytes_requests(stack)
    assert run(stack, manifest)["state"] == "success"
    assert bytes_requests(stack) == sent  # the second run sends 0 bytes


@pytest.mark.timeout(1500)
def test_with_faults_on_no_video_is_made_twice(stack):
    manifest, _ = catalog(stack, "faults")

    def fault_rate(rate: float) -> dict[str, Any]:
        faults = {}
        for name in NAMES:
            url = f"{stack.running_sandboxes[name].url}/_sandbox/{name}/fault-rate"
            answer = requests.put(url, json={"rate": rate}, timeout=60)
            answer.raise_for_status()
            faults[name] = answer.json()["faults"]
        return faults

    fault_rate(0.1)
    runs = [run(stack, manifest), run(stack, manifest)]  # the second finishes what the faults left
    faults = fault_rate(0)
    assert all(sum(kinds.values()) for kinds in faults.values()), faults  # every platform met faults
    assert runs[-1]["state"] == "success"
    report = stack.api(
        "GET",
        f"/dags/{DAG}/dagRuns/{runs[-1]['dag_run_id']}/taskInstances/catalog.report/xcomEntries/return_value",
    )["value"]
    report = json.loads(report) if isinstance(report, str) else report
    left = Counter(
        row["state"] for row in report["rows"] if row["state"] not in ("attached", "skipped", "audited")
    )
    assert set(left) <= {"needs_attention"}, left  # on its product, or waiting for a person: nothing lost

    lazada, shopee, vod = (emulator(stack, name, "state") for name in NAMES)
    lazada_contents = Counter(video["sha256"] for video in lazada["videos"].values() if not video["deleted"])
    assert max(lazada_contents.values()) == 1  # no second Lazada video for any content
    completed = Counter(upload["file_md5"] for upload in shopee["uploads"].values() if upload["completed_at"])
    assert max(completed.values()) == 1  # no second completed Shopee upload for any file
    confirmed = Counter(
        (asset.get("object") or {}).get("md5")
        for asset in vod["assets"].values()
        if asset.get("confirm") == "CREATED"
    )
    assert max(confirmed.values()) == 1  # no second VOD asset for any file
