"""What was uploaded where: the ledger that keeps re-runs from uploading or attaching twice.

One row per (platform, account, product, content SHA-256) with the upload id, the video id, the state
and timestamps, in a table reached through an Airflow SQL connection (SQLite or PostgreSQL; the SQL is
the subset both speak, ``INSERT ... ON CONFLICT ... DO UPDATE`` included).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.sqlite.hooks.sqlite import SqliteHook
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

DEFAULT_CONN_ID = "media_upload_ledger"
TABLE = "media_upload_ledger"

#: Ledger states, in the order an upload goes through them.
PLANNED, UPLOADING, COMMITTED, AUDITED, ATTACHED = "planned", "uploading", "committed", "audited", "attached"
#: The platform refused the video for good: the same content would be refused again.
REJECTED = "rejected"
#: Something went wrong that a later run may get past (a missing file, exhausted retries).
FAILED = "failed"

_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    platform VARCHAR(32) NOT NULL,
    account VARCHAR(128) NOT NULL,
    product VARCHAR(200) NOT NULL,
    content_sha256 CHAR(64) NOT NULL,
    file_size BIGINT,
    source TEXT,
    upload_id VARCHAR(64),
    video_id VARCHAR(64),
    state VARCHAR(16) NOT NULL,
    reason TEXT,
    run_id VARCHAR(250),
    created_at VARCHAR(32) NOT NULL,
    updated_at VARCHAR(32) NOT NULL,
    PRIMARY KEY (platform, account, product, content_sha256)
)
"""
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LedgerEntry:
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

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.platform, self.account, self.product, self.content_sha256


COLUMNS = [f.name for f in fields(LedgerEntry)]
_KEY = ("platform", "account", "product", "content_sha256")


class _FileSqliteHook(SqliteHook):
    """SqliteHook on a file, for when no ledger connection is defined."""

    def __init__(self, path: Path) -> None:
        super().__init__(log_sql=False)
        self._path = path

    def get_connection(self, conn_id: str) -> Connection:  # type: ignore[override]
        return Connection(conn_id=DEFAULT_CONN_ID, conn_type="sqlite", host=str(self._path))

    def get_uri(self) -> str:
        return f"sqlite:///{self._path}"


class UploadLedger:
    """The ledger table behind connection ``conn_id`` (created on first use).

    When ``conn_id`` is the default and no such connection is defined, a SQLite file in ``AIRFLOW_HOME`` is
    used, which is right for one machine; define the connection (``sqlite://`` or ``postgres://``) to share
    the ledger between workers.
    """

    def __init__(self, conn_id: str = DEFAULT_CONN_ID) -> None:
        self.conn_id = conn_id
        self.hook = self._hook(conn_id)
        self.hook.run(_CREATE)

    @staticmethod
    def _hook(conn_id: str) -> DbApiHook:
        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            if conn_id != DEFAULT_CONN_ID:
                raise
            path = Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "media_upload_ledger.db"
            log.warning("No %s connection is defined; using the SQLite ledger %s", conn_id, path)
            return _FileSqliteHook(path)
        hook = connection.get_hook()
        if not isinstance(hook, DbApiHook):
            raise TypeError(f"connection {conn_id!r} ({connection.conn_type}) is not an SQL connection")
        hook.log_sql = False  # one ledger statement per step would bury the task log
        return hook

    def _placeholders(self, count: int) -> str:
        return ", ".join([self.hook.placeholder] * count)

    def get(self, platform: str, account: str, product: str, content_sha256: str) -> LedgerEntry | None:
        rows = self.hook.get_records(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE platform = {self.hook.placeholder} "
            f"AND account = {self.hook.placeholder} AND product = {self.hook.placeholder} "
            f"AND content_sha256 = {self.hook.placeholder}",
            parameters=(platform, account, product, content_sha256),
        )
        return _entry(rows[0]) if rows else None

    def with_content(self, platform: str, account: str, content_sha256: str) -> list[LedgerEntry]:
        """Every product of ``account`` that received this content (to reuse one video for them all)."""
        rows = self.hook.get_records(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE platform = {self.hook.placeholder} "
            f"AND account = {self.hook.placeholder} AND content_sha256 = {self.hook.placeholder}",
            parameters=(platform, account, content_sha256),
        )
        return [_entry(row) for row in rows]

    def for_run(self, run_id: str) -> list[LedgerEntry]:
        rows = self.hook.get_records(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} WHERE run_id = {self.hook.placeholder}",
            parameters=(run_id,),
        )
        return [_entry(row) for row in rows]

    def record(self, entry: LedgerEntry, **changes: Any) -> LedgerEntry:
        """Insert or update the row of ``entry``'s key with ``changes``; returns what is stored."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        stored = replace(entry, **changes, updated_at=now, created_at=entry.created_at or now)
        values = asdict(stored)
        updates = ", ".join(
            f"{name} = excluded.{name}" for name in COLUMNS if name not in (*_KEY, "created_at")
        )
        self.hook.run(
            f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({self._placeholders(len(COLUMNS))}) "
            f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET {updates}",
            parameters=tuple(values[name] for name in COLUMNS),
        )
        return stored

    def all(self) -> list[LedgerEntry]:
        return [_entry(row) for row in self.hook.get_records(f"SELECT {', '.join(COLUMNS)} FROM {TABLE}")]


def _entry(row: Iterable[Any]) -> LedgerEntry:
    values = dict(zip(COLUMNS, row, strict=True))
    if values["file_size"] is not None:
        values["file_size"] = int(values["file_size"])
    return LedgerEntry(**values)
