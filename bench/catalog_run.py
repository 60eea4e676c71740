"""A catalog of N product videos through ``lazada_catalog_videos``, twice: the first run uploads, the second none.

Generates N videos of a few MB each, N products in the Lazada emulator (``media-sandbox lazada`` in its own
process, audit time 0 so the run measures the pipeline rather than waiting), a manifest, then runs
``airflow dags test lazada_catalog_videos`` twice on a fresh SQLite Airflow home and reports each run's
wall time, bytes uploaded and bytes per second, from the run's own summary.

    .venv/bin/python bench/catalog_run.py [--rows 300] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import write_section

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=300, help="manifest rows, bad ones included")
    parser.add_argument("--bad-rows", type=int, default=5, help="rows the plan must refuse and report")
    parser.add_argument("--out", type=Path, help="also write the table into this markdown file")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    home = work / "airflow"
    home.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER": "sqlite://" + str(work / "ledger.db").replace("/", "%2F"),
    }
    os.environ.update(env)
    from media_upload.hooks.lazada import LazadaHook
    from media_upload.sandbox.lazada.products import sample_product_payload
    from media_upload.sandbox.sample_media import write_sample_mp4

    cli = str(Path(sys.executable).with_name("media-sandbox"))
    sandbox = subprocess.Popen(
        [cli, "lazada", "--port", "0", "--audit-seconds", "0", "--data-dir", str(work / "sandbox")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sandbox.stdout is not None
    line = next(line for line in sandbox.stdout if line.startswith("export AIRFLOW_CONN_LAZADA_DEFAULT="))
    env["AIRFLOW_CONN_LAZADA_DEFAULT"] = os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = (
        line.split("=", 1)[1].strip().strip("'")
    )
    try:
        hook = LazadaHook()
        cover = hook.upload_image(PNG, "cover.png")
        sizes = random.Random(7).choices(range(2_000_000, 4_000_001), k=args.rows - args.bad_rows)
        (work / "notes.mp4").write_text("not a video")
        bad = [
            ["bench-bad-missing", "missing.mp4", "Missing file", cover, ""],
            ["bench-bad-cover", "bench-0000.mp4", "Bad cover", "cover.png", ""],
            ["bench-bad-format", "notes.mp4", "Not a video", cover, ""],
            ["bench-0000", "bench-0001.mp4", "Product named twice", cover, ""],
            ["bench-bad-block", "bench-0002.mp4", "Block too big", cover, "20000000"],
        ]
        manifest = work / "catalog.csv"
        with manifest.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["seller_sku", "video", "title", "cover_url", "block_size"])
            for number, size in enumerate(sizes):
                sku = f"bench-{number:04d}"
                write_sample_mp4(work / f"{sku}.mp4", size, seed=number)
                hook.create_product(sample_product_payload(cover, sku, name=sku))
                writer.writerow([sku, f"{sku}.mp4", f"Video of {sku}", cover, ""])
            writer.writerows((bad * (args.bad_rows // len(bad) + 1))[: args.bad_rows])
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True
        )
        rows = []
        for attempt in ("first run", "second run"):
            conf = {
                "manifest": str(manifest),
                "block_size": 2 * 1024 * 1024,
                "after_line": 0,
                "fail_on_video_errors": True,
            }
            started = time.monotonic()
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "airflow",
                    "dags",
                    "test",
                    "lazada_catalog_videos",
                    "-c",
                    json.dumps(conf),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            elapsed = time.monotonic() - started
            (work / f"{attempt.replace(' ', '-')}.log").write_text(result.stdout + result.stderr)
            summary = re.search(
                r"uploaded (\d+), attached (\d+), skipped (\d+), failed (\d+), bad rows (\d+).*?; ([\d,]+) bytes",
                result.stdout + result.stderr,
            )
            if result.returncode != 0 or summary is None:
                print(f"{attempt} failed; see {work}/{attempt.replace(' ', '-')}.log")
                return 1
            uploaded, attached, skipped, failed, invalid, byte_text = summary.groups()
            byte_count = int(byte_text.replace(",", ""))
            rows.append(
                f"| {attempt} | {uploaded} | {attached} | {skipped} | {failed} | {invalid} | {byte_count / 1e6:,.1f} | {elapsed:.0f} "
                f"| {f'{byte_count / 1e6 / elapsed:.2f}' if byte_count else '-'} |"
            )
    finally:
        sandbox.send_signal(signal.SIGTERM)
        sandbox.wait(timeout=30)

    table = (
        f"{args.rows} rows ({args.bad_rows} of them bad), {sum(sizes) / 1e6:,.0f} MB of video (2 to 4 MB each, 2 MiB blocks), "
        "`airflow dags test` on "
        f"SQLite (tasks run one after another), emulator audit time 0, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs.\n\n"
        "| Run | Uploaded | Attached | Skipped | Failed | Bad rows | MB uploaded | Wall time (s) | MB/s |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    print(table)
    if args.out:
        write_section(args.out, "<!-- catalog-run -->", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
