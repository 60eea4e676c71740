"""What was uploaded where: the ledger every upload path reads first and writes as it goes.

One row per (platform, account, product, content SHA-256): the upload's state, its upload id and video
(or asset) id, sizes and progress, the reason it stopped, and the DAG run that last touched it. A second
table keeps every block the platform acknowledged with its tag, so a retried task, a cleared task or a
new run after a crash re-sends only what the platform does not have. Both tables sit behind an Airflow
SQL connection (SQLite or PostgreSQL; the SQL is the subset both speak, ``INSERT ... ON CONFLICT``
included), so every worker of a deployment shares them.

Why the ledger and not Airflow 3.3's task state store: that store is scoped to one task instance of one
run, so it survives a retry but not the new run a seller starts after a crash, and two stores would be
two sources of truth. The ledger survives both, and the "Media uploads" view reads it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing, suppress
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DEFAULT_CONN_ID = "media_upload_ledger"
TABLE = "media_upload_ledger"
BLOCKS_TABLE = "media_upload_blocks"
TOKENS_TABLE = "media_upload_tokens"

#: Nothing sent yet.
PLANNED = "planned"
#: The platform gave an upload id; acknowledged blocks are in the blocks table.
UPLOADING = "uploading"
#: The commit (Lazada), complete or confirm (VOD) was sent and its answer was lost: reconcile first.
COMMIT_UNKNOWN = "commit_unknown"
#: The platform made the video (``video_id``: Lazada's video id, VOD's asset id).
COMMITTED = "committed"
#: The platform's audit or transcode finished well: the video may go on a product.
AUDITED = "audited"
#: The video is on its product.
ATTACHED = "attached"
#: The platform refused the video for good: the same content would be refused again.
REJECTED = "rejected"
#: Stopped for a reason a later run may get past (a missing file, exhausted retries); nothing unknown.
FAILED = "failed"
#: What happened cannot be known from here; ``reason`` says what was seen and what the seller can do.
NEEDS_ATTENTION = "needs_attention"

STATES = (
    PLANNED, UPLOADING, COMMIT_UNKNOWN, COMMITTED, AUDITED, ATTACHED, REJECTED, FAILED, NEEDS_ATTENTION,
)  # fmt: skip
#: States whose video exists on the platform.
HAS_VIDEO = frozenset({COMMITTED, AUDITED, ATTACHED})

_COLUMNS_SQL = {
    "platform": "VARCHAR(32) NOT NULL",
    "account": "VARCHAR(128) NOT NULL",
    "product": "VARCHAR(200) NOT NULL",
    "content_sha256": "CHAR(64) NOT NULL",
    "state": "VARCHAR(20) NOT NULL",
    "file_size": "BIGINT",
    "source": "TEXT",
    "upload_id": "VARCHAR(128)",
    "video_id": "VARCHAR(64)",
    "reason": "TEXT",
    "run_id": "VARCHAR(250)",
    "created_at": "VARCHAR(32) NOT NULL",
    "updated_at": "VARCHAR(32) NOT NULL",
    "label": "VARCHAR(250)",
    "title": "TEXT",
    "dag_id": "VARCHAR(250)",
    "block_size": "BIGINT",
    "block_count": "INTEGER",
    "chunk_count": "INTEGER",
    "details": "TEXT",
    "upload_started_at": "VARCHAR(32)",
    "committed_at": "VARCHAR(32)",
    "finished_at": "VARCHAR(32)",
}
_KEY = ("platform", "account", "product", "content_sha256")
log = logging.getLogger(__name__)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LedgerEntry:
    """One upload target's row. ``details`` holds what only one platform has (VOD's bucket and object key,
    Lazada's item and SKU ids) as a JSON object."""

    platform: str
    account: str
    product: str
    content_sha256: str
    state: str
    file_size: int | None = None
    source: str | None = None
    upload_id: str | None = None
    video_id: str | None = None
    reason: str | None = None
    run_id: str | None = None
    created_at: str = ""
    updated_at: str = ""
    label: str | None = None
    title: str | None = None
    dag_id: str | None = None
    block_size: int | None = None
    block_count: int | None = None
    chunk_count: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    upload_started_at: str | None = None
    committed_at: str | None = None
    finished_at: str | None = None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.platform, self.account, self.product, self.content_sha256


COLUMNS = [f.name for f in fields(LedgerEntry)]
_INTEGERS = frozenset({"file_size", "block_size", "block_count", "chunk_count"})


@dataclass
class _Database:
    """How the ledger reaches its database: a ``connect()`` and the driver's parameter placeholder."""

    connect: Callable[[], Any]
    placeholder: str
    kind: str


def _database(conn_id: str) -> _Database:
    """The ledger's database behind ``conn_id``; without that connection, a SQLite file in ``AIRFLOW_HOME``.

    SQLite and PostgreSQL are opened with their drivers directly (every chunk task opens the ledger, and
    the SQL hooks' imports cost more than the work); any other SQL connection goes through its hook.
    """
    import sqlite3

    from airflow.sdk.exceptions import AirflowNotFoundException

    from media_upload.connections import get_connection

    try:
        connection = get_connection(conn_id)
    except AirflowNotFoundException:
        if conn_id != DEFAULT_CONN_ID:
            raise
        path = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "media_upload_ledger.db"
        log.warning("No %s connection is defined; using the SQLite ledger %s", conn_id, path)
        return _Database(lambda: sqlite3.connect(path, timeout=30), "?", "sqlite")
    if connection.conn_type == "sqlite":
        path = Path(connection.host or "")
        return _Database(lambda: sqlite3.connect(path, timeout=30), "?", "sqlite")
    if connection.conn_type in ("postgres", "postgresql"):
        import psycopg2

        options = {
            key: value
            for key, value in connection.extra_dejson.items()
            if key
            in (
                "sslmode",
                "sslcert",
                "sslkey",
                "sslrootcert",
                "connect_timeout",
                "options",
                "application_name",
            )
        }

        def connect() -> Any:
            return psycopg2.connect(
                host=connection.host,
                port=connection.port or 5432,
                user=connection.login,
                password=connection.password,
                dbname=connection.schema or "postgres",
                **options,
            )

        return _Database(connect, "%s", "postgres")
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise TypeError(f"connection {conn_id!r} ({connection.conn_type}) is not an SQL connection")
    return _Database(hook.get_conn, hook.placeholder, connection.conn_type or "sql")


class UploadLedger:
    """The ledger tables behind connection ``conn_id``, created (or given new columns) on first use.

    Without that connection (and only for the default id) a SQLite file in ``AIRFLOW_HOME`` is used,
    which is right for one machine; define the connection (``sqlite://`` or ``postgres://``) to share the
    ledger between workers.
    """

    def __init__(self, conn_id: str = DEFAULT_CONN_ID) -> None:
        self.conn_id = conn_id
        self.database = _database(conn_id)
        self.placeholder = self.database.placeholder
        self._local = threading.local()
        self._create()

    # ---------------------------------------------------------------- plumbing

    def _connection(self) -> Any:
        """One database connection per thread, opened on first use (a task makes many calls; SQLite's
        connections belong to the thread that opened them)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.database.connect()
        return conn

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            with suppress(Exception):
                conn.close()
            self._local.conn = None

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """``work(cursor)`` in one transaction; a failed one is rolled back and the connection renewed."""
        conn = self._connection()
        try:
            with closing(conn.cursor()) as cursor:
                result = work(cursor)
            conn.commit()
            return result
        except BaseException:
            self.close()
            raise

    def _execute(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> list[int]:
        """Run the statements in one transaction; returns each one's row count."""

        def work(cursor: Any) -> list[int]:
            counts = []
            for sql, parameters in statements:
                cursor.execute(sql, tuple(parameters))
                counts.append(cursor.rowcount)
            return counts

        return list(self._run(work))

    def _select(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        def work(cursor: Any) -> list[tuple[Any, ...]]:
            cursor.execute(sql, tuple(parameters))
            return list(cursor.fetchall())

        return list(self._run(work))

    def _create(self) -> None:
        """Check the tables with one query; create them, or add missing columns, only when that fails.

        Many tasks may open a new ledger at once: on PostgreSQL the creation holds an advisory lock, since
        concurrent ``CREATE TABLE IF NOT EXISTS`` can still collide there; SQLite serialises writers itself.
        """
        try:
            self._select(f"SELECT {', '.join(_COLUMNS_SQL)} FROM {TABLE} WHERE 1 = 0")
            self._select(f"SELECT part_number FROM {BLOCKS_TABLE} WHERE 1 = 0")
            self._select(f"SELECT lineage FROM {TOKENS_TABLE} WHERE 1 = 0")
            return
        except Exception:
            pass  # missing, or made by an earlier version
        if self.database.kind == "sqlite":  # readers do not wait for writers (several tasks at once)
            self._execute([("PRAGMA journal_mode=WAL", ())])
        columns = ", ".join(f"{name} {kind}" for name, kind in _COLUMNS_SQL.items())
        lock = (
            [("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))]
            if self.database.kind == "postgres"
            else []
        )
        self._execute(
            [
                *lock,
                (f"CREATE TABLE IF NOT EXISTS {TABLE} ({columns}, PRIMARY KEY ({', '.join(_KEY)}))", ()),
                (
                    f"CREATE TABLE IF NOT EXISTS {BLOCKS_TABLE} (platform VARCHAR(32) NOT NULL, "
                    "upload_id VARCHAR(128) NOT NULL, part_number INTEGER NOT NULL, tag VARCHAR(128) NOT NULL, "
                    "bytes BIGINT NOT NULL, acked_at VARCHAR(32) NOT NULL, "
                    "PRIMARY KEY (platform, upload_id, part_number))",
                    (),
                ),
                (
                    f"CREATE TABLE IF NOT EXISTS {TOKENS_TABLE} (lineage CHAR(64) PRIMARY KEY, "
                    "access_token TEXT NOT NULL, refresh_token TEXT NOT NULL, expires_in BIGINT, "
                    "refreshed_at VARCHAR(32), refreshed_by TEXT)",
                    (),
                ),
            ]
        )

        def present(cursor: Any) -> set[str]:
            cursor.execute(f"SELECT * FROM {TABLE} WHERE 1 = 0")
            return {str(column[0]).lower() for column in cursor.description}

        missing = [name for name in _COLUMNS_SQL if name not in self._run(present)]
        if missing:  # a ledger made by an earlier version: add the new columns, keep every row
            self._execute(
                [
                    *lock,
                    *(
                        (f"ALTER TABLE {TABLE} ADD COLUMN {name} {_COLUMNS_SQL[name]}", ())
                        for name in missing
                    ),
                ]
            )
        self._execute(
            [
                *lock,
                (f"CREATE INDEX IF NOT EXISTS {TABLE}_run ON {TABLE} (dag_id, run_id)", ()),
                (f"CREATE INDEX IF NOT EXISTS {TABLE}_updated ON {TABLE} (updated_at)", ()),
            ]
        )

    def _where_key(self) -> str:
        return " AND ".join(f"{name} = {self.placeholder}" for name in _KEY)

    def _rows(self, where: str = "", parameters: Sequence[Any] = (), tail: str = "") -> list[LedgerEntry]:
        sql = f"SELECT {', '.join(COLUMNS)} FROM {TABLE}" + (f" WHERE {where}" if where else "") + tail
        return [_entry(row) for row in self._select(sql, parameters)]

    # ------------------------------------------------------------------ upload rows

    def get(self, platform: str, account: str, product: str, content_sha256: str) -> LedgerEntry | None:
        rows = self._rows(self._where_key(), (platform, account, product, content_sha256))
        return rows[0] if rows else None

    def with_content(self, platform: str, account: str, content_sha256: str) -> list[LedgerEntry]:
        """Every product of ``account`` that received this content (to reuse one video for them all)."""
        p = self.placeholder
        return self._rows(
            f"platform = {p} AND account = {p} AND content_sha256 = {p}", (platform, account, content_sha256)
        )

    def with_video(self, platform: str, account: str, video_id: str) -> list[LedgerEntry]:
        p = self.placeholder
        return self._rows(
            f"platform = {p} AND account = {p} AND video_id = {p}", (platform, account, video_id)
        )

    def for_run(self, run_id: str, dag_id: str | None = None) -> list[LedgerEntry]:
        p = self.placeholder
        if dag_id is None:
            return self._rows(f"run_id = {p}", (run_id,))
        return self._rows(f"dag_id = {p} AND run_id = {p}", (dag_id, run_id))

    def all(self) -> list[LedgerEntry]:
        return self._rows()

    def record(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        """Insert or update the row of ``entry``'s key with ``changes``; returns what is stored."""
        stamp = now()
        stored = replace(entry, **changes, updated_at=stamp, created_at=entry.created_at or stamp)
        values = _values(stored)
        updates = ", ".join(
            f"{name} = excluded.{name}" for name in COLUMNS if name not in (*_KEY, "created_at")
        )
        self._execute(
            [
                (
                    f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join([self.placeholder] * len(COLUMNS))}) "
                    f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}",
                    [values[name] for name in COLUMNS],
                )
            ]
        )
        return stored

    def transition(self, entry: LedgerEntry, expected: Iterable[str], **changes: Any) -> LedgerEntry | None:
        """Change the stored row only if its state is still one of ``expected`` (compare and set).

        Returns the stored row, or None when another task moved it first: the way two workers agree on
        who sends a commit.
        """
        expected = list(expected)
        stored = replace(entry, **changes, updated_at=now())
        values = _values(stored)
        names = [name for name in COLUMNS if name not in (*_KEY, "created_at")]
        p = self.placeholder
        sql = (
            f"UPDATE {TABLE} SET {', '.join(f'{name} = {p}' for name in names)} WHERE {self._where_key()} "
            f"AND state IN ({', '.join([p] * len(expected))})"
        )
        (count,) = self._execute([(sql, [values[name] for name in names] + list(entry.key) + expected)])
        return stored if count == 1 else None

    # ----------------------------------------------------------------- block acks

    def acknowledge(self, platform: str, acks: Iterable[tuple[str, int, str, int]]) -> None:
        """Keep ``(upload_id, part_number, tag, bytes)`` of blocks the platform took, in one transaction."""
        p = self.placeholder
        sql = (
            f"INSERT INTO {BLOCKS_TABLE} (platform, upload_id, part_number, tag, bytes, acked_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (platform, upload_id, part_number) "
            "DO UPDATE SET tag = excluded.tag, bytes = excluded.bytes, acked_at = excluded.acked_at"
        )
        stamp = now()
        statements = [
            (sql, (platform, upload_id, number, tag, size, stamp)) for upload_id, number, tag, size in acks
        ]
        if statements:
            self._execute(statements)

    def acknowledged(self, platform: str, upload_id: str) -> dict[int, tuple[str, int]]:
        """``{part_number: (tag, bytes)}`` of the blocks of ``upload_id`` the platform took."""
        p = self.placeholder
        rows = self._select(
            f"SELECT part_number, tag, bytes FROM {BLOCKS_TABLE} WHERE platform = {p} AND upload_id = {p}",
            (platform, upload_id),
        )
        return {int(number): (str(tag), int(size)) for number, tag, size in rows}

    def acked_bytes(self, platform: str, upload_ids: Sequence[str]) -> dict[str, int]:
        """Bytes the platform acknowledged so far for each upload id (every chunk's blocks)."""
        if not upload_ids:
            return {}
        p = self.placeholder
        rows = self._select(
            f"SELECT upload_id, SUM(bytes) FROM {BLOCKS_TABLE} WHERE platform = {p} "
            f"AND upload_id IN ({', '.join([p] * len(upload_ids))}) GROUP BY upload_id",
            (platform, *upload_ids),
        )
        return {str(upload_id): int(total or 0) for upload_id, total in rows}

    def forget_blocks(self, platform: str, upload_id: str) -> None:
        """Drop the acks of an upload the platform no longer has (expired, committed, aborted)."""
        p = self.placeholder
        self._execute(
            [(f"DELETE FROM {BLOCKS_TABLE} WHERE platform = {p} AND upload_id = {p}", (platform, upload_id))]
        )


def _values(entry: LedgerEntry) -> dict[str, Any]:
    values = asdict(entry)
    values["details"] = json.dumps(entry.details, sort_keys=True) if entry.details else None
    return values


def _entry(row: Iterable[Any]) -> LedgerEntry:
    values: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
    for name in _INTEGERS:
        if values[name] is not None:
            values[name] = int(values[name])
    values["details"] = json.loads(values["details"]) if values["details"] else {}
    return LedgerEntry(**values)


def entry_for(key: Mapping[str, str], **fields_: Any) -> LedgerEntry:
    """A fresh row for a key given as a mapping (``platform``, ``account``, ``product``, ``content_sha256``)."""
    return LedgerEntry(
        key["platform"], key["account"], key["product"], key["content_sha256"], PLANNED, **fields_
    )
