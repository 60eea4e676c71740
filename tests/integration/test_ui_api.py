"""The "Media uploads" view's JSON API: its own FastAPI app (and mounted in Airflow's api-server), a ledger
with rows (SQLite; PostgreSQL too where the SQL differs), tokens signed by Airflow's auth manager. Auth,
content, filters, pagination, 10,000 rows, and no credential in any answer."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from media_upload.ledger import (
    ATTACHED,
    AUDITED,
    BLOCKS_TABLE,
    COLUMNS,
    COMMITTED,
    FAILED,
    NEEDS_ATTENTION,
    PLANNED,
    REJECTED,
    TABLE,
    UPLOADING,
    LedgerEntry,
    UploadLedger,
    _values,
)

# DAGs known to the metadata database (not the project's, whose rows the DAG tests own).
CATALOG, VOD, SINGLE, HIDDEN = "ui_catalog_videos", "ui_vod_upload", "ui_product_video", "ui_other"
DAGS = (CATALOG, VOD, SINGLE, HIDDEN)
RUN = "manual__2026-12-01T10:00:00+00:00"
MB = 1_000_000


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


NOW = datetime.now(UTC)


def entry(
    product: str, state: str, *, dag_id: str = CATALOG, run_id: str = RUN, **fields: Any
) -> LedgerEntry:
    platform = fields.pop("platform", "lazada")
    sha = fields.pop("sha", (product.encode().hex() * 64)[:64])
    defaults: dict[str, Any] = {
        "file_size": 3 * MB,
        "block_count": 3,
        "block_size": MB,
        "label": product,
        "title": f"Video of {product}",
        "source": f"/data/videos/{product}.mp4",
    }
    return LedgerEntry(
        platform, "shop", product, sha, state, dag_id=dag_id, run_id=run_id, **{**defaults, **fields}
    )


# ------------------------------------------------------------------------------------- Airflow side


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """The test AIRFLOW_HOME's metadata database, migrated, with the DAGs whose rows the tests read."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    from airflow.models.dag import DagModel
    from airflow.models.dagbundle import DagBundleModel
    from airflow.utils.session import create_session

    with create_session() as session:
        session.merge(DagBundleModel(name="dags-folder"))
        session.flush()
        for dag_id in DAGS:
            session.merge(DagModel(dag_id=dag_id, bundle_name="dags-folder", fileloc=f"/dags/{dag_id}.py"))


class Users:
    """Tokens the api-server's auth manager signs: ``admin``; ``viewer``; ``seller`` (reads only the
    catalog DAG); ``nobody`` (no role, reads nothing)."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager

    def token(self, name: str) -> str:
        from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

        role = {"admin": "admin", "viewer": "viewer", "seller": "viewer", "nobody": ""}[name]
        return self.manager.generate_jwt(SimpleAuthManagerUser(username=name, role=role))


@pytest.fixture(scope="module")
def users(airflow_db: None) -> Iterator[Users]:
    from airflow.api_fastapi.app import _AuthManagerState
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    class OneDagForSeller(SimpleAuthManager):
        """Airflow's default auth manager, except that user ``seller`` may read only the catalog DAG."""

        def is_authorized_dag(self, *, method, user, access_entity=None, details=None):
            if user.username == "seller" and details is not None and details.id not in (None, CATALOG):
                return False
            return super().is_authorized_dag(
                method=method, user=user, access_entity=access_entity, details=details
            )

    before = _AuthManagerState.instance
    manager = OneDagForSeller()
    manager.init()
    _AuthManagerState.instance = manager
    yield Users(manager)
    _AuthManagerState.instance = before


class Tasks:
    """Airflow's task instances as the app sees them: what the fake says, and which runs were asked."""

    def __init__(self) -> None:
        self.known: dict[tuple[str, str], Any] = {}
        self.asked: list[list[tuple[str, str]]] = []

    def __call__(self, runs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Any]:
        self.asked.append(list(runs))
        return {run: self.known[run] for run in runs if run in self.known}


@pytest.fixture
def tasks() -> Tasks:
    return Tasks()


@pytest.fixture
def ledger(request, ledger_connection) -> UploadLedger:
    """The test's SQLite ledger, or PostgreSQL's for tests parametrized ``indirect`` with "postgres"."""
    ledger_connection(getattr(request, "param", "sqlite"))
    return UploadLedger()


both_databases = pytest.mark.parametrize("ledger", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def client(users: Users, ledger: UploadLedger, tasks: Tasks) -> Callable[..., TestClient]:
    """``client("viewer")``: the app with that user's session cookie (``client(None)``: anonymous)."""
    from media_upload.ui.app import create_app, run_tasks

    app = create_app()
    app.state.ledger = ledger
    app.dependency_overrides[run_tasks] = lambda: tasks

    def make(user: str | None = "viewer") -> TestClient:
        test_client = TestClient(app)
        if user:
            test_client.cookies.set("_token", users.token(user))
        return test_client

    return make


def insert(ledger: UploadLedger, entries: Sequence[LedgerEntry]) -> None:
    """Rows as the steps leave them, many in one transaction (``record`` stamps ``updated_at`` itself)."""
    p = ledger.placeholder
    sql = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join([p] * len(COLUMNS))})"
    rows = []
    for n, item in enumerate(entries):
        at = item.updated_at or stamp(NOW - timedelta(seconds=len(entries) - n))
        values = _values(replace(item, updated_at=at, created_at=item.created_at or at))
        rows.append((sql, [values[name] for name in COLUMNS]))
    ledger._execute(rows)


def acked(
    ledger: UploadLedger, platform: str, upload_id: str, blocks: Sequence[tuple[int, int, datetime]]
) -> None:
    """Blocks the platform acknowledged: ``(part_number, bytes, acked_at)``."""
    p = ledger.placeholder
    ledger._execute(
        [
            (
                f"INSERT INTO {BLOCKS_TABLE} (platform, upload_id, part_number, tag, bytes, acked_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                (platform, upload_id, number, f"tag-{number}", size, stamp(at)),
            )
            for number, size, at in blocks
        ]
    )


def get(client: TestClient, **params: Any) -> dict[str, Any]:
    response = client.get("/api/uploads", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def by_product(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["product"]: row for row in body["rows"]}


# ------------------------------------------------------------------------------------------------ auth


def test_anonymous_and_unauthorised_requests_are_refused(client, ledger):
    """Plugin apps are not protected by the api-server: the view must refuse by itself, page and JSON."""
    insert(ledger, [entry("tee-001", ATTACHED, video_id="30001")])
    for path in ("/", "/api/uploads"):
        assert client(None).get(path).status_code == 401
        forged = client(None)
        forged.cookies.set("_token", "not-a-token")
        assert forged.get(path).status_code == 403
        assert client("nobody").get(path).status_code == 403
        assert client("viewer").get(path).status_code == 200
    assert "30001" not in client(None).get("/api/uploads").text


def test_a_bearer_token_is_accepted_like_the_session_cookie(client, users, ledger):
    insert(ledger, [entry("tee-001", ATTACHED, video_id="30001")])
    response = client(None).get("/api/uploads", headers={"Authorization": f"Bearer {users.token('viewer')}"})
    assert response.status_code == 200 and response.json()["total"] == 1


def test_rows_of_dags_the_user_may_not_read_are_not_shown(client, ledger):
    """The auth manager decides per DAG: the seller reads the catalog's rows only, and may not ask for
    another DAG's run at all."""
    insert(
        ledger,
        [
            entry("tee-001", ATTACHED, video_id="1"),
            entry("vod-001", COMMITTED, dag_id=VOD, platform="huawei_vod", video_id="asset-1"),
            entry("secret-001", FAILED, dag_id=HIDDEN, reason="boom"),
        ],
    )
    assert {row["product"] for row in get(client("admin"))["rows"]} == {"tee-001", "vod-001", "secret-001"}
    seen = get(client("seller"))
    assert [row["product"] for row in seen["rows"]] == ["tee-001"] and seen["total"] == 1
    assert {run["dag_id"] for run in seen["run_choices"]} == {CATALOG}
    assert client("seller").get("/api/uploads", params={"dag_id": VOD, "run_id": RUN}).status_code == 403
    assert client("seller").get("/", params={"dag_id": VOD, "run_id": RUN}).status_code == 403


# ------------------------------------------------------------------------------------------- content


@both_databases
def test_each_row_shows_progress_speed_state_and_what_happened(client, ledger):
    """Blocks done come from the acks (a committed row is complete), MB/s from the acks of the last 10 s,
    the audit wait from ``committed_at``; ``auditing`` is a Lazada video whose audit has not ended."""
    now = datetime.now(UTC)
    insert(
        ledger,
        [
            entry("tee-001", UPLOADING, upload_id="U1", file_size=16 * MB, block_count=16,
                  upload_started_at=stamp(now - timedelta(minutes=5))),
            entry("tee-002", COMMITTED, upload_id="U2", video_id="30002",
                  committed_at=stamp(now - timedelta(seconds=125))),
            entry("vod-001", COMMITTED, dag_id=VOD, platform="huawei_vod", upload_id="O1", video_id="asset-1",
                  committed_at=stamp(now - timedelta(seconds=40))),
            entry("tee-003", ATTACHED, video_id="30003"),
            entry("tee-004", FAILED, upload_id="U4", reason="the file changed since it was planned"),
            entry("tee-005", NEEDS_ATTENTION, reason="the commit's answer was lost; check Seller Center"),
            entry("tee-006", PLANNED),
            entry("tee-007", REJECTED, upload_id="U7", video_id="30007", committed_at=stamp(now),
                  reason="Lazada's audit ended in AUDIT_FAILED"),
            entry("vod-002", FAILED, platform="huawei_vod", upload_id="O2", video_id="asset-2", file_size=4 * MB,
                  block_count=4, reason="OBS forgot the upload"),
        ],
    )  # fmt: skip
    old, recent = now - timedelta(minutes=2), now - timedelta(seconds=3)
    acked(ledger, "lazada", "U1", [(n, MB, old) for n in range(1, 5)] + [(n, MB, recent) for n in (5, 6)])
    acked(ledger, "lazada", "U4", [(1, MB, old)])
    acked(ledger, "huawei_vod", "O2", [(1, MB, old), (2, MB, old)])
    rows = by_product(get(client()))

    uploading = rows["tee-001"]
    assert uploading["state"] == UPLOADING
    assert uploading["blocks"] == {"done": 6, "total": 16}
    assert uploading["bytes_done"] == 6 * MB and uploading["progress"] == 37.5
    assert uploading["rate"] == pytest.approx(2 * MB / 10)
    auditing = rows["tee-002"]
    assert (auditing["state"], auditing["ledger_state"], auditing["video_id"]) == (
        "auditing",
        COMMITTED,
        "30002",
    )
    assert auditing["blocks"] == {"done": 3, "total": 3} and auditing["progress"] == 100.0
    assert 125 <= auditing["waiting"] < 125 + 60  # from committed_at to the server's now
    assert rows["vod-001"]["state"] == "auditing"  # VOD's verdict is recorded too: until then it is awaited
    assert rows["tee-003"]["state"] == ATTACHED and rows["tee-003"]["progress"] == 100.0
    assert rows["tee-004"]["state"] == FAILED
    assert rows["tee-004"]["reason"] == "the file changed since it was planned"
    assert rows["tee-004"]["blocks"] == {"done": 1, "total": 3} and rows["tee-004"]["rate"] == 0
    assert rows["tee-005"]["state"] == NEEDS_ATTENTION and "Seller Center" in rows["tee-005"]["reason"]
    assert rows["tee-006"]["blocks"] == {"done": 0, "total": 3} and rows["tee-006"]["progress"] == 0
    # Its commit was sent, so every block went up; VOD's asset id exists before any part is sent.
    assert rows["tee-007"]["blocks"] == {"done": 3, "total": 3} and rows["tee-007"]["progress"] == 100.0
    assert rows["vod-002"]["blocks"] == {"done": 2, "total": 4} and rows["vod-002"]["progress"] == 50.0


@both_databases
def test_a_run_summary_counts_every_row_of_the_run(client, ledger):
    """Done, auditing, failed (failed, rejected, needs attention) and still going, bytes and speed of the
    whole run, even when only part of it is on the page."""
    now = datetime.now(UTC)
    start = now - timedelta(seconds=30)
    insert(
        ledger,
        [
            entry("tee-001", ATTACHED, video_id="1", upload_started_at=stamp(start),
                  committed_at=stamp(start + timedelta(seconds=6))),
            entry("tee-002", AUDITED, video_id="2", upload_started_at=stamp(start),
                  committed_at=stamp(start + timedelta(seconds=10))),
            entry("tee-003", FAILED, reason="gone"),
            entry("tee-004", UPLOADING, upload_id="U4", upload_started_at=stamp(start)),
            entry("tee-005", COMMITTED, video_id="5"),
            entry("tee-006", REJECTED, video_id="6", committed_at=stamp(start + timedelta(seconds=8)),
                  reason="Lazada's audit ended in AUDIT_FAILED"),
        ],
    )  # fmt: skip
    acked(ledger, "lazada", "U4", [(1, MB, now - timedelta(seconds=2))])
    body = get(client(), limit=1)
    assert len(body["rows"]) == 1
    (run,) = body["runs"]
    assert (run["dag_id"], run["run_id"], run["uploads"]) == (CATALOG, RUN, 6)
    assert (run["done"], run["auditing"], run["failed"], run["active"]) == (2, 1, 2, 1)
    assert run["bytes"] == 18 * MB and run["bytes_done"] == 13 * MB  # a rejected video went up too
    # The bytes of the videos made, from the first upload's start to the last commit.
    assert run["average_rate"] == pytest.approx(12 * MB / 10)
    assert run["rate"] == pytest.approx(MB / 10)


def test_links_lead_to_the_run_and_its_tasks_in_airflow(client, ledger, tasks):
    """Chunk tasks come from Airflow's task instances of the run (done of total); a row shows them when it
    is its run's only upload, the run summary always."""
    from media_upload.ui.app import RunTasks
    from media_upload.ui.queries import Progress

    single = "manual__2026-12-01T11:00:00+00:00"
    insert(
        ledger,
        [
            entry("solo", UPLOADING, dag_id=SINGLE, run_id=single, upload_id="S1"),
            entry("tee-001", ATTACHED, video_id="1"),
            entry("tee-002", FAILED, reason="gone"),
        ],
    )
    tasks.known[(SINGLE, single)] = RunTasks("lazada_video.upload_chunk", Progress(1, 2))
    tasks.known[(CATALOG, RUN)] = RunTasks(
        "catalog.upload_chunk", Progress(4, 4), ("catalog.catalog_verdict",)
    )
    body = get(client("admin"))
    rows = by_product(body)
    solo_run = f"/dags/{SINGLE}/runs/{quote(single, safe='')}"
    assert rows["solo"]["links"] == {
        "run": solo_run,
        "tasks": [{"task_id": "lazada_video.upload_chunk", "kind": "chunks",
                   "href": f"{solo_run}/tasks/lazada_video.upload_chunk"}],
    }  # fmt: skip
    assert rows["solo"]["chunks"] == {"done": 1, "total": 2}
    assert rows["tee-001"]["chunks"] is None  # the catalog's chunks carry many videos
    catalog_run = f"/dags/{CATALOG}/runs/{quote(RUN, safe='')}"
    assert [t["href"] for t in rows["tee-002"]["links"]["tasks"]] == [
        f"{catalog_run}/tasks/catalog.upload_chunk",
        f"{catalog_run}/tasks/catalog.catalog_verdict",
    ]
    assert [t["kind"] for t in rows["tee-001"]["links"]["tasks"]] == [
        "chunks"
    ]  # what failed is not its doing
    summaries = {run["run_id"]: run for run in body["runs"]}
    assert summaries[RUN]["chunks"] == {"done": 4, "total": 4}
    assert summaries[RUN]["links"]["run"] == catalog_run
    assert sorted(map(tuple, tasks.asked[-1])) == sorted([(SINGLE, single), (CATALOG, RUN)])


# ------------------------------------------------------------------------------------------- filters


@both_databases
def test_filters_by_state_platform_run_and_sku(client, ledger):
    other = "scheduled__2026-11-30T00:00:00+00:00"
    insert(
        ledger,
        [
            entry("tee_001", ATTACHED, video_id="1"),
            entry("tee-002", COMMITTED, video_id="2"),
            entry("TEE-XL-3", FAILED, run_id=other, reason="gone"),
            entry("vod-001", COMMITTED, dag_id=VOD, platform="huawei_vod", video_id="asset-1"),
            entry("item:777", UPLOADING, run_id=other, label="Mug 001"),
        ],
    )
    c = client()

    def products(**params: Any) -> list[str]:
        body = get(c, **params)
        assert body["total"] == len(body["rows"])
        return sorted(row["product"] for row in body["rows"])

    assert products(state="auditing") == ["tee-002", "vod-001"]
    assert products(state="committed") == []  # every platform records the end of its audit
    assert products(state=["failed", "uploading"]) == ["TEE-XL-3", "item:777"]
    assert products(platform="huawei_vod") == ["vod-001"]
    assert products(dag_id=CATALOG, run_id=other) == ["TEE-XL-3", "item:777"]
    assert products(run_id=RUN) == ["tee-002", "tee_001", "vod-001"]
    assert products(sku="tee") == ["TEE-XL-3", "tee-002", "tee_001"]  # any case, anywhere in the SKU
    assert products(sku="tee_") == ["tee_001"]  # "_" is a character, not a wildcard
    assert products(sku="mug 0") == ["item:777"]  # the label (SKU or name) or the product id
    assert products(sku="777") == ["item:777"]
    assert products(state="failed", platform="lazada", sku="xl", dag_id=CATALOG, run_id=other) == ["TEE-XL-3"]
    assert products(state="attached", platform="huawei_vod") == []


@both_databases
def test_pages_cover_every_row_once_newest_change_first(client, ledger):
    insert(ledger, [entry(f"tee-{n:03d}", ATTACHED, video_id=str(n)) for n in range(120)])
    c = client()
    seen: list[str] = []
    for offset in (0, 50, 100):
        body = get(c, limit=50, offset=offset)
        assert (body["total"], body["limit"], body["offset"]) == (120, 50, offset)
        seen += [row["product"] for row in body["rows"]]
    assert seen == [f"tee-{n:03d}" for n in reversed(range(120))]
    assert get(c, limit=50, offset=150)["rows"] == []
    assert c.get("/api/uploads", params={"limit": 501}).status_code == 422
    assert c.get("/api/uploads", params={"offset": -1}).status_code == 422


# -------------------------------------------------------------------------------------------- scale


class Statements:
    """Every SQL statement the app sends to the SQLite ledger."""

    def __init__(self, ledger: UploadLedger) -> None:
        self.sql: list[str] = []
        connect = ledger.database.connect

        def traced() -> sqlite3.Connection:
            conn = connect()
            conn.set_trace_callback(self.sql.append)
            return conn

        ledger.database.connect = traced
        ledger.close()


def test_ten_thousand_rows_cost_one_page(client, ledger, tasks):
    """10,000 uploads in 100 runs: a page reads 50 rows with six statements (count, page, the page's
    blocks, its runs' totals and acks, the run filter's choices), each on an index; deep pages and
    filters return exactly what was asked."""
    runs = [f"scheduled__2026-11-{1 + n // 4:02d}T{n % 4:02d}:00:00+00:00" for n in range(100)]
    states = (ATTACHED, ATTACHED, ATTACHED, COMMITTED, UPLOADING, FAILED, PLANNED, AUDITED)
    entries = [
        entry(f"sku-{n:05d}", states[n % len(states)], run_id=runs[n % 100], upload_id=f"U{n}",
              video_id=str(n) if states[n % len(states)] in (ATTACHED, AUDITED, COMMITTED) else None)
        for n in range(10_000)
    ]  # fmt: skip
    insert(ledger, entries)
    now = datetime.now(UTC)
    acked(ledger, "lazada", "U9996", [(1, MB, now), (2, MB, now)])  # the newest uploading row
    for n in range(4, 9_996, 8):  # every other uploading row has a block
        acked(ledger, "lazada", f"U{n}", [(1, MB, now - timedelta(minutes=5))])
    traced = Statements(ledger)

    body = get(client(), limit=50)
    assert body["total"] == 10_000 and len(body["rows"]) == 50
    assert [row["product"] for row in body["rows"]][:2] == ["sku-09999", "sku-09998"]
    assert body["rows"][3]["product"] == "sku-09996" and body["rows"][3]["blocks"]["done"] == 2
    assert len(body["runs"]) == 50 and len(tasks.asked[-1]) == 50  # the runs on the page, no more
    assert sum(run["uploads"] for run in body["runs"]) == 50 * 100  # each run's totals, all of its rows
    assert len(body["run_choices"]) == 50
    statements = [sql for sql in traced.sql if sql.lstrip().upper().startswith("SELECT")]
    assert len(statements) == 6, statements
    plans = {sql: explain(ledger, sql, ()) for sql in statements}
    for sql, plan in plans.items():
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)
    (page,) = [plan for sql, plan in plans.items() if "OFFSET" in sql]
    # The page walks updated_at's index and stops once it has 50 rows (only ties are sorted).
    assert page.startswith("SCAN media_upload_ledger USING INDEX media_upload_ledger_updated"), page
    assert "TEMP B-TREE FOR ORDER BY" not in page, page
    (blocks,) = [plan for sql, plan in plans.items() if f"FROM {BLOCKS_TABLE} WHERE" in sql]
    assert "SEARCH media_upload_blocks USING INDEX sqlite_autoindex_media_upload_blocks_1" in blocks, blocks

    c = client()
    last = get(c, limit=500, offset=9_800)
    assert len(last["rows"]) == 200 and last["rows"][-1]["product"] == "sku-00000"
    failed = get(c, state="failed", limit=500)
    assert failed["total"] == 1250 and len(failed["rows"]) == 500
    assert {row["state"] for row in failed["rows"]} == {FAILED}
    one_run = get(c, dag_id=CATALOG, run_id=runs[7], limit=500)
    assert one_run["total"] == 100 and len(one_run["rows"]) == 100 and len(one_run["runs"]) == 1


def test_a_run_s_page_reads_the_run_index(ledger):
    """The run tab (dag_id and run_id given) is a search on the (dag_id, run_id) index."""
    from media_upload.ui.queries import Filters, page_query

    sql, params = page_query(Filters(dag_id=CATALOG, run_id=RUN, dag_ids=frozenset(DAGS)), "?", 50, 0)
    plan = explain(ledger, sql, params)
    assert "SEARCH media_upload_ledger USING INDEX media_upload_ledger_run (dag_id=? AND run_id=?)" in plan, (
        plan
    )


def explain(ledger: UploadLedger, sql: str, params: Sequence[Any]) -> str:
    rows = ledger._select(f"EXPLAIN QUERY PLAN {sql}", params)
    return " | ".join(str(row[-1]) for row in rows)


# ------------------------------------------------------------------------------------------- secrets


@both_databases
def test_no_token_or_signed_url_reaches_the_page_or_its_api(client, users, ledger):
    """The ledger holds no secret, but if a reason, a source, a title or the details ever carried one
    (a platform's error echoing a URL, a presigned source), the view masks it."""
    token, refresh = "50000600a12bcXyZAccessTok", "50001601b77RefreshTok"
    signature, auth_key = "c2lnbmF0dXJlLXZhbHVl9f8e", "1765000000-0-0-0d9f1b2c3a4e5f60"
    insert(
        ledger,
        [
            entry("tee-001", FAILED,
                  reason=f"GET /media/video/get?access_token={token}&video_id=1 answered IllegalAccessToken",
                  source=f"https://bucket.s3.amazonaws.com/v.mp4?X-Amz-Signature={signature}&X-Amz-Expires=600",
                  title=f"refresh_token: {refresh}",
                  details={"refresh_token": refresh, "video_url": f"https://v.example/v.mp4?auth_key={auth_key}",
                           "nested": [{"sign": "ABCDEF0123456789"}]}),
        ],
    )  # fmt: skip
    session = users.token("viewer")
    c = client("viewer")
    text = c.get("/api/uploads").text
    page = c.get("/").text
    for secret in (token, refresh, signature, auth_key, "ABCDEF0123456789", session):
        assert secret not in text and secret not in page
    (row,) = json.loads(text)["rows"]
    assert "access_token=***" in row["reason"] and "X-Amz-Signature=***" in row["source"]
    assert row["details"]["refresh_token"] == "***" and row["details"]["nested"] == [{"sign": "***"}]
    assert row["details"]["video_url"] == "https://v.example/v.mp4?auth_key=***"


# -------------------------------------------------------------------------------- the Airflow plugin


def test_the_plugin_registers_the_app_and_both_views():
    """A FastAPI app outside the api-server's reserved prefixes, a page in the nav and a tab on each run;
    built only when read, so tasks that load every plugin never import FastAPI for it."""
    from importlib.metadata import entry_points

    from media_upload.get_provider_info import get_provider_info
    from media_upload.plugin import MediaUploadPlugin

    (app,) = MediaUploadPlugin.fastapi_apps
    assert app["url_prefix"] == "/media-uploads"
    assert not any(
        app["url_prefix"].startswith(p) for p in ("/api/v2", "/ui", "/execution", "/auth", "/pluginsv2")
    )
    nav, run_tab = MediaUploadPlugin.external_views
    assert (nav["destination"], nav["href"], nav["url_route"]) == ("nav", "/media-uploads/", "media-uploads")
    assert run_tab["destination"] == "dag_run"
    assert run_tab["href"] == "/media-uploads/?dag_id={DAG_ID}&run_id={RUN_ID}"
    assert {(e.name, e.value) for e in entry_points(group="airflow.plugins")} >= {
        ("media_upload", "media_upload.plugin:MediaUploadPlugin")
    }
    assert get_provider_info()["plugins"] == [
        {"name": "media_upload", "plugin-class": "media_upload.plugin.MediaUploadPlugin"}
    ]
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, media_upload.plugin as p; "
         "print(p.MediaUploadPlugin.name, 'fastapi' in sys.modules)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert loaded.stdout.split() == ["media_upload", "False"]


def test_airflow_s_api_server_mounts_the_view_behind_its_login(users, ledger):
    """Through Airflow's own app factory (plugins from entry points, its middlewares): the page and the
    JSON answer a signed-in user and refuse an anonymous one."""
    from airflow.api_fastapi.app import create_app

    insert(ledger, [entry("tee-001", ATTACHED, video_id="30001")])
    api_server = TestClient(create_app(apps="core"))
    assert api_server.get("/media-uploads/api/uploads").status_code == 401
    api_server.cookies.set("_token", users.token("admin"))
    body = api_server.get("/media-uploads/api/uploads").json()
    assert [row["video_id"] for row in body["rows"]] == ["30001"]
    assert "<h1>Media uploads</h1>" in api_server.get("/media-uploads/").text
    plugins = api_server.get("/api/v2/plugins").json()["plugins"]
    views = next(p for p in plugins if p["name"] == "media_upload")["external_views"]
    assert {view["destination"] for view in views} == {"nav", "dag_run"}


def test_the_page_is_plain_html_that_only_polls_its_own_api():
    """No build step, no third-party script: one file that fetches ``api/uploads`` on its own origin."""
    import media_upload.ui

    page = (Path(media_upload.ui.__file__).parent / "static" / "index.html").read_text()
    assert "<script src" not in page and "fetch(url()" in page and '"api/uploads?"' in page
