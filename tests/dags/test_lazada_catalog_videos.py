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
from media_upload.sandbox.lazada.products import sample_product_payload
from tests.dags.conftest import PNG

REPORT = "catalog.report"


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
    dag_run, summary = run(dagbag, catalog.write(), fail_on_video_errors=False)

    assert dag_run.state == DagRunState.SUCCESS
    videos = attached_videos(sandbox)
    assert all(videos[f"sku-{n}"] for n in range(4))
    assert videos["sku-twin"] == videos["sku-0"]  # same bytes, one upload, one video
    assert videos["sku-rejected"] is None
    assert (
        summary["uploaded"] == 5
        and summary["attached"] == 5
        and summary["failed"] == 1
        and summary["invalid"] == 1
    )
    assert summary["bytes_uploaded"] == sum(row["bytes"] for row in summary["rows"]) > 0
    states = by_state(summary)
    assert states["rejected"] == ["sku-rejected"]
    (invalid,) = [row for row in summary["rows"] if row["state"] == "invalid"]
    assert invalid["line"] == 7 and "gone.mp4: no such file" in invalid["reason"]
    assert len(sandbox.backend.snapshot()["videos"]) == 5

    failed_waits = [ti for ti in dag_run.get_task_instances() if ti.state == TaskInstanceState.FAILED]
    assert [(ti.task_id, ti.rendered_map_index) for ti in failed_waits] == [
        ("catalog.wait_for_audit", "sku-rejected")
    ]
    with open(summary["csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert {row["product"] for row in rows} >= {"sku-0", "sku-twin", "sku-rejected"}


def test_a_second_run_uploads_nothing_and_a_changed_video_goes_up_again(dagbag, sandbox, catalog):
    for number in range(3):
        catalog.add(f"sku-{number}", seed=number)
    manifest = catalog.write()
    first, summary = run(dagbag, manifest)
    assert first.state == DagRunState.SUCCESS and summary["uploaded"] == 3
    before = attached_videos(sandbox)

    again, summary = run(dagbag, manifest)
    assert again.state == DagRunState.SUCCESS
    assert (summary["uploaded"], summary["bytes_uploaded"], summary["skipped"]) == (0, 0, 3)
    assert all("already carries video" in row["reason"] for row in summary["rows"])
    assert sandbox.backend.request_counts["/media/video/block/create"] == 3

    catalog.sample_video(1_500_000, seed=42, name="new.mp4").replace(catalog.folder / "sku-1.mp4")
    _, summary = run(dagbag, manifest)
    assert (summary["uploaded"], summary["skipped"]) == (1, 2)
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
    assert dag_run.get_task_instance("catalog.catalog_verdict").state == TaskInstanceState.FAILED
    assert attached_videos(sandbox)["sku-ok"] and summary["failed"] == 1


def test_a_catalog_larger_than_a_run_continues_in_the_next_batch(dagbag, sandbox, catalog, monkeypatch):
    monkeypatch.setenv("AIRFLOW__CORE__MAX_MAP_LENGTH", "3")
    for number in range(5):
        catalog.add(f"sku-{number}", seed=number, size=800_000)  # one block each
    manifest = catalog.write()
    first, summary = run(dagbag, manifest)
    assert first.state == DagRunState.SUCCESS
    assert (summary["uploaded"], summary["deferred"]) == (3, 2)
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
    _, summary = run(dagbag, **next_conf)
    assert (summary["uploaded"], summary["deferred"]) == (2, 0)
    assert all(attached_videos(sandbox).values())


def test_every_attached_video_is_an_asset_event_for_product_sync(dagbag, sandbox, catalog):
    for number in range(3):
        catalog.add(f"sku-{number}", seed=number)
    catalog.add("sku-twin", "sku-0.mp4")
    dag_run, _ = run(dagbag, catalog.write())
    asset = product_videos_asset()
    with create_session() as session:
        model = session.query(AssetModel).filter(AssetModel.uri == asset.uri).one()
        events = (
            session.query(AssetEvent)
            .filter(AssetEvent.asset_id == model.id, AssetEvent.source_run_id == dag_run.run_id)
            .all()
        )
        extras = sorted((event.extra for event in events), key=lambda extra: extra["seller_sku"])
        queued = (
            session.query(AssetDagRunQueue)
            .filter(AssetDagRunQueue.target_dag_id == "lazada_product_sync")
            .count()
        )
    videos = attached_videos(sandbox)
    assert [(e["seller_sku"], e["video_id"]) for e in extras] == sorted(videos.items())
    assert all(len(e["content_sha256"]) == 64 and e["item_id"].isdigit() for e in extras)
    assert queued == 1  # the scheduler would start lazada_product_sync

    sync = dagbag.dags["lazada_product_sync"].get_task("sync_product_videos")

    class Event:
        def __init__(self, extra):
            self.extra = extra

    synced = sync.python_callable(triggering_asset_events={asset: [Event(extra) for extra in extras]})
    assert sorted(json.dumps(item, sort_keys=True) for item in synced) == sorted(
        json.dumps(e, sort_keys=True) for e in extras
    )
