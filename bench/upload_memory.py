"""Peak memory and speed of block/part uploads: memory follows the block size, not the file size.

For each platform, starts its emulator (``media-sandbox``) in its own process, writes a large MP4, then
for each block or part size runs the whole upload through the real operators (one block or part task
after another, exactly as the mapped tasks do) in a fresh child process, and reports the child's peak
RSS above its baseline after imports. A whole-file read is measured the same way for comparison.

    .venv/bin/python bench/upload_memory.py [--platform lazada|huawei-vod|all] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from results import write_section

MiB = 1024 * 1024
PLATFORMS = {
    # name: (file size, block or part sizes, connection variable, sandbox command)
    "lazada": (99_000_000, [2 * MiB, 5_000_000, 10_000_000], "AIRFLOW_CONN_LAZADA_DEFAULT", "lazada"),
    "huawei-vod": (60_000_000, [8 * MiB, 20_000_000], "AIRFLOW_CONN_HUAWEI_VOD_DEFAULT", "huawei-vod"),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def upload_lazada(source: str, block_size: int) -> int:
    from media_upload.operators.lazada import (
        LazadaCommitVideoOperator,
        LazadaInitVideoUploadOperator,
        LazadaUploadVideoBlockOperator,
    )

    plan = LazadaInitVideoUploadOperator(task_id="init", source=source, block_size=block_size).execute({})
    parts = [LazadaUploadVideoBlockOperator(task_id="block", **block).execute({}) for block in plan]
    cover = "https://sg-live-02.slatic.net/p/bench.png"
    LazadaCommitVideoOperator(
        task_id="commit", plan=plan, parts=parts, title="bench", cover_url=cover
    ).execute({})
    return len(plan)


def upload_huawei_vod(source: str, part_size: int) -> int:
    from media_upload.operators.huawei_vod import (
        HuaweiVodCompleteMultipartOperator,
        HuaweiVodCreateAssetOperator,
        HuaweiVodInitiateMultipartOperator,
        HuaweiVodUploadPartOperator,
    )

    asset = HuaweiVodCreateAssetOperator(
        task_id="create", source=source, title="bench", part_size=part_size, single_put_max_bytes=0
    ).execute({})
    plan = HuaweiVodInitiateMultipartOperator(task_id="initiate", asset=asset).execute({})
    parts = [HuaweiVodUploadPartOperator(task_id="part", **part).execute({}) for part in plan]
    HuaweiVodCompleteMultipartOperator(task_id="complete", asset=asset, plan=plan, parts=parts).execute({})
    return len(plan)


def child(platform: str, source: str, size: int) -> None:
    """Runs in a fresh process: upload (or, with size 0, just read the whole file) and print JSON figures."""
    upload = upload_lazada if platform == "lazada" else upload_huawei_vod
    importlib.import_module(
        f"media_upload.operators.{platform.replace('-', '_')}"
    )  # imports are the baseline
    baseline = peak_rss_mib()
    started = time.perf_counter()
    if size:
        pieces = upload(source, size)
    else:
        data = Path(source).read_bytes()  # what a script around the official SDKs typically does
        pieces = 0 if data else -1
    print(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak_rss_mib(),
                "seconds": time.perf_counter() - started,
                "pieces": pieces,
            }
        )
    )


@contextmanager
def sandbox(command: str, work: Path) -> Iterator[str]:
    """``media-sandbox COMMAND --port 0`` in its own process; yields its Airflow connection JSON."""
    cli = str(Path(sys.executable).with_name("media-sandbox"))
    process = subprocess.Popen(
        [cli, command, "--port", "0", "--data-dir", str(work / command)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    connection = next(line for line in process.stdout if line.startswith("export AIRFLOW_CONN_")).split(
        "=", 1
    )[1]
    try:
        yield connection.strip().strip("'")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def measure(platform: str, work: Path) -> str:
    from media_upload.sandbox.sample_media import write_sample_mp4

    file_size, sizes, variable, command = PLATFORMS[platform]
    source = write_sample_mp4(work / f"{platform}.mp4", file_size, seed=1)
    unit = "block" if platform == "lazada" else "part"
    rows = []
    with sandbox(command, work) as connection:
        env = {
            **os.environ,
            variable: connection,
            "AIRFLOW_HOME": str(work / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        for size in [*sizes, 0]:
            result = subprocess.run(
                [sys.executable, __file__, "--child", platform, str(source), str(size)],
                env=env, capture_output=True, text=True, check=True,
            )  # fmt: skip
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            label = f"{size:,}-byte {unit}s" if size else "whole-file read (no upload)"
            speed = f"{file_size / 1e6 / figures['seconds']:.0f}" if size else "-"
            pieces = figures["pieces"] if size else "-"
            delta = figures["peak"] - figures["baseline"]
            rows.append(f"| {label} | {pieces} | {delta:.1f} | {figures['seconds']:.1f} | {speed} |")
    return (
        f"{platform}: {file_size:,}-byte file. Peak RSS of the uploading process above its baseline after imports; "
        f"the emulator runs in another process. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.\n\n"
        f"| Run | {unit.capitalize()}s | Peak RSS above baseline (MiB) | Time (s) | Throughput (MB/s) |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--platform", choices=[*PLATFORMS, "all"], default="all")
    parser.add_argument("--out", type=Path, help="also write the tables into this markdown file")
    parser.add_argument("--child", nargs=3, metavar=("PLATFORM", "SOURCE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    for platform in PLATFORMS if args.platform == "all" else [args.platform]:
        table = measure(platform, work)
        print(table)
        if args.out:
            write_section(args.out, f"<!-- upload-memory:{platform} -->", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
