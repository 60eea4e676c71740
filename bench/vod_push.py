"""Notified against polled: how long a Huawei VOD asset waits after it is ready, and what the wait costs in
ShowAssetMeta calls.

    .venv/bin/python bench/vod_push.py --rounds 3 --out docs/benchmarks.md     # make bench-vod-push

One real Airflow deployment (include/stack.py: PostgreSQL, LocalExecutor, api-server, scheduler,
dag-processor, triggerer as processes) with the VOD emulator sending signed MFS event notifications to the
api-server's receiver. The ``huawei_vod_default`` connection turns push on or off between runs (through the
REST API), so the cases interleave on the same deployment:

* ``huawei_vod_upload`` (one 1 MB video) and ``catalog_videos`` (ten VOD-only rows): each asset is ready
  (published) at a random moment 15 to 45 s after its confirm (the same moments for both ways within a
  round); the delay from that moment to the ledger recording it ``audited`` (the wait ended and the task
  took the verdict), and the ShowAssetMeta calls per asset. Polling uses the sensors' default (a first look
  after 2 s, then waits growing by half up to 30 s).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))
sys.path.insert(0, str(ROOT / "bench"))

from results import write_section  # noqa: E402
from stack import POSTGRES, LocalStack  # noqa: E402

#: Assets are ready when the benchmark says so, READY_AFTER seconds after their confirm.
TRANSCODE_SECONDS, READY_AFTER, CATALOG_VIDEOS = 3600, (15.0, 45.0), 10
MODES = ("push", "poll")
#: The tasks that wait for VOD (their retries are Airflow's late-report race, when it happens).
WAIT_TASKS = ("wait_until_ready", "wait_and_attach")


def emulator(url: str, path: str) -> Any:
    return requests.get(f"{url}/_sandbox/huawei-vod/{path}", timeout=60).json()


def set_push(stack: LocalStack, on: bool) -> None:
    """Turn push on or off in ``huawei_vod_default``'s extra, sent whole: the API masks its secrets when read."""
    extra = {**stack.connections()["huawei_vod_default"]["extra"], "push": on}
    body = {"connection_id": "huawei_vod_default", "conn_type": "huawei_vod", "extra": json.dumps(extra)}
    stack.api("PATCH", "/connections/huawei_vod_default?update_mask=extra", json=body)


class Finisher:
    """Makes each newly confirmed asset ready (published) at a moment drawn from ``dice``, READY_AFTER after
    its confirm, and notes when."""

    def __init__(self, url: str, seen: set[str], dice: random.Random) -> None:
        self.url, self.seen, self.dice = url, set(seen), dice
        self.due: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.wait(0.2):
            for asset_id, asset in emulator(self.url, "state")["assets"].items():
                if asset_id not in self.seen and asset_id not in self.due and asset["confirmed_at"]:
                    self.due[asset_id] = asset["confirmed_at"] + self.dice.uniform(*READY_AFTER)
            for asset_id, due in list(self.due.items()):
                if time.time() >= due:
                    requests.post(
                        f"{self.url}/_sandbox/huawei-vod/assets/{asset_id}/outcome",
                        json={"outcome": "PUBLISHED", "finish_now": True},
                        timeout=30,
                    ).raise_for_status()
                    self.ready[asset_id] = time.time()
                    self.seen.add(asset_id)
                    del self.due[asset_id]

    def __enter__(self) -> Finisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def audited_at(database: str, asset_ids: set[str]) -> dict[str, float]:
    """When the ledger recorded each asset ``audited`` (its row's last change)."""
    import psycopg2

    with psycopg2.connect(f"postgresql://{POSTGRES}/{database}") as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT video_id, updated_at FROM media_upload_ledger WHERE platform = 'huawei_vod' AND state = 'audited'"
        )
        rows = cursor.fetchall()
    return {str(v): datetime.fromisoformat(str(at)).timestamp() for v, at in rows if str(v) in asset_ids}


def metas_per_asset(url: str, asset_ids: set[str]) -> float:
    log = emulator(url, "requests?limit=5000")
    calls = Counter(
        asset_id
        for entry in log
        if entry.get("operation") == "ShowAssetMeta"
        for asset_id in asset_ids
        if asset_id in entry.get("url", "")
    )
    return sum(calls[a] for a in asset_ids) / len(asset_ids)


def single_case(work: Path, n: int) -> tuple[str, dict]:
    from media_upload.sandbox.sample_media import write_sample_mp4

    video = write_sample_mp4(work / f"single-{n}.mp4", 1_000_000, seed=30_000 + n)
    return "huawei_vod_upload", {"video_path": str(video), "title": f"Single {n}", "auto_publish": True}


def catalog_case(work: Path, n: int) -> tuple[str, dict]:
    from media_upload.sandbox.sample_media import write_sample_mp4

    folder = work / f"catalog-{n}"
    folder.mkdir()
    rows = []
    for k in range(CATALOG_VIDEOS):
        write_sample_mp4(folder / f"{k}.mp4", 600_000, seed=40_000 + 100 * n + k)
        rows.append(f"lookbook-{n}-{k},{k}.mp4,Lookbook {n}.{k}")
    manifest = folder / "c.csv"
    manifest.write_text("huawei_vod,video,title\n" + "\n".join(rows) + "\n")
    return "catalog_videos", {"manifest": str(manifest)}


def run_case(stack: LocalStack, case: Any, work: Path, n: int, dice: random.Random) -> dict:
    url = stack.running_sandboxes["huawei-vod"].url
    before = set(emulator(url, "state")["assets"])
    dag_id, conf = case(work, n)
    with Finisher(url, before, dice) as finisher:
        run_id = stack.trigger(dag_id, conf)
        run = stack.wait(dag_id, run_id, timeout=900)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {run['state']}; see {stack.home}/logs")
    assets = set(finisher.ready)
    recorded = audited_at(stack.database, assets)
    missing = assets - set(recorded)
    if missing:
        raise RuntimeError(f"{dag_id} {run_id}: no audited row for {sorted(missing)}")
    delays = [recorded[a] - finisher.ready[a] for a in assets]
    waits = [t for t in stack.task_instances(dag_id, run_id) if t["task_id"].split(".")[-1] in WAIT_TASKS]
    retries = sum(max(int(t["try_number"]) - 1, 0) for t in waits)
    return {"delays": delays, "metas_per_asset": metas_per_asset(url, assets), "wait_retries": retries}


def table(results: dict[str, dict[str, list[dict]]], rounds: int) -> str:
    lines = [
        f"Assets ready (published) {READY_AFTER[0]:g} to {READY_AFTER[1]:g} s after each confirm (random, the same "
        f"for both ways), {rounds} interleaved rounds on one deployment (LocalExecutor, PostgreSQL), "
        f"{os.cpu_count()} CPUs; polling as the sensors do by default (first look after 2 s, then up to 30 s "
        "apart). The catalog has ten VOD-only rows.",
        "",
        "| DAG | Wait | ready → ledger `audited`, mean s (max) | ShowAssetMeta calls per asset | Wait task retries |",
        "|---|---|---|---|---|",
    ]
    for dag, modes in results.items():
        for mode in MODES:
            runs = modes.get(mode, [])
            delays = [d for run in runs for d in run["delays"]]
            calls = [run["metas_per_asset"] for run in runs]
            mean = statistics.fmean(delays) if delays else float("nan")
            retries = sum(run.get("wait_retries", 0) for run in runs)
            lines.append(
                f"| {dag} | {mode} | {mean:.1f} ({max(delays, default=float('nan')):.1f}) | "
                f"{statistics.median(calls) if calls else float('nan'):.1f} | {retries} in {len(runs)} runs |"
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out", type=Path, help="Markdown file whose <!-- vod-push --> section gets the table"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-vod-push-"))
    stack = LocalStack(
        work / "airflow",
        executor="LocalExecutor",
        database="airflow_bench_vod_push",
        allowed_sources=(f"{work}/",),
        sandboxes={"huawei-vod": ["--transcode-seconds", str(TRANSCODE_SECONDS)]},
        connections_in_env=False,
        vod_push=True,
    )
    results: dict[str, dict[str, list[dict]]] = {}
    with stack:
        stack.wait_for_dags("huawei_vod_upload", "catalog_videos")
        n = 0
        for round_number in range(1, args.rounds + 1):
            for case in (single_case, catalog_case):
                seed = 1000 * round_number + (case is catalog_case)
                for mode in MODES:
                    set_push(stack, mode == "push")
                    n += 1
                    figures = run_case(stack, case, work, n, random.Random(seed))
                    dag = "huawei_vod_upload" if case is single_case else "catalog_videos (VOD rows)"
                    results.setdefault(dag, {}).setdefault(mode, []).append(figures)
                    print(
                        f"round {round_number} {dag} {mode}: ready → audited "
                        f"{statistics.median(figures['delays']):.1f} s, "
                        f"{figures['metas_per_asset']:.1f} ShowAssetMeta per asset, "
                        f"{figures['wait_retries']} wait retries",
                        flush=True,
                    )
    text = table(results, args.rounds)
    print(text)
    (ROOT / "bench" / "results" / "vod_push.json").write_text(json.dumps(results, indent=1) + "\n")
    if args.out:
        write_section(args.out, "<!-- vod-push -->", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
