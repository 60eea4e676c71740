"""Catalogs of hundreds and thousands of small videos, on a real distributed deployment.

A CeleryExecutor deployment starts on this machine (``include/stack.py``: api-server, scheduler,
dag-processor, triggerer, two Celery workers, PostgreSQL, Redis) with the Lazada emulator as its own
process behind the link model (4 MB/s per connection, 60 ms round trip) and with call limits on: token
buckets per app and per seller that answer ``ApiCallLimit`` ("this ban will last 1 seconds") once spent.
The ``lazada_default`` connection carries a call budget under the seller's limit, and push is on. Then,
for each catalog size, ``catalog_videos`` runs on a manifest of that many products, each with its own
generated video, from trigger to the end of its last task (a catalog larger than a batch continues in
next-batch runs; they count too).

Figures per catalog: trigger to end, the link limit (bytes ÷ 8 connections × 4 MB/s), each stage's time
(first start to last end of its task instances), API calls per video by API (the emulator's request
counts), the emulator's limit answers, CPU s per video (every Airflow process) and the chunk tasks' peak
memory. A seller's own script is measured beside them: ``lazop-sdk`` in a pool of 8 threads making the
calls a script makes per video (GetProducts, InitCreateVideo, UploadVideoBlock, CompleteCreateVideo; then,
once every video is up, GetVideo until audited and UpdateProduct), retrying ``ApiCallLimit`` after a second.

    .venv/bin/python bench/scale.py [--sizes 100,1000,3000] [--big 100] [--repeat 3] [--seller-calls 150]
        [--out docs/benchmarks.md]

Results: ``bench/results/scale.json``, a table in ``docs/benchmarks.md`` and ``docs/img/scale.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402
from speed import chunk_memory, reset_ledger, stack_cpu  # noqa: E402
from stack import LocalStack  # noqa: E402

MB = 1_000_000
SMALL, BIG = 300_000, 3_000_000
BANDWIDTH_MB_S, LATENCY_MS, CONNECTIONS = 4.0, 60.0, 8
#: Lazada's limit per seller in the emulator (it publishes none); the app's is twice that, and the
#: connection's budget nine tenths of it.
SELLER_CALLS = 150.0
DAG = "catalog_videos"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def link_limit(size: int) -> float:
    return size / (CONNECTIONS * BANDWIDTH_MB_S * MB)


def seed_products(url: str, skus: list[str], cover: str) -> None:
    from media_upload.sandbox.lazada.products import sample_product_payload

    for start in range(0, len(skus), 500):
        batch = [sample_product_payload(cover, sku, name=sku) for sku in skus[start : start + 500]]
        answer = requests.post(f"{url}/_sandbox/lazada/products", json=batch, timeout=300)
        answer.raise_for_status()


def write_catalog(folder: Path, prefix: str, count: int, size: int, cover: str) -> tuple[Path, list[str]]:
    from media_upload.sandbox.sample_media import write_sample_mp4

    folder.mkdir(parents=True, exist_ok=True)
    skus = [f"{prefix}-{n:05d}" for n in range(count)]
    lines = ["seller_sku,video,title,cover_url"]
    for sku in skus:
        write_sample_mp4(folder / f"{sku}.mp4", size, seed=zlib.crc32(sku.encode()), duration_seconds=12)
        lines.append(f"{sku},{sku}.mp4,{sku},{cover}")
    manifest = folder / "catalog.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, skus


def stages(stack: LocalStack, runs: list[str]) -> dict[str, float]:
    """Per task (mapped ones together): first start to last end, over every run of the catalog; a skipped
    task did no work."""
    spans: dict[str, list[float]] = {}
    for run_id in runs:
        for task in stack.task_instances(DAG, run_id):
            if not task.get("start_date") or not task.get("end_date") or task.get("state") == "skipped":
                continue
            name = task["task_id"].split(".")[-1]
            start = datetime.fromisoformat(task["start_date"]).timestamp()
            end = datetime.fromisoformat(task["end_date"]).timestamp()
            found = spans.setdefault(name, [start, end])
            found[0], found[1] = min(found[0], start), max(found[1], end)
    return {name: round(end - start, 1) for name, (start, end) in spans.items()}


def run_catalog(stack: LocalStack, manifest: Path, videos: int) -> dict[str, Any]:
    """Trigger, follow the next-batch runs, and measure."""
    lazada = stack.running_sandboxes["lazada"].url
    reset_ledger(stack.database)
    before = requests.get(f"{lazada}/_sandbox/lazada/state", timeout=60).json()
    cpu, started = stack_cpu(stack), time.monotonic()
    runs = [stack.trigger(DAG, {"manifest": str(manifest), "fail_on_video_errors": True})]
    while True:
        run = stack.wait(DAG, runs[-1], timeout=3600)
        if run["state"] != "success":
            raise RuntimeError(f"{DAG} {runs[-1]} ended {run['state']}; see {stack.home}/logs")
        later = [
            r["dag_run_id"]
            for r in stack.api(
                "GET", f"/dags/{DAG}/dagRuns", params={"limit": 100, "order_by": "-start_date"}
            )["dag_runs"]
            if r["dag_run_id"] not in runs and (r.get("conf") or {}).get("manifest") == str(manifest)
        ]
        if not later:
            break
        runs.append(later[0])
    seconds = time.monotonic() - started
    after = requests.get(f"{lazada}/_sandbox/lazada/state", timeout=60).json()
    calls = Counter(after["request_counts"]) - Counter(before["request_counts"])
    limited = Counter(after["limited"]) - Counter(before["limited"])
    attached = sum(1 for p in after["products"].values() if p.get("attributes", {}).get("video"))
    return {
        "videos": videos,
        "runs": len(runs),
        "seconds": round(seconds, 1),
        "stages": stages(stack, runs),
        "calls_per_video": {api: round(count / videos, 2) for api, count in sorted(calls.items())},
        "limited": dict(limited),
        "cpu_per_video": round((stack_cpu(stack) - cpu) / videos, 3),
        "memory_mib": max((chunk_memory(stack.home, DAG, run_id) or 0) for run_id in runs),
        "products_with_video": attached,
    }


def lazop_pool(sandbox: Any, manifest: Path, skus: list[str], cover: str, threads: int = 8) -> dict[str, Any]:
    """A seller's script: lazop-sdk in 8 threads, each video's upload calls one after another in a thread;
    then, once all are uploaded, each video's audit looked at (every 2 s until it passed) and its product
    updated."""
    home = os.environ.get("HOME")
    os.environ["HOME"] = tempfile.mkdtemp(prefix="lazop-home-")  # the SDK writes ~/logs on import
    try:
        import lazop_sdk as lazop
    finally:
        os.environ["HOME"] = home or ""
    from media_upload.protocols.lazada import video_update_payload

    conn = sandbox.connection
    token = conn["extra"]["access_token"]
    local = threading.local()

    def call(
        api: str, params: dict[str, str], files: dict[str, bytes] | None = None, method: str = "POST"
    ) -> dict:
        if not hasattr(local, "client"):
            local.client = lazop.LazopClient(conn["host"], conn["login"], conn["password"])
        for _ in range(20):  # the script retries what Lazada throttles, as sellers' scripts do
            request = lazop.LazopRequest(api, method)
            for name, value in params.items():
                request.add_api_param(name, value)
            for name, value in (files or {}).items():
                request.add_file_param(name, value)
            body = dict(local.client.execute(request, token).body)
            if body.get("code") != "ApiCallLimit":
                return body
            time.sleep(1.0)
        raise RuntimeError(f"{api}: still throttled")

    def upload(sku: str) -> tuple[dict, str]:
        data = (manifest.parent / f"{sku}.mp4").read_bytes()
        product = call("/products/get", {"filter": "all", "sku_seller_list": json.dumps([sku])}, method="GET")
        item = product["data"]["products"][0]
        upload = call("/media/video/block/create", {"fileName": f"{sku}.mp4", "fileBytes": str(len(data))})
        tag = call(
            "/media/video/block/upload",
            {"uploadId": upload["upload_id"], "blockNo": "0", "blockCount": "1"},
            {"file": data},
        )["e_tag"]
        video = call(
            "/media/video/block/commit",
            {
                "uploadId": upload["upload_id"],
                "parts": json.dumps([{"partNumber": 1, "eTag": tag}]),
                "title": sku,
                "coverUrl": cover,
            },
        )["video_id"]
        return item, str(video)

    def attach(uploaded: tuple[dict, str]) -> None:
        item, video = uploaded
        while call("/media/video/get", {"videoId": video}, method="GET")["state"] != "AUDIT_SUCCESS":
            time.sleep(2)
        skus = [str(s["SkuId"]) for s in item["skus"]]
        call("/product/update", {"payload": json.dumps(video_update_payload(item["item_id"], skus, video))})

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:  # every upload, then every audit and update
        list(pool.map(attach, list(pool.map(upload, skus))))
    return {"videos": len(skus), "seconds": round(time.monotonic() - started, 1)}


def table(results: dict[str, Any]) -> str:
    seller = results["seller_calls"]
    lines = [
        f"Link model {BANDWIDTH_MB_S:g} MB/s per connection, {LATENCY_MS:g} ms round trip; Lazada's limits in the "
        f"emulator: {seller:g} calls/s per seller, {2 * seller:g} per app; the connection's budget "
        f"{0.9 * seller:g} calls/s; push on. CeleryExecutor, two workers, on {os.cpu_count()} CPUs.",
        "",
        "| Catalog | Trigger to end (s), median (every run) | Per video (ms) | Of the link limit | API calls per video | Limit answers | CPU s per video | Chunk peak (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results["catalogs"].items():
        calls = sum(row["calls_per_video"].values())
        runs = ", ".join(f"{seconds:.1f}" for seconds in row.get("every_run", [row["seconds"]]))
        lines.append(
            f"| {name} | {row['seconds']:.1f} ({runs}) | {1000 * row['seconds'] / row['videos']:.0f} | "
            f"{row['link_limit'] / row['seconds']:.2f} | {calls:.1f} | {sum(row['limited'].values())} | "
            f"{row['cpu_per_video']:.3f} | {row['memory_mib'] or '-'} |"
        )
    if script := results.get("script"):
        lines.append(
            f"| lazop-sdk, 8 threads ({script['videos']:,} × 300 KB) | {script['seconds']:.1f} | "
            f"{1000 * script['seconds'] / script['videos']:.0f} | - | - | - | - | - |"
        )
    lines += ["", "| Catalog | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    for name, row in results["catalogs"].items():
        lines.append(f"| {name} | " + " | ".join(str(row["stages"].get(s, "-")) for s in STAGES) + " |")
    return "\n".join(lines) + "\n"


STAGES = ("plan", "upload_chunk", "settle", "wait_and_attach", "wait_and_attach_late", "report", "next_batch")


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    small = [row for row in results["catalogs"].values() if row["video_bytes"] == SMALL]
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    axis.plot([r["videos"] for r in small], [r["seconds"] for r in small], "o-", label="catalog_videos")
    if script := results.get("script"):
        per_video = script["seconds"] / script["videos"]
        xs = [r["videos"] for r in small]
        axis.plot(
            xs,
            [per_video * x for x in xs],
            "--",
            color="#9aa5b1",
            label="lazop-sdk, 8 threads: its time per video at 1,000, scaled",
        )
    axis.set_xlabel("videos of 300 KB in the catalog")
    axis.set_ylabel("trigger to end (s)")
    axis.set_title("Catalog time against size (CeleryExecutor, two workers, call limits on)", fontsize=9)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100,1000,3000", help="catalog sizes of 300 KB videos")
    parser.add_argument("--big", type=int, default=100, help="a catalog of this many 3 MB videos (0: none)")
    parser.add_argument("--script", type=int, default=1000, help="videos for the lazop-sdk script (0: none)")
    parser.add_argument(
        "--seller-calls", type=float, default=SELLER_CALLS, help="Lazada's calls/s per seller"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each catalog; the median one is shown")
    parser.add_argument("--executor", default="CeleryExecutor")
    parser.add_argument("--out", type=Path, help="write the table into this markdown file (and the plot)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]

    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    link = ["--bandwidth-per-connection", str(BANDWIDTH_MB_S), "--latency-ms", str(LATENCY_MS)]
    seller, budget = args.seller_calls, 0.9 * args.seller_calls
    limits = [
        "--seller-calls-per-second", str(seller), "--app-calls-per-second", str(2 * seller),
        "--call-burst", str(seller), "--ban-seconds", "1",
    ]  # fmt: skip
    stack = LocalStack(
        work / "airflow",
        executor=args.executor,
        database="airflow_scale",
        allowed_sources=(f"{work}/",),
        lazada_push=True,
        env={"AIRFLOW__CORE__MAX_MAP_LENGTH": "4096"},
        sandboxes={"lazada": [*link, *limits, "--audit-seconds", "3", "--capacity-bytes", str(10**12)]},
        connection_extras={"lazada_default": {"calls_per_second": budget, "call_burst": budget}},
    )
    results: dict[str, Any] = {"catalogs": {}, "seller_calls": seller}
    with stack:
        lazada = stack.running_sandboxes["lazada"]
        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(lazada.connection)
        from media_upload.hooks.lazada import LazadaHook

        cover = LazadaHook().upload_image(PNG, "cover.png")
        stack.wait_for_dags(DAG)
        cases = [(f"{n:,} × 300 KB", n, SMALL) for n in sizes]
        if args.big:
            cases.append((f"{args.big:,} × 3 MB", args.big, BIG))
        for name, count, size in cases:
            rows = []
            for attempt in range(args.repeat):  # each time a new catalog: new products, new videos
                folder = work / f"c{count}-{size}-{attempt}"
                manifest, skus = write_catalog(folder, f"s{count}-{size}-{attempt}", count, size, cover)
                seed_products(lazada.url, skus, cover)
                row = run_catalog(stack, manifest, count)
                shutil.rmtree(folder)
                print(
                    f"{name}: {row['seconds']} s, stages {row['stages']}, limited {row['limited']}",
                    flush=True,
                )
                rows.append(row)
            row = sorted(rows, key=lambda r: r["seconds"])[len(rows) // 2]  # the median run
            row.update(
                video_bytes=size, link_limit=link_limit(count * size), every_run=[r["seconds"] for r in rows]
            )
            results["catalogs"][name] = row
        if args.script:
            manifest, skus = write_catalog(work / "script", "script", args.script, SMALL, cover)
            seed_products(lazada.url, skus, cover)
            results["script"] = lazop_pool(lazada, manifest, skus, cover)
            print(f"lazop-sdk script: {results['script']}", flush=True)
    text = table(results)
    print(text)
    out = ROOT / "bench" / "results" / "scale.json"
    out.write_text(json.dumps(results, indent=1) + "\n")
    if args.out:
        write_section(args.out, "<!-- scale -->", text)
        plot(results, args.out.parent / "img" / "scale.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
