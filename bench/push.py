"""Push against poll: how long a video waits after Lazada's audit, what the wait costs in GetVideo calls,
and what 1,000 videos waiting at once cost the triggerer.

    .venv/bin/python bench/push.py --rounds 4 --out docs/benchmarks.md     # make bench-push

One real Airflow deployment (include/stack.py: PostgreSQL, LocalExecutor, api-server, scheduler,
dag-processor, triggerer as processes) with the Lazada emulator pushing video states to the api-server's
receiver. The ``lazada_default`` connection turns push on or off between runs (through the REST API), so
the cases interleave on the same deployment:

* ``lazada_product_video`` (one video) and ``lazada_catalog_videos`` (ten videos): each video passes its
  audit at a random moment 15 to 45 s after its commit (the same moments for both ways within a round,
  so polling is caught at every phase of its schedule); the delay from that moment to the UpdateProduct
  request that put the video on its product (a catalog attaches each video as its own audit passes), and
  the GetVideo calls per video. Polling uses the sensors'
  default (a first look after 2 s, then waits growing by half up to 30 s).
* 1,000 videos waiting at once, in one process that runs the audit triggers the way the triggerer does
  (every trigger an asyncio task of one event loop), against a second emulator whose audits take 60 s:
  1,000 single-video triggers, and the catalog's one trigger for the 1,000 (fired each time videos
  settle and deferred again for the rest, as its task does). CPU seconds of that process
  while they wait, GetVideo calls, and the receiver's (api-server's) CPU for the messages.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "include"))

from results import write_section  # noqa: E402
from samples import catalog_manifest  # noqa: E402
from stack import LocalStack, free_port  # noqa: E402

#: Audits end when the benchmark says so, AUDIT_AFTER seconds after a commit; until then they wait.
AUDIT_SECONDS, AUDIT_AFTER, WAITING_AUDIT_SECONDS = 3600, (15.0, 45.0), 60
CATALOG_VIDEOS, WAITING = 10, 1000
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
MODES = ("push", "poll")


# ------------------------------------------------------------------------------ the emulator's view


def emulator(url: str, path: str) -> Any:
    return requests.get(f"{url}/_sandbox/lazada/{path}", timeout=60).json()


def audit_to_update(url: str, video_ids: set[str]) -> tuple[list[float], float]:
    """Seconds from AUDIT_SUCCESS to the UpdateProduct that attached each video, and GetVideo per video."""
    state = emulator(url, "state")
    log = emulator(url, "requests?limit=5000")
    audited = {v: state["videos"][v]["committed_at"] + state["videos"][v]["audit_seconds"] for v in video_ids}
    delays = []
    for video_id in video_ids:
        attached = min(
            entry["at"]
            for entry in log
            if entry["api"] == "/product/update"
            and entry["code"] == "0"
            and video_id in entry["params"].get("payload", "")
        )
        delays.append(attached - audited[video_id])
    gets = Counter(e["params"].get("videoId") for e in log if e["api"] == "/media/video/get")
    return delays, sum(gets[v] for v in video_ids) / len(video_ids)


def set_push(stack: LocalStack, conn_id: str, on: bool) -> None:
    """Turn push on or off in the connection's extra (only the extra: the API does not echo secrets)."""
    connection = stack.api("GET", f"/connections/{conn_id}")
    extra = {**json.loads(connection.get("extra") or "{}"), "push": on}
    body = {"connection_id": conn_id, "conn_type": connection["conn_type"], "extra": json.dumps(extra)}
    stack.api("PATCH", f"/connections/{conn_id}?update_mask=extra", json=body)


# ------------------------------------------------------------------------------ deployment runs


def product_video_case(hook: Any, cover: str, work: Path, n: int) -> tuple[str, dict]:
    from media_upload.sandbox.lazada.products import sample_product_payload
    from media_upload.sandbox.sample_media import write_sample_mp4

    item = hook.create_product(sample_product_payload(cover, f"single-{n}", name=f"Single {n}"))
    video = write_sample_mp4(work / f"single-{n}.mp4", 1_000_000, seed=10_000 + n)
    conf = {"video_path": str(video), "title": f"Single {n}", "cover_url": cover,
            "item_id": str(item["item_id"]), "sku_id": ""}  # fmt: skip
    return "lazada_product_video", conf


def catalog_case(hook: Any, cover: str, work: Path, n: int) -> tuple[str, dict]:
    from media_upload.sandbox.sample_media import write_sample_mp4

    folder = work / f"catalog-{n}"
    folder.mkdir()
    rows = [
        (
            f"cat-{n}-{k}",
            write_sample_mp4(folder / f"{k}.mp4", 600_000, seed=20_000 + 100 * n + k),
            f"Cat {n}.{k}",
        )
        for k in range(CATALOG_VIDEOS)
    ]
    return "lazada_catalog_videos", {"manifest": str(catalog_manifest(hook, folder / "c.csv", rows, cover))}


class Auditor:
    """Ends each new video's audit at a moment drawn from ``dice``, AUDIT_AFTER after its commit."""

    def __init__(self, url: str, seen: set[str], dice: random.Random) -> None:
        self.url, self.seen, self.dice = url, set(seen), dice
        self.due: dict[str, float] = {}
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.done.wait(0.2):
            for video_id, video in emulator(self.url, "state")["videos"].items():
                if video_id not in self.seen and video_id not in self.due:
                    self.due[video_id] = video["committed_at"] + self.dice.uniform(*AUDIT_AFTER)
            for video_id, due in list(self.due.items()):
                if time.time() >= due:
                    requests.post(
                        f"{self.url}/_sandbox/lazada/videos/{video_id}/outcome",
                        json={"outcome": "AUDIT_SUCCESS", "finish_now": True},
                        timeout=30,
                    ).raise_for_status()
                    self.seen.add(video_id)
                    del self.due[video_id]

    def __enter__(self) -> Auditor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def deployment_run(
    stack: LocalStack, case: Any, hook: Any, cover: str, work: Path, n: int, dice: random.Random
) -> dict:
    url = stack.running_sandboxes["lazada"].url
    before = set(emulator(url, "state")["videos"])
    dag_id, conf = case(hook, cover, work, n)
    with Auditor(url, before, dice):
        run_id = stack.trigger(dag_id, conf)
        run = stack.wait(dag_id, run_id, timeout=900)
    if run["state"] != "success":
        raise RuntimeError(f"{dag_id} {run_id} ended {run['state']}; see {stack.home}/logs")
    videos = set(emulator(url, "state")["videos"]) - before
    delays, gets = audit_to_update(url, videos)
    return {"delays": delays, "gets_per_video": gets}


# ------------------------------------------------------------------------------ 1,000 waiting


def waiting_child(mode: str, shape: str, ids_file: str) -> None:
    """In a fresh process: the audit triggers of every video in ``ids_file``, in one event loop, to the end."""
    from media_upload.triggers.lazada import LazadaVideoAuditTrigger
    from media_upload.triggers.videos import VideosSettledTrigger

    video_ids = json.loads(Path(ids_file).read_text())

    async def run(trigger: Any) -> dict:
        return (await trigger.run().__anext__()).payload

    async def batch() -> list[dict]:
        """The catalog's wait: one trigger for every video left, again after each event, as its task does."""
        left, events = set(video_ids), []
        while left:
            videos = [
                {"platform": "lazada", "conn_id": "lazada_default", "video_id": v, "final": ["AUDIT_SUCCESS"]}
                for v in sorted(left)
            ]
            event = await run(VideosSettledTrigger(videos))
            done = {
                key.split(":", 1)[1] for key, state in event["states"].items() if state == "AUDIT_SUCCESS"
            }
            events += [{"status": "success"} for _ in done & left]
            events += [{"status": "error", "video": key} for key in event["failed"]]
            left -= done | {key.split(":", 1)[1] for key in event["failed"]}
        return events

    async def main() -> list[dict]:
        if shape == "batch":
            return await batch()
        return list(await asyncio.gather(*(run(LazadaVideoAuditTrigger(v)) for v in video_ids)))

    cpu, started = time.process_time(), time.monotonic()
    events = asyncio.run(main())
    failed = [e for e in events if e.get("status") != "success"]
    if failed:
        raise RuntimeError(f"{len(failed)} waits did not succeed: {failed[:3]}")
    print(json.dumps({"cpu": time.process_time() - cpu, "seconds": time.monotonic() - started}))


def upload_many(hook: Any, cover: str, work: Path, count: int, tag: str) -> list[str]:
    """``count`` small videos committed as fast as 8 threads go (their audits start at once)."""
    from media_upload.sandbox.sample_media import write_sample_mp4

    clip = write_sample_mp4(work / f"clip-{tag}.mp4", 20_000, seed=7)
    data = clip.read_bytes()

    def one(n: int) -> str:
        upload_id = hook.init_create_video(f"{tag}-{n}.mp4", len(data))
        tag_ = hook.upload_video_block(upload_id, 0, 1, data)
        return hook.complete_create_video(upload_id, [{"partNumber": 1, "eTag": tag_}], f"{tag} {n}", cover)

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


def api_server_cpu(stack: LocalStack) -> float:
    top = psutil.Process(stack.processes["api-server"].pid)
    return sum(sum(p.cpu_times()[:2]) for p in [top, *top.children(recursive=True)])


def waiting_run(
    stack: LocalStack, sandbox_url: str, connection: dict, mode: str, shape: str, work: Path
) -> dict:
    from media_upload.hooks.lazada import LazadaHook

    os.environ["AIRFLOW_CONN_LAZADA_BENCH"] = json.dumps(connection)
    hook = LazadaHook("lazada_bench")
    cover = "https://sg-live-01.slatic.net/p/bench.png"
    ids = upload_many(hook, cover, work, WAITING, f"{mode}-{shape}")
    ids_file = work / f"ids-{mode}-{shape}.json"
    ids_file.write_text(json.dumps(ids))
    gets_before = emulator(sandbox_url, "state")["request_counts"].get("/media/video/get", 0)
    receiver_before = api_server_cpu(stack)
    extra = {**connection["extra"], "push": mode == "push"}
    env = {
        **stack.environment(),
        "AIRFLOW_CONN_LAZADA_DEFAULT": json.dumps({**connection, "extra": extra}),
        "AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER": json.dumps(stack.connections()["media_upload_ledger"]),
    }
    result = subprocess.run(
        [sys.executable, __file__, "--waiting-child", mode, shape, str(ids_file)],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"the waiting triggers failed:\n{result.stderr[-3000:]}")
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    gets = emulator(sandbox_url, "state")["request_counts"].get("/media/video/get", 0) - gets_before
    return {
        **figures,
        "gets_per_video": gets / WAITING,
        "receiver_cpu": api_server_cpu(stack) - receiver_before,
    }


# ------------------------------------------------------------------------------ report


def table(deployment: dict[str, dict[str, list[dict]]], waiting: dict[str, list[dict]], rounds: int) -> str:
    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    lines = [
        f"Audits passed {AUDIT_AFTER[0]:g} to {AUDIT_AFTER[1]:g} s after each commit (random, the same for both ways), "
        f"{rounds} interleaved rounds on one deployment (LocalExecutor, PostgreSQL), {os.cpu_count()} CPUs; polling "
        "as the sensors do by default (first look after 2 s, then up to 30 s apart). A catalog attaches each "
        "video as its own audit passes.",
        "",
        "| DAG | Wait | AUDIT_SUCCESS → UpdateProduct, mean s (max) | GetVideo calls per video |",
        "|---|---|---|---|",
    ]
    for dag, modes in deployment.items():
        for mode in MODES:
            runs = modes.get(mode, [])
            delays = [d for run in runs for d in run["delays"]]
            gets = [run["gets_per_video"] for run in runs]
            mean = statistics.fmean(delays) if delays else float("nan")
            lines.append(
                f"| {dag} | {mode} | {mean:.1f} ({max(delays, default=float('nan')):.1f}) | {med(gets):.1f} |"
            )
    lines += [
        "",
        f"{WAITING:,} videos waiting at once ({WAITING_AUDIT_SECONDS} s audits, uploaded back to back), their "
        "triggers in one event loop as the triggerer runs them; no worker slot is held in any case.",
        "",
        "| Triggers | Wait | Triggerer CPU s (whole wait) | Wall s | GetVideo calls per video | Receiver CPU s |",
        "|---|---|---|---|---|---|",
    ]
    for key, runs in waiting.items():
        shape, mode = key.split("/")
        label = f"{WAITING:,} single-video" if shape == "single" else "the catalog's one"
        lines.append(
            f"| {label} | {mode} | {med([r['cpu'] for r in runs]):.1f} | {med([r['seconds'] for r in runs]):.0f} | "
            f"{med([r['gets_per_video'] for r in runs]):.1f} | "
            + (f"{med([r['receiver_cpu'] for r in runs]):.1f} |" if mode == "push" else "- |")
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--waiting-rounds", type=int, default=1)
    parser.add_argument("--out", type=Path, help="Markdown file whose <!-- push --> section gets the table")
    parser.add_argument("--waiting-child", nargs=3, metavar=("MODE", "SHAPE", "IDS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.waiting_child:
        waiting_child(*args.waiting_child)
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    stack = LocalStack(
        work / "airflow",
        executor="LocalExecutor",
        database="airflow_bench_push",
        allowed_sources=(f"{work}/",),
        sandboxes={"lazada": ["--audit-seconds", str(AUDIT_SECONDS)]},
        connections_in_env=False,
        lazada_push=True,
    )
    deployment: dict[str, dict[str, list[dict]]] = {}
    waiting: dict[str, list[dict]] = {}
    with stack:
        from media_upload.hooks.lazada import LazadaHook

        os.environ["AIRFLOW_CONN_LAZADA_DEFAULT"] = json.dumps(stack.running_sandboxes["lazada"].connection)
        hook = LazadaHook()
        cover = hook.upload_image(PNG, "cover.png")
        stack.wait_for_dags("lazada_product_video", "lazada_catalog_videos")
        n = 0
        for round_number in range(1, args.rounds + 1):
            for case in (product_video_case, catalog_case):
                seed = 1000 * round_number + (case is catalog_case)
                for mode in MODES:
                    set_push(stack, "lazada_default", mode == "push")
                    n += 1
                    figures = deployment_run(stack, case, hook, cover, work, n, random.Random(seed))
                    dag = "lazada_product_video" if case is product_video_case else "lazada_catalog_videos"
                    deployment.setdefault(dag, {}).setdefault(mode, []).append(figures)
                    print(
                        f"round {round_number} {dag} {mode}: audit → update {statistics.median(figures['delays']):.1f} s, "
                        f"{figures['gets_per_video']:.1f} GetVideo per video",
                        flush=True,
                    )
        # A second emulator for the 1,000: its own audit time, pushing to the receiver as lazada_bench.
        port = free_port()
        sandbox = subprocess.Popen(
            [str(Path(sys.executable).parent / "media-sandbox"), "lazada", "--port", str(port),
             "--audit-seconds", str(WAITING_AUDIT_SECONDS), "--capacity-bytes", str(10**11),
             "--data-dir", str(work / "waiting"), "--push-url", stack.push_url("lazada_bench")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            assert sandbox.stdout is not None
            banner = next(line for line in sandbox.stdout if line.startswith("export AIRFLOW_CONN_"))
            connection = json.loads(banner.split("=", 1)[1].strip().strip("'"))
            stack.api("POST", "/connections", json={**connection, "connection_id": "lazada_bench",
                                                    "extra": json.dumps(connection["extra"])})  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            for _ in range(args.waiting_rounds):
                for shape in ("single", "batch"):
                    for mode in MODES:
                        figures = waiting_run(stack, url, connection, mode, shape, work)
                        waiting.setdefault(f"{shape}/{mode}", []).append(figures)
                        print(f"{WAITING} waiting, {shape} {mode}: {figures}", flush=True)
        finally:
            sandbox.terminate()
            sandbox.wait(10)
    text = table(deployment, waiting, args.rounds)
    print(text)
    results = ROOT / "bench" / "results" / "push.json"
    results.write_text(json.dumps({"deployment": deployment, "waiting": waiting}, indent=1) + "\n")
    if args.out:
        write_section(args.out, "<!-- push -->", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
