"""Peak memory of Lazada block uploads: it follows the block size, not the file size.

Starts ``media-sandbox lazada`` in its own process, writes a 99,000,000-byte MP4, then for each block
size runs the whole upload (init, every block, commit) in a fresh child process, one block task after
another exactly as the mapped tasks do, and reports the child's peak RSS above its baseline after
imports. A naive whole-file read is measured the same way for comparison.

    .venv/bin/python bench/lazada_block_memory.py [--size 99000000] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK_SIZES = [2 * 1024 * 1024, 5_000_000, 10_000_000]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(source: str, block_size: int, naive: bool) -> None:
    """Runs in a fresh process: upload ``source`` and print JSON with the peak RSS figures."""
    from media_upload.operators.lazada import (
        LazadaCommitVideoOperator,
        LazadaInitVideoUploadOperator,
        LazadaUploadVideoBlockOperator,
    )

    baseline = peak_rss_mib()
    started = time.perf_counter()
    if naive:
        data = Path(source).read_bytes()  # what a script around the SDK typically does
        del data
        elapsed, blocks, video_id = time.perf_counter() - started, 0, None
    else:
        cover = "https://sg-live-02.slatic.net/p/bench.png"
        plan = LazadaInitVideoUploadOperator(task_id="init", source=source, block_size=block_size).execute({})
        parts = [LazadaUploadVideoBlockOperator(task_id="block", **block).execute({}) for block in plan]
        video_id = LazadaCommitVideoOperator(
            task_id="commit", plan=plan, parts=parts, title="bench", cover_url=cover
        ).execute({})
        elapsed, blocks = time.perf_counter() - started, len(plan)
    print(
        json.dumps(
            {
                "baseline": baseline,
                "peak": peak_rss_mib(),
                "seconds": elapsed,
                "blocks": blocks,
                "video_id": video_id,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=99_000_000)
    parser.add_argument("--out", type=Path, help="also write the results table to this markdown file")
    parser.add_argument("--child", nargs=3, metavar=("SOURCE", "BLOCK_SIZE", "NAIVE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.child[2] == "1")
        return 0

    from media_upload.sandbox.sample_media import write_sample_mp4

    work = Path(tempfile.mkdtemp(prefix="bench-lazada-"))
    source = write_sample_mp4(work / "big.mp4", args.size, seed=1)
    sandbox = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("media-sandbox")),
            "lazada",
            "--port",
            "0",
            "--data-dir",
            str(work / "sandbox"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    connection = ""
    for line in sandbox.stdout:
        if line.startswith("export AIRFLOW_CONN_LAZADA_DEFAULT="):
            connection = line.split("=", 1)[1].strip().strip("'")
            break
    env = {
        **os.environ,
        "AIRFLOW_CONN_LAZADA_DEFAULT": connection,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    rows = []
    try:
        for label, block_size, naive in [
            *((f"{size:,}-byte blocks", size, False) for size in BLOCK_SIZES),
            ("whole-file read (no upload)", 0, True),
        ]:
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(source), str(block_size), "1" if naive else "0"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            figures = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append((label, figures))
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)

    header = (
        f"File: {args.size:,} bytes. Peak RSS of the uploading process above its baseline after imports; "
        f"the emulator runs in another process. Python {sys.version.split()[0]}, {os.cpu_count()} CPUs.\n\n"
        "| Run | Blocks | Peak RSS above baseline (MiB) | Time (s) | Throughput (MB/s) |\n|---|---|---|---|---|\n"
    )
    lines = []
    for label, f in rows:
        delta = f["peak"] - f["baseline"]
        speed = f"{args.size / 1e6 / f['seconds']:.0f}" if f["blocks"] else "-"
        lines.append(f"| {label} | {f['blocks'] or '-'} | {delta:.1f} | {f['seconds']:.1f} | {speed} |")
    table = header + "\n".join(lines) + "\n"
    print(table)
    if args.out:
        text = args.out.read_text() if args.out.exists() else ""
        marker = "<!-- lazada-block-memory -->"
        section = f"{marker}\n{table}{marker}"
        text = (
            re.sub(f"{marker}.*?{marker}", lambda _: section, text, flags=re.S)
            if marker in text
            else text + section + "\n"
        )
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
