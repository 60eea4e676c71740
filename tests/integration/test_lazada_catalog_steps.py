"""The catalog's batch operators on their own, against the Lazada emulator: the plan's checks and ledger
decisions, the chunks, the settle step for what the chunks could not commit, the deferred wait that
attaches each video as its audit passes, with its Asset events, and the report."""

from __future__ import annotations

import csv
import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk import Asset, AssetAlias
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from media_upload.catalog.operators import (
    catalog_videos_asset,
    product_video_events,
    product_videos_asset,
)
from media_upload.catalog.report import (
    CatalogNextBatchOperator,
)
from media_upload.hooks.lazada import LazadaApiError, LazadaHook
from media_upload.ledger import ATTACHED, COMMITTED, REJECTED, UPLOADING, LedgerEntry, UploadLedger
from media_upload.sandbox.lazada.products import sample_product_payload
from media_upload.steps.lazada import LazadaSteps
from tests.integration.catalog import CatalogRun

PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)
INIT, BLOCK, COMMIT = "/media/video/block/create", "/media/video/block/upload", "/media/video/block/commit"
ACCOUNT = ("lazada", "lazada_default")


@pytest.fixture
def sandbox(make_lazada_sandbox, lazada_connection, ledger_connection):
    """An emulator whose audits end at once (a test that waits sets a longer one), and this test's ledger."""
    sandbox = make_lazada_sandbox(audit_seconds=0)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    return sandbox


class Shop:
    """Products in the emulator and a manifest naming them, with the videos in the manifest's folder."""

    def __init__(self, folder: Path, sample_video) -> None:
        self.folder = folder
        self.sample_video = sample_video
        self.hook = LazadaHook()
        self.cover = self.hook.upload_image(PNG, "cover.png")
        self.items: dict[str, str] = {}
        self.rows: list[dict[str, str]] = []

    def product(self, sku: str) -> str:
        data = self.hook.create_product(sample_product_payload(self.cover, sku, name=sku))
        self.items[sku] = str(data["item_id"])
        return self.items[sku]

    def video(self, name: str, size: int = 1_200_000, seed: int = 0) -> Path:
        path = self.folder / name
        if not path.exists():
            self.sample_video(size, seed=seed, name=name).rename(path)
        return path

    def add(self, sku: str, video: str = "shoe.mp4", *, product: bool = True, **fields: str) -> None:
        if product:
            self.product(sku)
        self.video(video)
        self.rows.append(
            {"seller_sku": sku, "video": video, "title": f"Video of {sku}", "cover_url": self.cover, **fields}
        )

    def write(self) -> str:
        path = self.folder / "manifest.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["seller_sku", "item_id", "sku_id", "video", "title", "cover_url"]
            )
            writer.writeheader()
            writer.writerows(self.rows)
        return str(path)


@pytest.fixture
def shop(sandbox, tmp_path, sample_video) -> Shop:
    folder = tmp_path / "catalog"
    folder.mkdir()
    return Shop(folder, sample_video)


@pytest.fixture
def reviewing(make_lazada_sandbox, lazada_connection, ledger_connection, tmp_path, sample_video):
    """An emulator whose audits last ten minutes unless a test ends them, and a shop on it."""
    sandbox = make_lazada_sandbox(audit_seconds=600)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    folder = tmp_path / "catalog"
    folder.mkdir()
    return sandbox, Shop(folder, sample_video)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Events(dict):
    """What Airflow gives a task as ``outlet_events``: an accessor per outlet."""

    def __missing__(self, key):
        accessor = SimpleNamespace(extra=None, added=[])
        accessor.add = lambda asset, extra=None: accessor.added.append((asset, extra))
        self[key] = accessor
        return accessor


@pytest.fixture
def catalog_run(task_context):
    return lambda run_id="run-1": CatalogRun(task_context, run_id)


def test_a_batch_uploads_audits_attaches_and_reports(shop, sandbox, catalog_run):
    """Every step of a run by hand: two videos in one chunk, each committed by the chunk with its last block."""
    shop.add("shoe")
    shop.video("boot.mp4", seed=2)
    shop.add("boot", "boot.mp4")
    run = catalog_run()
    chunks = run.plan(shop.write(), chunks=1)
    assert [chunk["label"] for chunk in chunks] == ["chunk 1/1 · 2 videos: shoe, boot · 2.4 MB"]
    assert sandbox.backend.request_counts[INIT] == 2 and BLOCK not in sandbox.backend.request_counts

    (parts,) = run.upload(chunks)
    assert sorted(len(blocks) for blocks in parts.values()) == [2, 2]
    assert sandbox.backend.request_counts[BLOCK] == 4
    assert sandbox.backend.request_counts[COMMIT] == 2  # the chunk committed both videos
    committed = run.settle()
    assert sandbox.backend.request_counts[COMMIT] == 2  # nothing left to settle
    assert sorted(job["label"] for job in committed) == ["boot", "shoe"]
    assert all(UploadLedger().get(*ACCOUNT, f"sku:{job['label']}", job["content_sha256"]).state == COMMITTED
               for job in committed)  # fmt: skip

    attached = run.attach()
    products = sandbox.backend.snapshot()["products"]
    assert {video["seller_sku"]: products[video["item_id"]]["attributes"]["video"] for video in attached} == {
        job["label"]: job["video_id"] for job in committed
    }
    summary = run.report()
    assert (summary["uploaded"], summary["attached"], summary["failed"]) == (2, 2, 0)
    assert summary["bytes_uploaded"] == 2 * 1_200_000 and summary["run_id"] == "run-1"
    with open(summary["csv"]) as handle:
        assert [(row["platform"], row["product"], row["state"]) for row in csv.DictReader(handle)] == [
            ("lazada", "shoe", "attached"),
            ("lazada", "boot", "attached"),
        ]
    assert run.verdict(True) is None


def test_plan_and_commit_never_make_a_second_video_for_recorded_content(shop, sandbox, catalog_run):
    shop.add("shoe")
    content = sha256(shop.folder / "shoe.mp4")
    UploadLedger().record(LedgerEntry(*ACCOUNT, "sku:shoe", content, COMMITTED, video_id="31111111111"))
    run = catalog_run()
    assert run.plan(shop.write()) == []  # no chunk: Lazada already has the video
    (job,) = run.xcom("plan", "jobs")
    assert job["video_id"] == "31111111111" and job["item_id"] == shop.items["shoe"]
    (committed,) = run.settle()
    assert committed["video_id"] == "31111111111"
    assert INIT not in sandbox.backend.request_counts and COMMIT not in sandbox.backend.request_counts


def test_plan_decisions_from_the_ledger(shop, sandbox, catalog_run):
    shop.video("blurry.mp4", seed=5)
    shop.add("attached")
    shop.add("rejected", "blurry.mp4")
    shop.add("fresh")  # the attached product's bytes
    shop.add("lookalike", "blurry.mp4")  # the rejected product's bytes
    content, blurry = sha256(shop.folder / "shoe.mp4"), sha256(shop.folder / "blurry.mp4")
    ledger = UploadLedger()
    ledger.record(LedgerEntry(*ACCOUNT, "sku:attached", content, ATTACHED, video_id="31"))
    ledger.record(LedgerEntry(*ACCOUNT, "sku:rejected", blurry, REJECTED, reason="audit said no"))
    run = catalog_run()
    assert run.plan(shop.write()) == []  # nothing to upload: "fresh" reuses video 31
    assert [(job["label"], job["video_id"]) for job in run.xcom("plan", "jobs")] == [("fresh", "31")]
    skipped = {row["label"]: row["reason"] for row in run.xcom("plan", "report")["skipped"]}
    assert skipped["attached"] == "already carries video 31"
    assert skipped["rejected"].startswith("this content was rejected before (audit said no)")
    assert skipped["lookalike"].startswith("these bytes were rejected for sku:rejected (audit said no)")
    fresh = ledger.get(*ACCOUNT, "sku:fresh", content)
    assert fresh.state == COMMITTED and "reuses the video uploaded for sku:attached" in fresh.reason
    assert INIT not in sandbox.backend.request_counts


def test_shared_content_is_uploaded_once_and_both_products_get_the_video(shop, sandbox, catalog_run):
    shop.add("left")
    shop.add("right")
    run = catalog_run()
    summary = run.whole(shop.write())
    assert sandbox.backend.request_counts[INIT] == 1 and sandbox.backend.request_counts[BLOCK] == 2
    follower = [job for job in run.xcom("plan", "jobs") if job["label"] == "right"]
    assert follower[0]["details"] == {"follows": "sku:left"}
    products = sandbox.backend.snapshot()["products"]
    left, right = (products[shop.items[sku]]["attributes"].get("video") for sku in ("left", "right"))
    assert left and left == right
    rows = {row["product"]: row for row in summary["rows"]}
    assert (rows["left"]["bytes"], rows["right"]["bytes"]) == (1_200_000, 0)
    assert (summary["uploaded"], summary["attached"]) == (1, 2)


def test_bad_rows_are_reported_by_the_plan_before_any_upload(shop, sandbox, catalog_run, tmp_path):
    """An unknown product, an item without the named SKU, a missing file: each a bad row, no upload."""
    shop.add("shoe")
    shop.add("ghost", product=False)  # no such SellerSku on Lazada
    item = shop.product("hat")
    shop.rows.append(
        {"item_id": item, "sku_id": "999", "video": "shoe.mp4", "title": "Hat", "cover_url": shop.cover}
    )
    shop.rows.append({"seller_sku": "cap", "video": "gone.mp4", "title": "Cap", "cover_url": shop.cover})
    run = catalog_run()
    chunks = run.plan(shop.write())
    report = run.xcom("plan", "report")
    problems = {problem["line"]: problem for problem in report["invalid"]}
    assert sorted(problems) == [3, 4, 5]
    assert problems[3]["field"] == "seller_sku" and "SKU_NOT_FOUND" in problems[3]["reason"]
    assert problems[4]["field"] == "item_id" and f"item {item} has no SKU 999" in problems[4]["reason"]
    assert problems[5]["field"] == "video" and "gone.mp4: no such file" in problems[5]["reason"]
    assert [job["label"] for job in run.xcom("plan", "jobs")] == ["shoe"]
    assert {segment["job"]["label"] for chunk in chunks for segment in chunk["segments"]} == {"shoe"}
    assert sandbox.backend.request_counts[INIT] == 1  # the good row only


def test_a_lost_commit_answer_is_settled_by_the_commit_step(shop, sandbox, catalog_run):
    """The chunk's commit reaches Lazada but its answer is cut, twice (the chunk asks again at once): the
    row stays commit_unknown, and the commit step asks once more and adopts the video Lazada names, so
    there is one video, not two."""
    shop.add("shoe")
    run = catalog_run()
    chunks = run.plan(shop.write())
    sandbox.backend.add_fault("drop", COMMIT, 2)
    run.upload(chunks)
    (job,) = run.xcom("plan", "jobs")
    assert UploadLedger().get(*ACCOUNT, "sku:shoe", job["content_sha256"]).state == "commit_unknown"
    assert sandbox.backend.request_counts[COMMIT] == 2

    (committed,) = run.settle()
    assert sandbox.backend.request_counts[COMMIT] == 3
    (video_id,) = sandbox.backend.snapshot()["videos"]
    assert committed["video_id"] == video_id
    entry = UploadLedger().get(*ACCOUNT, "sku:shoe", job["content_sha256"])
    assert (entry.state, entry.video_id) == (COMMITTED, video_id)


def test_a_failed_chunk_leaves_its_video_uploading_for_the_next_run(shop, sandbox, catalog_run):
    """Lazada refuses one of the two blocks in flight: the chunk fails, the commit step lets that video wait
    (the block Lazada took stays in the ledger) and the next run sends only the missing block."""
    shop.add("shoe")  # two blocks: 1,000,000 and 200,000 bytes, both in flight at once
    manifest = shop.write()
    run = catalog_run()
    (chunk,) = run.plan(manifest, chunks=1, blocks_in_flight=2)
    sandbox.backend.add_fault("998", BLOCK, 1)  # "disabled during the campaign": not retried
    with pytest.raises(LazadaApiError, match="998"):
        run.upload([chunk])
    assert sandbox.backend.request_counts[BLOCK] == 2
    assert run.settle() == []  # nothing to wait for in this run
    (job,) = run.xcom("plan", "jobs")
    entry = UploadLedger().get(*ACCOUNT, "sku:shoe", job["content_sha256"])
    assert entry.state == UPLOADING and "missing block(s)" in entry.reason
    assert len(UploadLedger().acknowledged("lazada", entry.upload_id)) == 1

    summary = catalog_run("run-2").whole(manifest)
    assert sandbox.backend.request_counts[INIT] == 1  # the same upload, resumed
    assert sandbox.backend.request_counts[BLOCK] == 3  # only the block Lazada lacked
    assert summary["attached"] == 1
    (video,) = sandbox.backend.snapshot()["videos"].values()
    assert video["md5"] == hashlib.md5((shop.folder / "shoe.mp4").read_bytes()).hexdigest()


def test_a_chunk_commits_each_video_while_its_other_blocks_still_go_up(
    shop, sandbox, catalog_run, monkeypatch
):
    """Three videos in one chunk, one block at a time: the first video's commit reaches Lazada while the
    last video's block is held back, so no audit waits for the rest of its chunk."""
    for n, sku in enumerate(("shoe", "boot", "sock")):
        shop.video(f"{sku}.mp4", size=300_000, seed=n)
        shop.add(sku, f"{sku}.mp4")
    (chunk,) = catalog_run().plan(shop.write(), chunks=1, blocks_in_flight=1)
    last = chunk["segments"][-1]["job"]["upload_id"]
    commits_seen_before_last_block: list[int] = []
    send_block = LazadaSteps.send_block

    def held(self, job, task, data):
        if job.upload_id == last:
            deadline = time.monotonic() + 10
            while not sandbox.backend.request_counts[COMMIT] and time.monotonic() < deadline:
                time.sleep(0.01)
            commits_seen_before_last_block.append(sandbox.backend.request_counts[COMMIT])
        return send_block(self, job, task, data)

    monkeypatch.setattr(LazadaSteps, "send_block", held)
    (parts,) = catalog_run().upload([chunk])
    assert len(parts) == 3 and sandbox.backend.request_counts[COMMIT] == 3
    assert commits_seen_before_last_block and commits_seen_before_last_block[0] >= 1


def test_each_video_is_attached_as_its_own_audit_passes_and_a_rejection_does_not_fail_the_wait(
    reviewing, catalog_run
):
    """Three videos whose audits end at different times: the good one goes on its product while the
    others are still being audited, the rejected one is recorded at once, the slow one comes last."""
    sandbox, shop = reviewing
    folder = shop.folder
    shop.add("good")
    shop.video("bad.mp4", seed=4)
    shop.add("bad", "bad.mp4")
    shop.video("slow.mp4", seed=6)
    shop.add("slow", "slow.mp4")
    run = catalog_run()
    run.upload(run.plan(shop.write()))
    videos = run.settle()
    by_label = {job["label"]: job["video_id"] for job in videos}
    products = lambda: sandbox.backend.snapshot()["products"]  # noqa: E731

    def audits(turn: int) -> None:
        if turn == 1:  # the first wait: "good" passes and "bad" fails, "slow" is still in review
            sandbox.backend.set_video_outcome(by_label["good"], "AUDIT_SUCCESS", finish_now=True)
            sandbox.backend.set_video_outcome(by_label["bad"], "AUDIT_FAILED", finish_now=True)
        elif turn == 2:  # by the second, "good" is on its product though "slow" has not finished
            assert products()[shop.items["good"]]["attributes"]["video"] == by_label["good"]
            assert "video" not in products()[shop.items["slow"]]["attributes"]
            assert UploadLedger().get(*ACCOUNT, "sku:bad", sha256(folder / "bad.mp4")).state == REJECTED
            sandbox.backend.set_video_outcome(by_label["slow"], "AUDIT_SUCCESS", finish_now=True)

    attached = run.attach(until=audits)
    assert run.deferrals == 2
    assert sorted(video["seller_sku"] for video in attached) == ["good", "slow"]
    bad = UploadLedger().get(*ACCOUNT, "sku:bad", sha256(folder / "bad.mp4"))
    assert bad.state == REJECTED and "AUDIT_FAILED" in bad.reason
    summary = run.report()
    assert (summary["attached"], summary["failed"]) == (2, 1)
    with pytest.raises(AirflowFailException, match="1 video"):
        run.verdict(True)
    assert run.verdict("False") is None


def test_a_review_slower_than_late_after_goes_to_the_late_task_with_its_own_event(reviewing, catalog_run):
    """One audit passes at once, one is still in review when the wait hands over: the run's event names the
    first video without waiting for the second, which the late task attaches and names in its own."""
    sandbox, shop = reviewing
    shop.add("quick")
    shop.video("slow.mp4", seed=6)
    shop.add("slow", "slow.mp4")
    run = catalog_run()
    run.upload(run.plan(shop.write()))
    by_label = {job["label"]: job["video_id"] for job in run.settle()}
    run.context["outlet_events"] = Events()
    asset = catalog_videos_asset()

    def audits(turn: int) -> None:
        if turn == 1:
            sandbox.backend.set_video_outcome(by_label["quick"], "AUDIT_SUCCESS", finish_now=True)

    first = run.attach(outlets=[asset], until=audits, late_after=1.0)
    assert [video["seller_sku"] for video in first] == ["quick"]
    assert [video["seller_sku"] for video in run.context["outlet_events"][asset].extra["videos"]] == ["quick"]
    assert "video" not in sandbox.backend.snapshot()["products"][shop.items["slow"]]["attributes"]
    (late,) = run.xcom("wait_and_attach", "late")["pending"]
    assert late[2] == "sku:slow"

    sandbox.backend.set_video_outcome(by_label["slow"], "AUDIT_SUCCESS", finish_now=True)
    run.context["outlet_events"] = Events()
    second = run.attach(outlets=[asset], task_id="wait_and_attach_late", late_from="wait_and_attach")
    assert [video["seller_sku"] for video in second] == ["slow"]
    assert [video["seller_sku"] for video in run.context["outlet_events"][asset].extra["videos"]] == ["slow"]
    assert (
        sandbox.backend.snapshot()["products"][shop.items["slow"]]["attributes"]["video"] == by_label["slow"]
    )
    assert run.report()["attached"] == 2

    run.ti.xcoms.pop(("wait_and_attach", "late"))  # nothing handed over: the late task has nothing to do
    with pytest.raises(AirflowSkipException, match="none is late"):
        run.attach(task_id="wait_and_attach_late", late_from="wait_and_attach")


def test_attach_finds_the_item_by_seller_sku_and_emits_one_event_for_the_run(shop, sandbox, catalog_run):
    shop.add("shoe")
    run = catalog_run()
    run.upload(run.plan(shop.write()))
    (job,) = run.settle()
    run.ti.xcoms[("settle", "return_value")] = [{**job, "item_id": None, "sku_ids": []}]  # found by SellerSku
    run.context["outlet_events"] = Events()
    asset, alias = product_videos_asset(), product_video_events()
    (attached,) = run.attach(outlets=[asset, alias])
    video = {
        "platform": "lazada",
        "product": "sku:shoe",
        "seller_sku": "shoe",
        "item_id": shop.items["shoe"],
        "video_id": job["video_id"],
        "content_sha256": job["content_sha256"],
    }
    assert attached == video
    assert (
        sandbox.backend.snapshot()["products"][shop.items["shoe"]]["attributes"]["video"] == job["video_id"]
    )
    assert run.context["outlet_events"][asset].extra == {"run_id": "run-1", "videos": [video]}
    assert run.context["outlet_events"][alias].added == [
        (
            Asset(
                uri=f"x-lazada://lazada_default/items/{shop.items['shoe']}/video",
                name=f"lazada_item_{shop.items['shoe']}",
            ),
            video,
        )
    ]
    assert isinstance(alias, AssetAlias)
    assert UploadLedger().get(*ACCOUNT, "sku:shoe", job["content_sha256"]).state == ATTACHED


def test_nothing_committed_means_nothing_to_attach(shop, sandbox, catalog_run):
    run = catalog_run()
    run.ti.xcoms[("settle", "return_value")] = []
    with pytest.raises(AirflowSkipException):
        run.attach()


def test_a_batch_holds_max_map_length_videos_however_many_blocks_each_has(
    shop, sandbox, catalog_run, monkeypatch
):
    """``[core] max_map_length`` counts videos, not blocks (blocks are packed into a few chunks): a video
    of several blocks fits a batch of one, and the next row is left for the next batch."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "1")
    shop.video("big.mp4", size=3_500_000, seed=7)
    shop.add("big", "big.mp4")
    shop.add("next")
    manifest = shop.write()
    run = catalog_run()
    chunks = run.plan(manifest, chunks=2)
    report = run.xcom("plan", "report")
    assert report["invalid"] == [] and report["deferred_lines"] == [3] and report["next_after_line"] == 2
    assert [(s["first"], s["last"]) for chunk in chunks for s in chunk["segments"]] == [(0, 1), (2, 3)]
    assert sandbox.backend.request_counts[INIT] == 1

    later = catalog_run("run-2")
    later.plan(manifest, after_line=2)
    assert [job["label"] for job in later.xcom("plan", "jobs")] == ["next"]
    next_batch = CatalogNextBatchOperator(task_id="next_batch", plan_task_id="plan", manifest=manifest)
    with pytest.raises(AirflowSkipException, match="fitted in this run"):
        next_batch.execute(later.context)


def test_the_plan_reads_products_by_the_fifty(shop, sandbox, catalog_run):
    """60 rows named by SellerSku (one unknown): two GetProducts calls for them all, not one per row."""
    for n in range(3):
        shop.video(f"bulk-{n}.mp4", 300_000, seed=n)
    for n in range(59):
        shop.add(f"bulk-{n:02d}", f"bulk-{n % 3}.mp4")
    shop.add("no-such-sku", "bulk-0.mp4", product=False)
    before = sandbox.backend.request_counts["/products/get"]
    run = catalog_run()
    run.plan(shop.write())
    assert sandbox.backend.request_counts["/products/get"] - before == 2
    report = run.ti.xcoms[("plan", "report")]
    assert [(bad["line"], bad["field"]) for bad in report["invalid"]] == [(61, "seller_sku")]
    assert "no product has SellerSku 'no-such-sku'" in report["invalid"][0]["reason"]
    jobs = run.ti.xcoms[("plan", "jobs")]
    assert len(jobs) == 59 and len({job["upload_id"] for job in jobs if job.get("upload_id")}) == 3


def test_a_long_manifest_is_checked_a_window_at_a_time(shop, sandbox, catalog_run, monkeypatch):
    """With batches of 5, a 150-row manifest: the first 100 rows are checked (two GetProducts), the last 50
    are neither read nor looked up on Lazada, and every row after the batch is left for the next one."""
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "5")
    for n in range(5):
        shop.video(f"w-{n}.mp4", 200_000, seed=30 + n)
    for n in range(150):
        shop.add(f"w-{n:03d}", f"w-{n % 5}.mp4")
    run = catalog_run()
    reads = sandbox.backend.request_counts["/products/get"]
    run.plan(shop.write())
    report = run.xcom("plan", "report")
    assert sandbox.backend.request_counts["/products/get"] - reads == 2
    assert report["deferred_lines"] == list(range(7, 152)) and report["next_after_line"] == 6
