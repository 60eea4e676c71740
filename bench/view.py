"""The "Media uploads" view with 10,000 uploads in the ledger, measured through the api-server.

A deployment starts on this machine (``include/stack.py``: api-server, scheduler, dag-processor,
triggerer, LocalExecutor, PostgreSQL). Its ledger is filled with ``--rows`` uploads as catalogs leave
them (three platforms, every state, 100 runs, a tenth still uploading with acknowledged blocks), then
the view's API (``GET /media-uploads/api/uploads``, the page and its runs' summary in one answer) is
asked as a person using the view asks it: the first page, each state filter, a platform, a run, a SKU
search and later pages, each ``--requests`` times. Figures: the median and the 95th percentile per
question, and over all of them.

    .venv/bin/python bench/view.py [--rows 10000] [--requests 50] [--out docs/benchmarks.md]

Results: ``bench/results/view.json`` and a table in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402
from stack import LocalStack  # noqa: E402

STATES = (
    ["attached"] * 60 + ["audited"] * 8 + ["committed"] * 10 + ["uploading"] * 10
    + ["rejected"] * 4 + ["failed"] * 4 + ["needs_attention"] * 2 + ["planned"] * 2
)  # fmt: skip
PLATFORMS = ("lazada", "shopee", "huawei_vod")


def fill(ledger_uri: str, rows: int) -> list[tuple[str, str]]:
    """``rows`` uploads in the ledger; returns the (dag_id, run_id) of the runs they belong to."""
    os.environ["AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER"] = ledger_uri
    from media_upload.ledger import UploadLedger, entry_for, now

    ledger = UploadLedger()
    chooser = random.Random(7)
    runs = [
        ("catalog_videos", f"scheduled__2026-12-{1 + n % 28:02d}T{n % 24:02d}:00:00+00:00")
        for n in range(100)
    ]
    acks: list[tuple[str, tuple[str, int, str, int]]] = []
    for n in range(rows):
        platform = PLATFORMS[n % 3]
        dag_id, run_id = runs[n % len(runs)]
        state = chooser.choice(STATES)
        key = {"platform": platform, "account": f"{platform}_default", "product": f"sku:SKU-{n:06d}",
               "content_sha256": f"{n:064x}"}  # fmt: skip
        upload_id = f"U{n:08d}"
        ledger.record(
            entry_for(key),
            state=state,
            file_size=3_000_000,
            block_size=300_000,
            block_count=10,
            upload_id=upload_id,
            video_id=None if state in ("planned", "uploading") else f"{30_000_000_000 + n}",
            dag_id=dag_id,
            run_id=run_id,
            label=f"SKU-{n:06d}",
            title=f"Video of SKU-{n:06d}",
            source=f"/opt/airflow/media/catalog/SKU-{n:06d}.mp4",
            upload_started_at=now(),
            committed_at=None if state in ("planned", "uploading") else now(),
            reason="the audit ended in AUDIT_FAILED" if state == "rejected" else None,
        )
        if state == "uploading":
            acks += [(platform, (upload_id, part, f"TAG{part}", 300_000)) for part in range(1, 8)]
    for platform in PLATFORMS:
        ledger.acknowledge(platform, [ack for owner, ack in acks if owner == platform])
    ledger.close()
    return runs


def questions(runs: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    dag_id, run_id = runs[3]
    return {
        "first page": {},
        "state: uploading": {"state": "uploading"},
        "state: auditing": {"state": "auditing"},
        "state: needs attention, failed": {"state": ["needs_attention", "failed"]},
        "platform: shopee": {"platform": "shopee"},
        "one run": {"dag_id": dag_id, "run_id": run_id},
        "SKU search": {"sku": "SKU-0042"},
        "page 20": {"offset": 950},
    }


def measure(stack: LocalStack, asked: dict[str, dict[str, Any]], repeat: int) -> dict[str, dict[str, float]]:
    url = f"{stack.api_url}/media-uploads/api/uploads"
    headers = {"Authorization": f"Bearer {stack.token}"}
    session = requests.Session()
    timings: dict[str, list[float]] = {name: [] for name in asked}
    for _ in range(repeat):  # interleaved: every question in every round
        for name, params in asked.items():
            started = time.perf_counter()
            answer = session.get(url, params={"limit": 50, **params}, headers=headers, timeout=60)
            timings[name].append(time.perf_counter() - started)
            answer.raise_for_status()
            assert answer.json()["rows"] is not None
    result = {
        name: {"p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * percentile(times, 95)}
        for name, times in timings.items()
    }
    every = [t for times in timings.values() for t in times]
    result["all questions"] = {
        "p50_ms": 1000 * statistics.median(every),
        "p95_ms": 1000 * percentile(every, 95),
    }
    return result


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def table(result: dict[str, dict[str, float]], rows: int, repeat: int) -> str:
    lines = [
        f"{rows:,} uploads in the ledger (PostgreSQL), {repeat} requests per question through the api-server, "
        f"on {os.cpu_count()} CPUs.",
        "",
        "| Question | Median (ms) | 95th percentile (ms) |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {row['p50_ms']:.0f} | {row['p95_ms']:.0f} |" for name, row in result.items()]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-view-"))
    with LocalStack(work / "airflow", executor="LocalExecutor", database="airflow_view") as stack:
        ledger = stack.connections()["media_upload_ledger"]
        uri = f"postgres://{ledger['login']}@{ledger['host']}:{ledger['port']}/{ledger['schema']}"
        started = time.monotonic()
        runs = fill(uri, args.rows)
        print(f"{args.rows:,} rows in {time.monotonic() - started:.0f} s", flush=True)
        measure(stack, questions(runs), 3)  # warm: the api-server's first answers import and connect
        result = measure(stack, questions(runs), args.requests)
    text = table(result, args.rows, args.requests)
    print(text)
    (ROOT / "bench" / "results" / "view.json").write_text(json.dumps(result, indent=1) + "\n")
    if args.out:
        write_section(args.out, "<!-- view -->", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
