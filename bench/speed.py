"""Upload speed over a slow link, side by side, on a real Airflow deployment.

Both emulators run as their own processes behind the link model (4 MB/s per connection, 60 ms round
trip: a seller in one country, the gateway in another). An Airflow deployment starts on this machine
(``include/stack.py``: api-server, scheduler, dag-processor, triggerer, LocalExecutor, PostgreSQL). Then,
round after round and interleaved (A B C ... A B C ...), the same work is measured as:

- ``lazop-sdk``: the official client, blocks one after another (what sellers write today);
- the transfer engine alone at 1, 4 and 8 blocks in flight (one process, no Airflow);
- ``lazada_product_video`` with its default parameters, triggered through the REST API;
- ``lazada_catalog_videos`` with N videos of 3 MB;
- ``huawei_vod_upload`` with its default parameters (OBS parts);
- ``shopee_product_video`` with its default parameters, on a 29 MB video (Shopee takes at most 30 MB).

Seconds are the upload window the platform sees (InitCreateVideo to the end of the last
CompleteCreateVideo; CreateAsset to the end of ConfirmAssetUpload; init_video_upload to the end of
complete_video_upload), from the emulators' request logs.
The link limit is bytes ÷ (8 × 4 MB/s). Memory is the peak RSS of the uploading process (for the engine,
above its baseline after imports; for the DAGs, of the chunk tasks, from their last log line). CPU is
every Airflow process's user + system time during the run (scheduler, executor, tasks, api-server,
triggerer, dag-processor), per video. Also reported: how long parsing each DAG file takes.

    .venv/bin/python bench/speed.py [--rounds 5] [--catalog-videos 100] [--out docs/benchmarks.md]
    .venv/bin/python bench/speed.py --parse-only --out docs/benchmarks.md     # the parse times alone

Results: ``bench/results/speed.json``, a table in ``docs/benchmarks.md`` and ``docs/img/speed.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from results import write_section  # noqa: E402
from samples import catalog_manifest, shopee_item  # noqa: E402
from stack import LocalStack  # noqa: E402

MB = 1_000_000
MIB = 1024 * 1024
VIDEO_BYTES = 95_000_000
SHOPEE_VIDEO_BYTES = 29_000_000  # under Shopee's 30 MB limit: seven 4 MiB parts and a last one
CATALOG_VIDEO_BYTES = 3_000_000
BANDWIDTH_MB_S, LATENCY_MS, CONNECTIONS = 4.0, 60.0, 8
LINK = ["--bandwidth-per-connection", str(BANDWIDTH_MB_S), "--latency-ms", str(LATENCY_MS)]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
SEQUENTIAL_BLOCK = 2_968_750  # the engine's default for 95 MB: 32 equal blocks under 3 MB


def link_limit(size: int) -> float:
    return size / (CONNECTIONS * BANDWIDTH_MB_S * MB)


# ----------------------------------------------------------------------------- emulator logs


def lazada_window(url: str, since: float) -> float:
    """Seconds from the first InitCreateVideo to the end of the last CompleteCreateVideo after ``since``."""
    log = [
        e
        for e in requests.get(f"{url}/_sandbox/lazada/requests?limit=5000", timeout=30).json()
        if e["at"] >= since
    ]
    inits = [e["at"] for e in log if e["api"] == "/media/video/block/create"]
    commits = [
        e["at"] + e["ms"] / 1000 for e in log if e["api"] == "/media/video/block/commit" and e["code"] == "0"
    ]
    return max(commits) - min(inits)


def vod_window(url: str, since: float) -> float:
    log = [
        e
        for e in requests.get(f"{url}/_sandbox/huawei-vod/requests?limit=5000", timeout=30).json()
        if e["at"] >= since
    ]
    creates = [e["at"] for e in log if e["operation"] == "CreateAsset"]
    confirms = [
        e["at"] + e["ms"] / 1000 for e in log if e["operation"] == "ConfirmAssetUpload" and e["status"] == 200
    ]
    return max(confirms) - min(creates)


def shopee_window(url: str, since: float) -> float:
    log = [
        e
        for e in requests.get(f"{url}/_sandbox/shopee/requests?limit=5000", timeout=30).json()
        if e["at"] >= since
    ]
    inits = [e["at"] for e in log if e["api"].endswith("/media_space/init_video_upload")]
    completes = [
        e["at"] + e["ms"] / 1000
        for e in log
        if e["api"].endswith("/media_space/complete_video_upload") and not e["error"]
    ]
    return max(completes) - min(inits)


# ------------------------------------------------------------------------ one process, no Airflow


class PeakRss:
    """The peak resident memory of this process while it runs, sampled every few milliseconds."""

    def __init__(self) -> None:
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.peak = self.now()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def _sample(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def engine_child(source: str, in_flight: int, block_size: int) -> None:
    """In a fresh process: init, every block with ``in_flight`` at once through the engine, commit."""
    from media_upload.hooks.lazada import LazadaHook
    from media_upload.protocols.lazada import BLOCK_RULES
    from media_upload.transfer.engine import BlockTask, send_blocks
    from media_upload.transfer.plan import plan_upload
    from media_upload.transfer.source import Source

    hook = LazadaHook()
    cpu = time.process_time()
    size = os.path.getsize(source)
    plan = plan_upload(
        source, size, BLOCK_RULES, block_size=block_size or None, chunks=1, blocks_in_flight=8
    ).blocks
    upload_id = hook.init_create_video(Path(source).name, size)
    tasks = [BlockTask(upload_id, Source(source), block) for block in plan.blocks]
    with PeakRss() as rss:
        baseline = rss.now()  # the interpreter, the imports and a warm connection pool
        outcome = send_blocks(
            tasks,
            lambda task, data: hook.upload_video_block(upload_id, task.block.number, plan.count, data),
            in_flight=in_flight,
        )
    if outcome.failures:
        raise next(iter(outcome.failures.values()))
    parts = [{"partNumber": n, "eTag": outcome.tags[(upload_id, n)]} for n in range(1, plan.count + 1)]
    hook.complete_create_video(upload_id, parts, "bench", "https://sg-live-01.slatic.net/p/bench.png")
    print(
        json.dumps(
            {
                "memory_mib": (rss.peak - baseline) / MIB,
                "cpu": time.process_time() - cpu,
                "block": plan.block_size,
            }
        )
    )


def lazop_sequential(sandbox: Any, source: Path) -> dict[str, Any]:
    """The official client, one block after another, as a seller's script does."""
    home = os.environ.get("HOME")
    os.environ["HOME"] = tempfile.mkdtemp(prefix="lazop-home-")  # the SDK writes ~/logs on import
    try:
        import lazop_sdk as lazop
    finally:
        os.environ["HOME"] = home or ""
    conn = sandbox.connection
    client = lazop.LazopClient(conn["host"], conn["login"], conn["password"])
    token = conn["extra"]["access_token"]

    def call(api: str, params: dict[str, str], files: dict[str, bytes] | None = None) -> dict[str, Any]:
        request = lazop.LazopRequest(api, "POST")
        for name, value in params.items():
            request.add_api_param(name, value)
        for name, value in (files or {}).items():
            request.add_file_param(name, value)
        return dict(client.execute(request, token).body)

    cpu = time.process_time()
    size = source.stat().st_size
    upload_id = call("/media/video/block/create", {"fileName": source.name, "fileBytes": str(size)})[
        "upload_id"
    ]
    count = -(-size // SEQUENTIAL_BLOCK)
    parts = []
    with source.open("rb") as handle:
        for number in range(count):
            body = call(
                "/media/video/block/upload",
                {"uploadId": upload_id, "blockNo": str(number), "blockCount": str(count)},
                {"file": handle.read(SEQUENTIAL_BLOCK)},
            )
            parts.append({"partNumber": number + 1, "eTag": body["e_tag"]})
    body = call(
        "/media/video/block/commit",
        {
            "uploadId": upload_id,
            "parts": json.dumps(parts),
            "title": "bench",
            "coverUrl": "https://sg-live-01.slatic.net/p/b.png",
        },
    )
    assert body.get("video_id"), body
    return {"cpu_per_video": time.process_time() - cpu, "memory_mib": None}


# ----------------------------------------------------------------------------------- deployment


def stack_cpu(stack: LocalStack) -> float:
    """User + system seconds of every Airflow process so far (exited children included via their parents)."""
    total = 0.0
    for name, process in stack.processes.items():
        if name.startswith("sandbox"):
            continue
        try:
            top = psutil.Process(process.pid)
            for proc in [top, *top.children(recursive=True)]:
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            continue
    return total


def chunk_memory(home: Path, dag_id: str, run_id: str) -> float | None:
    """The largest peak memory a chunk task of the run logged (its last line names it), MiB."""
    peaks = []
    for path in (home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").glob(
        "task_id=*upload_chunk*/**/*.log"
    ):
        for match in re.finditer(r"peak memory (\d+) MiB", path.read_text(errors="replace")):
            peaks.append(float(match.group(1)))
    return max(peaks) if peaks else None


def reset_ledger(database: str) -> None:
    """Forget every upload, so the same bytes go up again (the ledger would rightly skip them)."""
    import psycopg2

    with psycopg2.connect(f"host=127.0.0.1 dbname={database} user=postgres") as db, db.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS media_upload_ledger")
        cursor.execute("DROP TABLE IF EXISTS media_upload_blocks")


def run_dag(
    stack: LocalStack, dag_id: str, conf: dict[str, Any], videos: int, window: Callable[[float], float]
) -> dict[str, Any]:
    reset_ledger(stack.database)
    cpu, since, started = stack_cpu(stack), time.time(), time.monotonic()
    run_id = stack.trigger(dag_id, conf)
    run = stack.wait(dag_id, run_id, timeout=1800)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {run['state']}; see {stack.home}/logs")
    return {
        "seconds": window(since),
        "run_seconds": time.monotonic() - started,
        "cpu_per_video": (stack_cpu(stack) - cpu) / videos,
        "memory_mib": chunk_memory(stack.home, dag_id, run_id),
    }


def dag_parse_seconds() -> dict[str, float]:
    """Median of five timed imports of each DAG file, in a process that has Airflow loaded already."""
    script = (
        "import importlib.util, sys, time, airflow.sdk, airflow.sdk.definitions.dag\n"
        "from airflow.sdk.execution_time import task_runner\n"
        "path = sys.argv[1]; t = time.perf_counter()\n"
        "spec = importlib.util.spec_from_file_location('dag_under_test', path)\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(time.perf_counter() - t)\n"
    )
    results = {}
    for path in sorted((ROOT / "dags").glob("*.py")):
        times = [
            float(
                subprocess.run(
                    [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(5)
        ]
        results[path.name] = statistics.median(times)
    return results


# ------------------------------------------------------------------------------------- report


def median(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def summarize(raw: dict[str, list[dict[str, Any]]], sizes: dict[str, int]) -> list[dict[str, Any]]:
    base = median([m["seconds"] for m in raw["lazop-sdk sequential"]])
    rows = []
    for case, measures in raw.items():
        seconds = median([m["seconds"] for m in measures])
        assert seconds is not None
        rows.append(
            {
                "case": case,
                "seconds": seconds,
                "min": min(m["seconds"] for m in measures),
                "max": max(m["seconds"] for m in measures),
                "link_fraction": link_limit(sizes[case]) / seconds,
                # Per byte: the catalog moves more bytes than the one video lazop-sdk sends.
                "speedup": (base / sizes["lazop-sdk sequential"]) / (seconds / sizes[case]) if base else None,
                "memory_mib": median([m.get("memory_mib") for m in measures]),
                "cpu_per_video": median([m.get("cpu_per_video") for m in measures]),
                "run_seconds": median([m.get("run_seconds") for m in measures]),
            }
        )
    return rows


def table(rows: list[dict[str, Any]], rounds: int, videos: int) -> str:
    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"Link model {BANDWIDTH_MB_S:g} MB/s per connection, {LATENCY_MS:g} ms round trip; link limit = bytes ÷ "
        f"({CONNECTIONS} × {BANDWIDTH_MB_S:g} MB/s). Medians of {rounds} interleaved rounds on {os.cpu_count()} CPUs "
        f"(Python {sys.version.split()[0]}); the catalog is {videos} videos of {CATALOG_VIDEO_BYTES / MB:g} MB.",
        "",
        "| Case | Seconds (min–max) | Of the link limit | × lazop-sdk (per byte) | Peak memory (MiB) | CPU s per video | Trigger to end (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['case']} | {row['seconds']:.2f} ({row['min']:.2f}–{row['max']:.2f}) | {row['link_fraction']:.2f} | "
            f"{number(row['speedup'], 1)} | {number(row['memory_mib'], 0)} | {number(row['cpu_per_video'])} | "
            f"{number(row['run_seconds'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def parse_table(parse: dict[str, float]) -> str:
    lines = ["| DAG file | Parse time (s) |", "|---|---|"]
    lines += [f"| `dags/{name}` | {seconds:.3f} |" for name, seconds in parse.items()]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4.2), dpi=120)
    names = [row["case"] for row in rows]
    fractions = [row["link_fraction"] for row in rows]
    colors = [
        "#9aa5b1" if "lazop" in name else "#4c78a8" if "engine" in name else "#f58518" for name in names
    ]
    bars = axis.barh(names, fractions, color=colors)
    for bar, row in zip(bars, rows, strict=True):
        axis.text(
            bar.get_width() + 0.01,
            bar.get_y() + bar.get_height() / 2,
            f"{row['seconds']:.1f} s",
            va="center",
            fontsize=8,
        )
    axis.axvline(1.0, color="#444", linewidth=0.8, linestyle="--")
    axis.set_xlim(0, 1.15)
    axis.invert_yaxis()
    axis.set_xlabel(
        f"fraction of the link limit ({CONNECTIONS} connections × {BANDWIDTH_MB_S:g} MB/s, {LATENCY_MS:g} ms RTT)"
    )
    axis.set_title(
        "Upload speed over a slow link (grey: official SDK, blue: engine alone, orange: DAGs on a real deployment)",
        fontsize=9,
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


# ---------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--catalog-videos", type=int, default=100)
    parser.add_argument(
        "--out", type=Path, help="write the table into this markdown file (and the plot beside it)"
    )
    parser.add_argument(
        "--parse-only", action="store_true", help="measure only how long each DAG file parses"
    )
    parser.add_argument(
        "--engine-child", nargs=3, metavar=("SOURCE", "IN_FLIGHT", "BLOCK"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.engine_child:
        engine_child(args.engine_child[0], int(args.engine_child[1]), int(args.engine_child[2]))
        return 0
    if args.parse_only:
        text = parse_table(dag_parse_seconds())
        print(text)
        if args.out:
            write_section(args.out, "<!-- parse -->", text)
        return 0

    from media_upload.sandbox.sample_media import write_sample_mp4

    work = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    video = write_sample_mp4(work / "video-95mb.mp4", VIDEO_BYTES, seed=1)
    shopee_video = write_sample_mp4(
        work / "shopee-29mb.mp4", SHOPEE_VIDEO_BYTES, seed=2, duration_seconds=30, width=720, height=720
    )
    catalog = work / "catalog"
    catalog.mkdir()
    clips = [
        write_sample_mp4(catalog / f"clip-{n:03d}.mp4", CATALOG_VIDEO_BYTES, seed=100 + n)
        for n in range(args.catalog_videos)
    ]
    stack = LocalStack(
        work / "airflow",
        executor="LocalExecutor",
        database="airflow_bench",
        allowed_sources=(f"{work}/",),
        sandboxes={
            # Every round uploads about 1 GB: room for all the rounds in the seller's Media Center quota.
            "lazada": [*LINK, "--audit-seconds", "1", "--capacity-bytes", str(100 * 10**9)],
            "huawei-vod": [*LINK, "--transcode-seconds", "1"],
            "shopee": [*LINK, "--transcode-seconds", "1"],
        },
    )
    raw: dict[str, list[dict[str, Any]]] = {}
    sizes: dict[str, int] = {}
    with stack:
        lazada, vod = stack.running_sandboxes["lazada"], stack.running_sandboxes["huawei-vod"]
        shopee = stack.running_sandboxes["shopee"]
        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(lazada.connection)
        from media_upload.hooks.lazada import LazadaHook
        from media_upload.sandbox.lazada.products import sample_product_payload

        hook = LazadaHook()
        cover = hook.upload_image(PNG, "cover.png")
        item = str(
            hook.create_product(sample_product_payload(cover, "bench-single", name="Bench"))["item_id"]
        )
        rows = [(f"bench-{n:03d}", clip, f"Clip {n}") for n, clip in enumerate(clips)]
        manifest = catalog_manifest(hook, catalog / "catalog.csv", rows, cover)
        shopee_item_id = shopee_item(shopee.url, "Bench")
        stack.wait_for_dags(
            "lazada_product_video", "lazada_catalog_videos", "huawei_vod_upload", "shopee_product_video"
        )

        def engine(in_flight: int, block_size: int = 0) -> Callable[[], dict[str, Any]]:
            def measure() -> dict[str, Any]:
                env = {
                    **os.environ,
                    "AIRFLOW_CONN_LAZADA_DEFAULT": json.dumps(lazada.connection),
                    "AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES": f"{work}/",
                }
                result = subprocess.run(
                    [sys.executable, __file__, "--engine-child", str(video), str(in_flight), str(block_size)],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
                if result.returncode != 0:
                    raise RuntimeError(f"the engine run failed:\n{result.stderr[-3000:]}")
                return json.loads(result.stdout.strip().splitlines()[-1])

            return measure

        cases: dict[str, tuple[int, Callable[[], dict[str, Any]], Callable[[float], float]]] = {
            "lazop-sdk sequential": (
                VIDEO_BYTES,
                lambda: lazop_sequential(lazada, video),
                lambda t: lazada_window(lazada.url, t),
            ),
            "engine alone, 1 in flight": (VIDEO_BYTES, engine(1), lambda t: lazada_window(lazada.url, t)),
            "engine alone, 4 in flight": (VIDEO_BYTES, engine(4), lambda t: lazada_window(lazada.url, t)),
            "engine alone, 8 in flight": (VIDEO_BYTES, engine(8), lambda t: lazada_window(lazada.url, t)),
            # Twice the block size Lazada recommends: half the round trips per byte.
            "engine alone, 8 in flight, 5.9 MB blocks": (
                VIDEO_BYTES,
                engine(8, 2 * SEQUENTIAL_BLOCK),
                lambda t: lazada_window(lazada.url, t),
            ),
            "lazada_product_video (defaults)": (
                VIDEO_BYTES,
                lambda: run_dag(
                    stack,
                    "lazada_product_video",
                    {
                        "video_path": str(video),
                        "title": "bench",
                        "cover_url": cover,
                        "item_id": item,
                        "sku_id": "",
                    },
                    1,
                    lambda t: lazada_window(lazada.url, t),
                ),
                lambda t: 0.0,
            ),
            f"lazada_catalog_videos ({args.catalog_videos} × 3 MB)": (
                CATALOG_VIDEO_BYTES * args.catalog_videos,
                lambda: run_dag(
                    stack,
                    "lazada_catalog_videos",
                    {"manifest": str(manifest)},
                    args.catalog_videos,
                    lambda t: lazada_window(lazada.url, t),
                ),
                lambda t: 0.0,
            ),
            "huawei_vod_upload (defaults, OBS parts)": (
                VIDEO_BYTES,
                lambda: run_dag(
                    stack,
                    "huawei_vod_upload",
                    {"video_path": str(video), "title": "bench"},
                    1,
                    lambda t: vod_window(vod.url, t),
                ),
                lambda t: 0.0,
            ),
            "shopee_product_video (defaults, 29 MB)": (
                SHOPEE_VIDEO_BYTES,
                lambda: run_dag(
                    stack,
                    "shopee_product_video",
                    {"video_path": str(shopee_video), "item_id": shopee_item_id},
                    1,
                    lambda t: shopee_window(shopee.url, t),
                ),
                lambda t: 0.0,
            ),
        }
        for round_number in range(1, args.rounds + 1):
            for case, (size, measure, window) in cases.items():
                since = time.time()
                figures = measure()
                if "seconds" not in figures:
                    figures["seconds"] = window(since)
                raw.setdefault(case, []).append(figures)
                sizes[case] = size
                print(
                    f"round {round_number} {case}: {figures['seconds']:.2f} s ({link_limit(size) / figures['seconds']:.2f} of the link limit)",
                    flush=True,
                )
    parse = dag_parse_seconds()
    rows = summarize(raw, sizes)
    text = table(rows, args.rounds, args.catalog_videos)
    print(text + "\n" + parse_table(parse))
    results = ROOT / "bench" / "results" / "speed.json"
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps({"rows": rows, "raw": raw, "parse_seconds": parse}, indent=1) + "\n")
    if args.out:
        write_section(args.out, "<!-- speed -->", text)
        write_section(args.out, "<!-- parse -->", parse_table(parse))
        plot(rows, args.out.parent / "img" / "speed.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
