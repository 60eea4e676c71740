"""A seeded fault campaign: many videos to every platform while one request in ten meets a fault and the
platforms' call limits apply.

Every emulator injects faults at random (``fault_rate``): 503 pages, throttling, connections reset before
the platform acts, answers lost after it acted, answers later than the client's timeout. A catalog whose
rows are listed on Lazada and on Shopee, and a set of Huawei VOD uploads, go through the real operators,
task after task, each task retried as Airflow would retry it (a failure the operator marks final is not
retried; a deferred task's trigger runs and the task resumes). Then the same work runs a second time. The campaign counts what matters: every video attached (or ready) or marked needs-attention,
no second video for any content, no corrupted video, and nothing sent the second time.

    .venv/bin/python -m tests.faults.campaign --crash-tests --out docs/reliability.md   # make reliability

The tests in this folder run the same campaign and assert on its figures.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if "AIRFLOW_HOME" not in os.environ:  # run as a command: a throwaway Airflow home, as the tests have
    os.environ.update(
        AIRFLOW_HOME=tempfile.mkdtemp(prefix="fault-campaign-airflow-"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__MEDIA_UPLOAD__ALLOWED_SOURCES=f"{tempfile.gettempdir()}/",  # the campaign's work folders
        AIRFLOW__CORE__FERNET_KEY="Ds9sZ5hXK5bM8qnqGr0f-F2Wq3BvoJQ4m8l6Ht1GQ2k=",
    )

import asyncio  # noqa: E402

import requests  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException, TaskDeferred  # noqa: E402

from media_upload.catalog.operators import (  # noqa: E402
    CatalogAttachOperator,
    CatalogPlanOperator,
    CatalogSettleOperator,
    CatalogUploadChunkOperator,
)
from media_upload.catalog.report import CatalogReportOperator  # noqa: E402
from media_upload.hooks.lazada import LazadaHook  # noqa: E402
from media_upload.ledger import ATTACHED, AUDITED, COMMITTED, NEEDS_ATTENTION, UploadLedger  # noqa: E402
from media_upload.operators.huawei_vod import (  # noqa: E402
    HuaweiVodConfirmUploadOperator,
    HuaweiVodCreateAssetOperator,
    HuaweiVodUploadChunkOperator,
)
from media_upload.sandbox.huawei_vod import HuaweiVodSandbox, HuaweiVodSandboxConfig  # noqa: E402
from media_upload.sandbox.lazada import LazadaSandbox, LazadaSandboxConfig  # noqa: E402
from media_upload.sandbox.lazada.products import sample_product_payload  # noqa: E402
from media_upload.sandbox.sample_media import write_sample_mp4  # noqa: E402
from media_upload.sandbox.shopee import ShopeeSandbox, ShopeeSandboxConfig  # noqa: E402
from media_upload.sandbox.shopee.products import sample_item  # noqa: E402
from media_upload.sensors.huawei_vod import HuaweiVodAssetSensor  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
#: Quick retries and a short timeout: late answers (``slow_seconds``) are lost answers to this client.
CLIENT = {
    "timeout": 1.5,
    "max_attempts": 6,
    "backoff_seconds": 0.05,
    "backoff_max_seconds": 0.5,
    "throttle_pause_seconds": 0.05,
}
#: Task retries as the DAGs configure them: chunks 3, the others 2.
TRIES = {"chunk": 4, "other": 3}


#: The platforms of the catalog; every row is listed on each.
CATALOG = {"lazada": "lazada_default", "shopee": "shopee_default"}


@dataclass
class Campaign:
    #: Catalog rows, each uploaded to Lazada and to Shopee.
    catalog_rows: int = 24
    vod_videos: int = 16
    fault_rate: float = 0.1
    seed: int = 7
    #: Each platform's call limit (per seller, shop or tenant): low enough that the catalog meets it.
    calls_per_second: float = 10.0


@dataclass
class Figures:
    """What a campaign counted."""

    videos: dict[str, int] = field(default_factory=dict)
    finished: dict[str, Counter[str]] = field(default_factory=dict)
    second_videos: int = 0
    corrupted: int = 0
    orphan_assets: int = 0
    faults: dict[str, dict[str, int]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    limited: dict[str, int] = field(default_factory=dict)
    commits_sent: dict[str, int] = field(default_factory=dict)
    task_tries: Counter[str] = field(default_factory=Counter)
    failed_tasks: Counter[str] = field(default_factory=Counter)
    second_run_bytes_requests: int = -1
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "finished": {name: dict(counts) for name, counts in self.finished.items()},
            "second_videos": self.second_videos,
            "corrupted": self.corrupted,
            "orphan_assets": self.orphan_assets,
            "faults": self.faults,
            "requests": self.requests,
            "limited": self.limited,
            "commits_sent": self.commits_sent,
            "task_tries": dict(self.task_tries),
            "failed_tasks": dict(self.failed_tasks),
            "second_run_upload_requests": self.second_run_bytes_requests,
            "seconds": round(self.seconds, 1),
        }


class Run:
    """One DAG run's task context; XComs kept under each task id, tasks retried as Airflow would."""

    def __init__(self, run_id: str, dag_id: str, figures: Figures) -> None:
        from tests.conftest import FakeTaskInstance

        self.ti = FakeTaskInstance()
        self.context: dict[str, Any] = {
            "ti": self.ti,
            "run_id": run_id,
            "dag": SimpleNamespace(dag_id=dag_id),
            "dag_run": SimpleNamespace(start_date=None),
        }
        self.figures = figures

    def do(self, operator: Any, tries: int = TRIES["other"]) -> Any:
        """``execute`` up to ``tries`` times; a final failure (AirflowFailException) is not retried. A
        deferral runs its trigger to its event and resumes the task, as the triggerer and a worker would."""
        for attempt in range(1, tries + 1):
            self.figures.task_tries[operator.task_id] += 1
            try:
                result = self._deferred(operator)
                break
            except AirflowSkipException:
                return None
            except AirflowFailException:
                self.figures.failed_tasks[operator.task_id] += 1
                return None
            except Exception:
                if attempt == tries:
                    self.figures.failed_tasks[operator.task_id] += 1
                    return None
        for task_id, key in list(self.ti.xcoms):
            if task_id is None:
                self.ti.xcoms[(operator.task_id, key)] = self.ti.xcoms.pop((None, key))
        self.ti.xcoms[(operator.task_id, "return_value")] = result
        return result

    def _deferred(self, operator: Any) -> Any:
        call: Any = lambda: operator.execute(self.context)  # noqa: E731
        while True:
            try:
                return call()
            except TaskDeferred as deferred:
                event = asyncio.run(asyncio.wait_for(deferred.trigger.run().__anext__(), 300))
                method = getattr(operator, deferred.method_name)
                call = lambda method=method, event=event: method(self.context, event.payload)  # noqa: E731

    def wait(self, sensor: Any, timeout: float = 120) -> Any:
        """Poke until done, a poke that raises counting as a retry of the sensor."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.figures.task_tries[sensor.task_id] += 1
            try:
                poked = sensor.poke(self.context)
            except AirflowFailException:
                self.figures.failed_tasks[sensor.task_id] += 1
                return None
            except Exception:
                time.sleep(0.2)
                continue
            if poked.is_done:
                self.ti.xcoms[(sensor.task_id, "return_value")] = poked.xcom_value
                return poked.xcom_value
            time.sleep(0.3)
        self.figures.failed_tasks[sensor.task_id] += 1
        return None


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _connection(sandbox: Any, name: str) -> None:
    connection = sandbox.airflow_connection()
    connection["extra"] = {**connection["extra"], **CLIENT}
    os.environ[f"AIRFLOW_CONN_{name.upper()}"] = json.dumps(connection)


def _catalog(run: Run, manifest: Path) -> None:
    common = {"connections": CATALOG}
    plan = CatalogPlanOperator(task_id="plan", manifest=str(manifest), chunks=4, **common)
    for chunk in run.do(plan, tries=1) or []:
        run.do(
            CatalogUploadChunkOperator(task_id="upload_chunk", chunk=chunk, **common), tries=TRIES["chunk"]
        )
    run.do(CatalogSettleOperator(task_id="settle", plan_task_id="plan", **common))
    attach = CatalogAttachOperator(
        task_id="wait_and_attach", settle_task_id="settle", poke_interval=0.3, **common
    )
    run.do(attach)
    run.do(CatalogReportOperator(task_id="report", plan_task_id="plan", **common))


def _vod_upload(run: Run, source: Path, product: str, single: bool) -> None:
    create = HuaweiVodCreateAssetOperator(
        task_id="create_asset",
        source=str(source),
        title=f"Clip {product}",
        product=product,
        single_put_max_bytes=20_000_000 if single else 0,
        part_size=None if single else 400_000,
    )
    chunks = run.do(create)
    if chunks is None:
        return
    for chunk in chunks:
        run.do(HuaweiVodUploadChunkOperator(task_id="upload_chunk", chunk=chunk), tries=TRIES["chunk"])
    ready = run.do(
        HuaweiVodConfirmUploadOperator(task_id="confirm_upload", job=run.ti.xcoms[("create_asset", "job")])
    )
    if ready:
        run.wait(HuaweiVodAssetSensor(task_id="wait_until_ready", asset=ready, poke_interval=0.3))


def run_campaign(work: Path, campaign: Campaign) -> Figures:
    """Set up the catalog and the VOD videos, run everything twice with faults on, and count."""
    figures = Figures()
    started = time.monotonic()
    per_second = (
        campaign.calls_per_second
    )  # call limits on: the platforms' own throttling, besides the faults
    lazada_config = LazadaSandboxConfig(
        data_dir=work / "lazada",
        audit_seconds=0.5,
        fault_seed=campaign.seed,
        slow_seconds=2.0,
        seller_calls_per_second=per_second,
        call_burst=per_second / 2,
    )
    shopee_config = ShopeeSandboxConfig(
        data_dir=work / "shopee",
        transcode_seconds=0.5,
        fault_seed=campaign.seed + 2,
        slow_seconds=2.0,
        shop_calls_per_second=per_second,
    )
    vod_config = HuaweiVodSandboxConfig(
        data_dir=work / "vod",
        transcode_seconds=0.5,
        fault_seed=campaign.seed + 1,
        slow_seconds=2.0,
        calls_per_minute=60 * per_second,
        obs_requests_per_second=per_second,
    )
    os.environ["AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER"] = "sqlite://" + str(work / "ledger.db").replace("/", "%2F")
    with (
        LazadaSandbox(lazada_config) as lazada,
        ShopeeSandbox(shopee_config) as shopee,
        HuaweiVodSandbox(vod_config) as vod,
    ):
        _connection(lazada, "lazada_default")
        _connection(shopee, "shopee_default")
        _connection(vod, "huawei_vod_default")
        hook = LazadaHook()
        cover = hook.upload_image(PNG, "cover.png")
        catalog = work / "catalog"
        catalog.mkdir(parents=True, exist_ok=True)
        sources: dict[str, Path] = {}
        items: dict[str, str] = {}
        with (catalog / "catalog.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["seller_sku", "shopee_item_id", "video", "title", "cover_url", "block_size"])
            for number in range(campaign.catalog_rows):
                sku = f"fault-{number:03d}"
                sources[sku] = write_sample_mp4(
                    catalog / f"{sku}.mp4", 300_000 + 37_000 * number, seed=1000 + number, duration_seconds=12
                )
                hook.create_product(sample_product_payload(cover, sku, name=sku))
                item = requests.post(f"{shopee.url}/_sandbox/shopee/items", json=sample_item(sku), timeout=30)
                items[sku] = str(item.json()["item_id"])
                writer.writerow([sku, items[sku], sources[sku].name, f"Clip {sku}", cover, 250_000])
        clips = {
            f"vod-{number:03d}": write_sample_mp4(
                work / f"vod-{number:03d}.mp4", 500_000 + 61_000 * number, seed=2000 + number
            )
            for number in range(campaign.vod_videos)
        }
        for emulator in (lazada, shopee, vod):  # faults on, setup done
            emulator.backend.dice.rate = campaign.fault_rate

        sent: list[int] = []
        for attempt in ("first", "second"):
            _catalog(Run(f"catalog-{attempt}", "catalog_videos", figures), catalog / "catalog.csv")
            for number, (product, clip) in enumerate(clips.items()):
                _vod_upload(
                    Run(f"vod-{attempt}-{product}", "huawei_vod_upload", figures),
                    clip,
                    product,
                    single=number % 4 == 0,
                )
            sent.append(_upload_requests(lazada, shopee, vod))
        figures.second_run_bytes_requests = sent[1] - sent[0]
        _count(figures, lazada, shopee, vod, sources, items, clips)
    figures.seconds = time.monotonic() - started
    return figures


def _upload_requests(lazada: LazadaSandbox, shopee: ShopeeSandbox, vod: HuaweiVodSandbox) -> int:
    """Requests that carried video bytes, at every emulator."""
    return (
        lazada.backend.request_counts["/media/video/block/upload"]
        + shopee.backend.request_counts["/api/v2/media_space/upload_video_part"]
        + vod.backend.request_counts["UploadPart"]
        + vod.backend.request_counts["PutObject"]
    )


def _count(
    figures: Figures,
    lazada: LazadaSandbox,
    shopee: ShopeeSandbox,
    vod: HuaweiVodSandbox,
    sources: dict[str, Path],
    items: dict[str, str],
    clips: dict[str, Path],
) -> None:
    ledger = UploadLedger()
    rows = {(row.platform, row.product): row for row in ledger.all()}

    def finished(platform: str, products: list[str]) -> Counter[str]:
        return Counter(rows[(platform, p)].state if (platform, p) in rows else "missing" for p in products)

    figures.videos = {"lazada": len(sources), "shopee": len(items), "huawei_vod": len(clips)}
    figures.finished = {
        "lazada": finished("lazada", [f"sku:{sku}" for sku in sources]),
        "shopee": finished("shopee", [f"item:{item}" for item in items.values()]),
        "huawei_vod": finished("huawei_vod", list(clips)),
    }
    source_md5 = {_md5(path) for path in sources.values()}
    state = lazada.backend.snapshot()
    by_content: Counter[str] = Counter(
        video["sha256"] for video in state["videos"].values() if not video["deleted"]
    )
    figures.second_videos = sum(count - 1 for count in by_content.values() if count > 1)
    figures.corrupted = sum(1 for video in state["videos"].values() if video["md5"] not in source_md5)
    completed = [u for u in shopee.backend.snapshot()["uploads"].values() if u["completed_at"] is not None]
    by_file: Counter[str] = Counter(upload["file_md5"] for upload in completed)
    figures.second_videos += sum(count - 1 for count in by_file.values() if count > 1)
    figures.corrupted += sum(1 for upload in completed if upload["video_md5"] not in (None, *source_md5))
    assets = vod.backend.snapshot()["assets"]
    confirmed = [asset for asset in assets.values() if asset.get("confirm") == "CREATED"]
    clip_md5 = {_md5(path) for path in clips.values()}
    confirmed_md5: Counter[str] = Counter((asset.get("object") or {}).get("md5") for asset in confirmed)
    figures.second_videos += sum(count - 1 for count in confirmed_md5.values() if count > 1)
    figures.corrupted += sum(1 for md5 in confirmed_md5 if md5 not in clip_md5)
    figures.orphan_assets = len(assets) - len(confirmed)
    emulators = {"lazada": lazada, "shopee": shopee, "huawei_vod": vod}
    figures.faults = {name: emulator.backend.dice.summary() for name, emulator in emulators.items()}
    figures.requests = {
        name: sum(emulator.backend.request_counts.values()) for name, emulator in emulators.items()
    }
    figures.limited = {name: sum(emulator.backend.limited.values()) for name, emulator in emulators.items()}
    figures.commits_sent = {
        "lazada CompleteCreateVideo": lazada.backend.request_counts["/media/video/block/commit"],
        "shopee complete_video_upload": shopee.backend.request_counts[
            "/api/v2/media_space/complete_video_upload"
        ],
        "OBS complete": vod.backend.request_counts["CompleteMultipartUpload"],
        "VOD ConfirmAssetUpload": vod.backend.request_counts["ConfirmAssetUpload"],
    }


def markdown(figures: Figures, campaign: Campaign) -> str:
    """The campaign's figures as the table docs/reliability.md shows."""
    data = figures.as_json()
    names = ("lazada", "shopee", "huawei_vod")
    done = {
        ATTACHED: "attached",
        AUDITED: "ready (VOD)",
        COMMITTED: "committed",
        NEEDS_ATTENTION: "needs attention",
    }

    def row(label: str, values: list[Any]) -> str:
        return f"| {label} | " + " | ".join(str(value) for value in values) + " |"

    lines = [
        f"Seed {campaign.seed}, {campaign.fault_rate:.0%} of requests faulted, {sum(figures.videos.values())} videos "
        f"({campaign.catalog_rows} catalog rows, each on Lazada and on Shopee; {figures.videos['huawei_vod']} "
        f"Huawei VOD uploads), two runs, {data['seconds']} s. Call limits on: {campaign.calls_per_second:g} calls/s "
        "per Lazada seller, Shopee shop, VOD tenant and OBS bucket, answered as each platform throttles.",
        "",
        "| Figure | Lazada | Shopee | Huawei VOD |",
        "|---|---|---|---|",
        row("requests to the platform", [f"{figures.requests[name]:,}" for name in names]),
    ]
    for kind in ("unavailable", "throttle", "reset", "drop", "slow"):
        lines.append(row(f"faults: {kind}", [figures.faults[name].get(kind, 0) for name in names]))
    lines.append(row("call limit answers", [figures.limited[name] for name in names]))
    for state, label in done.items():
        lines.append(row(f"videos {label}", [figures.finished[name].get(state, 0) for name in names]))
    others = [
        sum(count for state, count in figures.finished[name].items() if state not in done) for name in names
    ]
    commits = figures.commits_sent
    lines += [
        row("videos in any other state", others),
        row(
            "commits sent (CompleteCreateVideo; complete_video_upload; OBS complete + confirm)",
            [
                commits["lazada CompleteCreateVideo"],
                commits["shopee complete_video_upload"],
                f"{commits['OBS complete']} + {commits['VOD ConfirmAssetUpload']}",
            ],
        ),
        "",
        f"Second videos for the same content: **{figures.second_videos}**. Corrupted videos (assembled MD5 differs "
        f"from the source's): **{figures.corrupted}**. Requests carrying video bytes in the second run: "
        f"**{figures.second_run_bytes_requests}**. Empty VOD assets left by a CreateAsset whose answer was lost: "
        f"{figures.orphan_assets}.",
        "",
        "Task tries (first tries and retries, as Airflow would run them) and tasks that still failed:",
        "",
        "| Task | Tries | Failed after its retries |",
        "|---|---|---|",
    ]
    lines += [
        f"| {task} | {tries} | {figures.failed_tasks.get(task, 0)} |"
        for task, tries in sorted(figures.task_tries.items())
    ]
    return "\n".join(lines) + "\n"


def crash_tests() -> str:
    """Run the ``kill -9`` tests (test_crash.py) and give their outcomes as a table."""
    import xml.etree.ElementTree as ElementTree

    report = Path(tempfile.mkdtemp(prefix="crash-tests-")) / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "faults",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            str(Path(__file__).with_name("test_crash.py")),
        ],
        cwd=ROOT,
        check=False,
    )
    lines = [
        "| Killed (`kill -9` of the whole `airflow dags test`) | Outcome of the new run | Seconds |",
        "|---|---|---|",
    ]
    for case in ElementTree.parse(report).iter("testcase"):
        failure = case.find("failure")
        if failure is None:
            failure = case.find("error")
        doc = case.get("name", "").removeprefix("test_killed_").replace("_", " ").replace("lazada", "Lazada")
        outcome = (
            "passed: one video, its bytes intact, the ledger row attached, no acknowledged block sent again"
        )
        if failure is not None:
            outcome = "**failed**: " + (failure.get("message") or "")[:200]
        lines.append(f"| {doc} | {outcome} | {float(case.get('time', 0)):.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=Campaign.seed)
    parser.add_argument("--rate", type=float, default=Campaign.fault_rate)
    parser.add_argument("--out", type=Path, help="write the figures into this markdown file")
    parser.add_argument(
        "--crash-tests", action="store_true", help="also run the kill -9 tests and add theirs"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "bench"))
    from results import write_section

    campaign = Campaign(fault_rate=args.rate, seed=args.seed)
    figures = run_campaign(Path(tempfile.mkdtemp(prefix="fault-campaign-")), campaign)
    table = markdown(figures, campaign)
    print(table)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "reliability.json").write_text(
        json.dumps(figures.as_json(), indent=1) + "\n"
    )
    if args.out:
        write_section(args.out, "<!-- fault-campaign -->", table)
    if args.crash_tests:
        crashes = crash_tests()
        print(crashes)
        if args.out:
            write_section(args.out, "<!-- crash-tests -->", crashes)
        return 1 if "**failed**" in crashes else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
