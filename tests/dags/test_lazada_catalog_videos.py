"""lazada_catalog_videos end to end with ``dag.test()``: isolation, idempotency, batching, Asset chaining."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from media_upload.catalog.operators import product_videos_asset
from media_upload.hooks.lazada import LazadaHook
from media_upload.ledger import REJECTED, UploadLedger
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.dags.conftest import PNG

REPORT = "catalog.report"
INIT = "/media/video/block/create"


class Catalog:
    """A manifest of generated videos, with a product for each row in the emulator."""

    def __init__(self, folder: Path, sample_video) -> None:
        self.folder = folder
        self.sample_video = sample_video
        self.hook = LazadaHook()
        self.cover = self.hook.upload_image(PNG, "cover.png")
        self.rows: list[dict[str, str]] = []

    def add(
        self,
        sku: str,
        video: str | None = None,
        *,
        seed: int = 0,
        size: int = 1_500_000,
        title: str = "",
        **fields,
    ) -> None:
        if video is None:
            video = f"{sku}.mp4"
            self.sample_video(size, seed=seed, name=video).rename(self.folder / video)
        if not fields.pop("no_product", False):
            self.hook.create_product(sample_product_payload(self.cover, sku, name=sku))
        self.rows.append(
            {
                "seller_sku": sku,
                "video": video,
                "title": title or f"Video of {sku}",
                "cover_url": self.cover,
                **fields,
            }
        )

    def write(self) -> str:
        path = self.folder / "catalog.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(
                handle, fieldnames=["seller_sku", "video", "title", "cover_url", "block_size"]
            )
            writer.writeheader()
            writer.writerows(self.rows)
        return str(path)


@pytest.fixture
def sandbox(make_lazada_sandbox, lazada_connection, ledger_connection, airflow_db):
    sandbox = make_lazada_sandbox(audit_seconds=1)
    lazada_connection(sandbox)
    ledger_connection("sqlite")
    return sandbox


@pytest.fixture
def catalog(sandbox, tmp_path, sample_video) -> Catalog:
    folder = tmp_path / "catalog"
    folder.mkdir()
    return Catalog(folder, sample_video)


def run(dagbag, manifest: str, **conf):
    """One dag.test() run. Every param is given: a test run leaves its conf in the DAG object's params."""
    full = {
        "manifest": manifest,
        "block_size": 1_000_000,
        "after_line": 0,
        "fail_on_video_errors": True,
        "upload_again_needs_attention": False,
        **conf,
    }
    dag_run = dagbag.dags["lazada_catalog_videos"].test(run_conf=full)
    summary = dag_run.get_task_instance(REPORT).xcom_pull(task_ids=REPORT)
    return dag_run, summary


def attached_videos(sandbox) -> dict[str, str]:
    products = sandbox.backend.snapshot()["products"].values()
    return {p["skus"][0]["SellerSku"]: p["attributes"].get("video") for p in products}


def by_state(summary) -> dict[str, list[str]]:
    states: dict[str, list[str]] = {}
    for row in summary["rows"]:
        states.setdefault(row["state"], []).append(row["product"])
    return states


def test_good_rows_attach_bad_rows_are_reported_and_one_failure_stays_alone(dagbag, sandbox, catalog):
    for number in range(4):
        catalog.add(f"sku-{number}", seed=number)
    catalog.add("sku-rejected", seed=9, title="Blurry [AUDIT_FAILED]")
    catalog.add("sku-missing", "gone.mp4", no_product=True)
    catalog.add("sku-twin", "sku-0.mp4")
    catalog.add("sku-ghost", seed=11, no_product=True)  # a video, but no such product on Lazada
    dag_run, summary = run(dagbag, catalog.write(), fail_on_video_errors=False)

    assert dag_run.state == DagRunState.SUCCESS
    # A rejected video fails no task: the attach step records it and goes on with the others.
    assert [ti.task_id for ti in dag_run.get_task_instances() if ti.state == TaskInstanceState.FAILED] == []
    videos = attached_videos(sandbox)
    assert all(videos[f"sku-{n}"] for n in range(4))
    assert videos["sku-twin"] == videos["sku-0"]  # same bytes, one upload, one video
    assert videos["sku-rejected"] is None
    assert (
        summary["uploaded"] == 5
        and summary["attached"] == 5
        and summary["failed"] == 1
        and summary["invalid"] == 2
    )
    assert summary["bytes_uploaded"] == sum(row["bytes"] for row in summary["rows"]) == 5 * 1_500_000
    states = by_state(summary)
    assert states["rejected"] == ["sku-rejected"]
    (rejected,) = [row for row in summary["rows"] if row["state"] == "rejected"]
    assert "AUDIT_FAILED" in rejected["reason"]
    invalid = {row["line"]: row["reason"] for row in summary["rows"] if row["state"] == "invalid"}
    assert set(invalid) == {7, 9}
    assert "gone.mp4: no such file" in invalid[7]
    assert invalid[9].startswith("seller_sku: sku-ghost:") and "SKU_NOT_FOUND" in invalid[9]

    # Every row was checked before the first upload: nothing went up for the unknown product.
    assert sandbox.backend.request_counts[INIT] == 5
    init_files = [e["params"].get("fileName") for e in sandbox.backend.request_log if e["api"] == INIT]
    assert "sku-ghost.mp4" not in init_files
    assert len(sandbox.backend.snapshot()["videos"]) == 5
    ledger = UploadLedger()
    (entry,) = [e for e in ledger.for_run(dag_run.run_id) if e.product == "sku:sku-rejected"]
    assert entry.state == REJECTED

    with open(summary["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert {row["product"] for row in rows} >= {"sku-0", "sku-twin", "sku-rejected"}
    assert {row["state"] for row in rows} == {"attached", "rejected", "invalid"}


def test_a_second_run_uploads_nothing_and_a_changed_video_goes_up_again(dagbag, sandbox, catalog):
    for number in range(3):
        catalog.add(f"sku-{number}", seed=number)
    manifest = catalog.write()
    first, summary = run(dagbag, manifest)
    assert first.state == DagRunState.SUCCESS and summary["uploaded"] == 3
    before = attached_videos(sandbox)
    blocks = sandbox.backend.request_counts["/media/video/block/upload"]

    again, summary = run(dagbag, manifest)
    assert again.state == DagRunState.SUCCESS
    assert (summary["uploaded"], summary["bytes_uploaded"], summary["skipped"]) == (0, 0, 3)
    assert all("already carries video" in row["reason"] for row in summary["rows"])
    assert sandbox.backend.request_counts[INIT] == 3
    assert sandbox.backend.request_counts["/media/video/block/upload"] == blocks
    assert again.get_task_instance("catalog.upload_chunk").state == TaskInstanceState.SKIPPED  # no chunk

    catalog.sample_video(1_500_000, seed=42, name="new.mp4").replace(catalog.folder / "sku-1.mp4")
    _, summary = run(dagbag, manifest)
    assert (summary["uploaded"], summary["skipped"]) == (1, 2)
    assert sandbox.backend.request_counts[INIT] == 4
    after = attached_videos(sandbox)
    assert after["sku-1"] != before["sku-1"] and after["sku-0"] == before["sku-0"]


def test_the_ledger_on_postgresql(dagbag, sandbox, catalog, ledger_connection):
    ledger_connection("postgres")
    catalog.add("sku-pg", seed=5)
    manifest = catalog.write()
    assert run(dagbag, manifest)[1]["uploaded"] == 1
    assert run(dagbag, manifest)[1]["uploaded"] == 0
    import psycopg2

    with psycopg2.connect("host=127.0.0.1 dbname=test user=postgres") as db, db.cursor() as cursor:
        cursor.execute("SELECT product, state FROM media_upload_ledger")
        assert cursor.fetchall() == [("sku:sku-pg", "attached")]


def test_a_failed_video_fails_the_run_but_not_the_others(dagbag, sandbox, catalog):
    catalog.add("sku-ok", seed=1)
    catalog.add("sku-bad", seed=2, title="Bad [TRANSCODE_FAILED]")
    dag_run, summary = run(dagbag, catalog.write())
    assert dag_run.state == DagRunState.FAILED
    failed = [ti.task_id for ti in dag_run.get_task_instances() if ti.state == TaskInstanceState.FAILED]
    assert failed == ["catalog.catalog_verdict"]  # only the verdict: every step did its work
    assert attached_videos(sandbox)["sku-ok"] and summary["failed"] == 1
    assert by_state(summary)["rejected"] == ["sku-bad"]


def test_a_catalog_larger_than_a_run_continues_in_the_next_batch(dagbag, sandbox, catalog, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    for number in range(5):
        catalog.add(f"sku-{number}", seed=number, size=800_000)  # one block each
    manifest = catalog.write()
    first, summary = run(dagbag, manifest)
    assert first.state == DagRunState.SUCCESS
    assert (summary["uploaded"], summary["deferred"]) == (3, 2)
    assert first.get_task_instance("catalog.next_batch").state == TaskInstanceState.SUCCESS
    with create_session() as session:
        queued = (
            session.query(DagRun)
            .filter(
                DagRun.dag_id == "lazada_catalog_videos",
                DagRun.run_id != first.run_id,
                DagRun.state == DagRunState.QUEUED,
            )
            .all()
        )
        assert [run.conf for run in queued] == [
            {"manifest": manifest, "block_size": 1_000_000, "after_line": 4}
        ]
        next_conf = dict(queued[0].conf)
        for stale in queued:
            session.delete(stale)
    second, summary = run(dagbag, **next_conf)
    assert (summary["uploaded"], summary["deferred"]) == (2, 0)
    assert second.get_task_instance("catalog.next_batch").state == TaskInstanceState.SKIPPED
    assert all(attached_videos(sandbox).values())
    assert sandbox.backend.request_counts[INIT] == 5


def test_one_asset_event_per_run_lists_every_attached_video(dagbag, sandbox, catalog):
    """lazada_product_sync runs once per catalog run, with every video of the run in one event; the alias
    carries one event per video for DAGs that want them."""
    for number in range(3):
        catalog.add(f"sku-{number}", seed=number)
    catalog.add("sku-twin", "sku-0.mp4")
    catalog.add("sku-rejected", seed=9, title="Blurry [AUDIT_FAILED]")
    asset = product_videos_asset()
    with create_session() as session:  # the queue holds one row per (asset, DAG): start from none
        session.query(AssetDagRunQueue).filter(
            AssetDagRunQueue.target_dag_id == "lazada_product_sync"
        ).delete()
    dag_run, _ = run(dagbag, catalog.write(), fail_on_video_errors=False)
    assert dag_run.state == DagRunState.SUCCESS
    with create_session() as session:
        model = session.query(AssetModel).filter(AssetModel.uri == asset.uri).one()
        events = (
            session.query(AssetEvent)
            .filter(AssetEvent.asset_id == model.id, AssetEvent.source_run_id == dag_run.run_id)
            .all()
        )
        per_video = (
            session.query(AssetModel.uri, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .filter(
                AssetEvent.source_run_id == dag_run.run_id,
                AssetModel.uri.like("x-lazada://lazada_default/items/%"),
            )
            .all()
        )
        queued = (
            session.query(AssetDagRunQueue)
            .filter(
                AssetDagRunQueue.target_dag_id == "lazada_product_sync",
                AssetDagRunQueue.asset_id == model.id,
            )
            .count()
        )
    (event,) = events
    assert event.extra["run_id"] == dag_run.run_id
    listed = sorted(event.extra["videos"], key=lambda video: video["seller_sku"])
    videos = {sku: video for sku, video in attached_videos(sandbox).items() if video}
    assert [(v["seller_sku"], v["video_id"]) for v in listed] == sorted(videos.items())
    assert "sku-rejected" not in videos
    assert all(len(v["content_sha256"]) == 64 and v["item_id"].isdigit() for v in listed)
    assert queued == 1  # the scheduler would start lazada_product_sync once

    assert sorted(extra["seller_sku"] for _, extra in per_video) == [v["seller_sku"] for v in listed]
    assert all(uri == f"x-lazada://lazada_default/items/{extra['item_id']}/video" for uri, extra in per_video)

    sync = dagbag.dags["lazada_product_sync"].get_task("sync_product_videos")

    class Event:
        def __init__(self, extra):
            self.extra = extra

    synced = sync.python_callable(triggering_asset_events={asset: [Event(e.extra) for e in events]})
    assert sorted(json.dumps(item, sort_keys=True) for item in synced) == sorted(
        json.dumps(video, sort_keys=True) for video in listed
    )
