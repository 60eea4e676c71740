"""The upload ledger on SQLite (a defined connection, and the default file) and on PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from media_upload.ledger import ATTACHED, COMMITTED, PLANNED, LedgerEntry, UploadLedger, entry_for

SHA = "ab" * 32


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request, ledger_connection) -> UploadLedger:
    ledger_connection(request.param)
    return UploadLedger()


def test_record_inserts_then_updates_one_row(ledger):
    first = ledger.record(
        LedgerEntry("lazada", "shop", "sku:a", SHA, PLANNED, file_size=2_500_000, run_id="r1")
    )
    assert first.created_at == first.updated_at != ""
    second = ledger.record(first, state=COMMITTED, upload_id="U1", video_id="30000000001", run_id="r2")
    stored = ledger.get("lazada", "shop", "sku:a", SHA)
    assert stored == second
    assert (stored.state, stored.video_id, stored.file_size, stored.created_at) == (
        COMMITTED,
        "30000000001",
        2_500_000,
        first.created_at,
    )
    assert len(ledger.all()) == 1


def test_keys_separate_platform_account_product_and_content(ledger):
    base = LedgerEntry("lazada", "shop", "sku:a", SHA, PLANNED)
    for changed in (
        {"platform": "huawei_vod"},
        {"account": "other-shop"},
        {"product": "sku:b"},
        {"content_sha256": "cd" * 32},
    ):
        ledger.record(LedgerEntry(**{**base.__dict__, **changed}))
    ledger.record(base, state=ATTACHED, video_id="1")
    assert len(ledger.all()) == 5
    assert ledger.get("lazada", "shop", "sku:a", "ef" * 32) is None


def test_lookups_by_content_and_by_run(ledger):
    ledger.record(LedgerEntry("lazada", "shop", "sku:a", SHA, ATTACHED, video_id="1", run_id="r1"))
    ledger.record(LedgerEntry("lazada", "shop", "sku:b", SHA, PLANNED, run_id="r2"))
    ledger.record(LedgerEntry("lazada", "other", "sku:c", SHA, ATTACHED, video_id="2", run_id="r2"))
    assert sorted(e.product for e in ledger.with_content("lazada", "shop", SHA)) == ["sku:a", "sku:b"]
    assert sorted(e.product for e in ledger.for_run("r2")) == ["sku:b", "sku:c"]


def test_many_keys_and_contents_are_read_at_once_whatever_their_platform_or_account(ledger):
    """A catalog batch's rows in a few queries: more products than one query takes, two platforms and
    accounts, a key whose content differs, and keys with no row."""
    for n in range(1_200):
        ledger.record(LedgerEntry("lazada", "shop", f"sku:{n}", SHA, COMMITTED, video_id=str(n)))
    ledger.record(LedgerEntry("shopee", "shop", "item:1", SHA, PLANNED))
    ledger.record(LedgerEntry("lazada", "other", "sku:1", SHA, PLANNED))
    keys = [("lazada", "shop", f"sku:{n}", SHA) for n in range(0, 1_200, 3)]
    keys += [
        ("shopee", "shop", "item:1", SHA),
        ("lazada", "shop", "sku:2", "cd" * 32),
        ("vod", "x", "y", SHA),
    ]
    found = ledger.get_many(keys)
    assert set(found) == set(keys[:-2])
    assert all(found[key] == ledger.get(*key) for key in keys[:-2])
    assert found[("lazada", "shop", "sku:3", SHA)].made_video == "3"
    assert found[("shopee", "shop", "item:1", SHA)].made_video is None
    contents = ledger.with_contents([("lazada", "shop", SHA), ("lazada", "other", SHA), ("vod", "x", SHA)])
    assert {content: len(rows) for content, rows in contents.items()} == {
        ("lazada", "shop", SHA): 1_200,
        ("lazada", "other", SHA): 1,
        ("vod", "x", SHA): 0,
    }


def test_without_a_connection_the_default_is_a_sqlite_file_in_airflow_home(monkeypatch, tmp_path):
    monkeypatch.delenv("AIRFLOW_CONN_MEDIA_UPLOAD_LEDGER", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    UploadLedger().record(LedgerEntry("lazada", "shop", "sku:a", SHA, PLANNED))
    assert (tmp_path / "media_upload_ledger.db").exists()
    assert UploadLedger().get("lazada", "shop", "sku:a", SHA).state == PLANNED


def test_a_non_sql_connection_is_refused(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_NOT_SQL", '{"conn_type": "http", "host": "example.com"}')
    with pytest.raises(TypeError, match="is not an SQL connection"):
        UploadLedger("not_sql")


def test_pushed_states_go_once_their_video_settles_or_grows_old(ledger):
    from media_upload.ledger import PushedState

    for video, state in (("v1", "AUDITING"), ("v1", "AUDIT_SUCCESS"), ("v2", "AUDITING")):
        assert ledger.add_pushed_state(PushedState("app", "seller", video, state, changed_at=1))
    key = {"platform": "lazada", "account": "a", "product": "sku:1", "content_sha256": "c" * 64}
    entry = ledger.record(entry_for(key), state=COMMITTED, video_id="v1")
    assert len(ledger.pushed_states(video_ids=["v1"])) == 2  # still waited for
    ledger.record(entry, state=ATTACHED)
    assert ledger.pushed_states(video_ids=["v1"]) == []  # its audit is over: applied, forgotten
    assert [p.video_id for p in ledger.pushed_states()] == ["v2"]
    assert ledger.prune_pushed_states("2000-01-01T00:00:00") == 0
    assert ledger.prune_pushed_states("2999-01-01T00:00:00") == 1
    assert ledger.pushed_states() == []


def test_many_threads_share_a_few_connections(ledger):
    """A catalog step's sixteen threads: every row written, never more connections than the ledger allows
    (a deployment's database serves every worker's tasks)."""
    from concurrent.futures import ThreadPoolExecutor

    few = UploadLedger(max_connections=3)
    opened = []
    connect = few.database.connect
    few.database = dataclasses.replace(few.database, connect=lambda: opened.append(1) or connect())

    def write(n: int) -> None:
        key = {"platform": "lazada", "account": "a", "product": f"sku:{n}", "content_sha256": SHA}
        few.record(entry_for(key), state=PLANNED)
        assert few.get("lazada", "a", f"sku:{n}", SHA) is not None

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(write, range(200)))
    assert len(few.all()) == 200
    assert len(opened) <= 3
