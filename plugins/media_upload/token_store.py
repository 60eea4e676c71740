"""One token refresh for the whole deployment: the renewed pair, kept where every task finds it.

Lazada and Shopee answer a refresh with a new access token and a new refresh token, and revoke the
refresh token that was used (Shopee says so; the Lazada emulator follows a strict reading of "store
both"). Tasks that refreshed on their
own would each need the same refresh token, and all but the first would fail; the new pair would live
only in the task that got it. So the pair goes into the ledger's database (every worker and the
triggerer reach it; an Airflow connection from an environment variable or a secrets backend cannot be
written back), encrypted with Airflow's Fernet key, and a refresh happens under a lock: the first task
refreshes, the others find the new pair and use it. A deployment without a Fernet key cannot renew
tokens: they would lie in the database in clear text, so the first refresh that needs the key fails,
before the platform is asked, with what to set.

Rows are keyed by the authorization they descend from (a digest of the app key and the connection's
refresh token), so storing fresh tokens in the connection after a new authorization starts afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from media_upload.ledger import DEFAULT_CONN_ID, now
from media_upload.ledger import TOKENS_TABLE as TABLE


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str

    def __repr__(self) -> str:  # never show the values
        return "TokenPair(***)"


def lineage(app_key: str, refresh_token: str) -> str:
    """The key of an authorization's tokens: no secret can be read back from it."""
    return hashlib.sha256(f"{app_key}\0{refresh_token}".encode()).hexdigest()


class NoFernetKey(Exception):
    """The deployment has no ``[core] fernet_key``, so renewed tokens cannot be kept encrypted."""


def _fernet() -> Any:
    """Airflow's Fernet; :class:`NoFernetKey` when the deployment set no ``[core] fernet_key``."""
    from airflow.models.crypto import get_fernet

    fernet = get_fernet()
    if not getattr(fernet, "is_encrypted", False):
        raise NoFernetKey(
            "renewed platform tokens are kept encrypted in the ledger database, and this deployment has no "
            "[core] fernet_key (AIRFLOW__CORE__FERNET_KEY): set the same key on every Airflow component "
            '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"), '
            "or store a fresh access_token in the connection"
        )
    return fernet


class TokenStore:
    """Renewed platform tokens in the ledger database behind ``conn_id``."""

    def __init__(self, conn_id: str = DEFAULT_CONN_ID) -> None:
        from media_upload.ledger import UploadLedger

        self.database = UploadLedger(conn_id).database  # creates the tables on first use
        p = self.database.placeholder
        self._select = f"SELECT access_token, refresh_token FROM {TABLE} WHERE lineage = {p}"
        self._upsert = (
            f"INSERT INTO {TABLE} (lineage, access_token, refresh_token, expires_in, refreshed_at, refreshed_by) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (lineage) DO UPDATE SET "
            "access_token = excluded.access_token, refresh_token = excluded.refresh_token, "
            "expires_in = excluded.expires_in, refreshed_at = excluded.refreshed_at, refreshed_by = excluded.refreshed_by"
        )

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[Any]:
        """A transaction no other process can be inside for the same ``key`` (SQLite: the database's write
        lock; PostgreSQL: an advisory lock on the key; other databases: a plain transaction)."""
        conn = self.database.connect()
        try:
            if self.database.kind == "sqlite":
                conn.isolation_level = None  # transactions begin where this code says
            cursor = conn.cursor()
            if self.database.kind == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            elif self.database.kind == "postgres":
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            yield cursor
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def renew(
        self,
        key: str,
        used_access_token: str,
        fallback_refresh_token: str,
        refresh: Callable[[str], Mapping[str, Any]],
        refreshed_by: str = "",
    ) -> tuple[TokenPair, bool]:
        """The pair to use after ``used_access_token`` was refused, and whether this call refreshed it.

        Under the lock: when another task already stored a pair newer than the refused token, that pair
        is returned without calling the platform; otherwise ``refresh`` is called with the stored refresh token
        (or the connection's, the first time) and its answer stored for every later task.
        """
        fernet = _fernet()
        with self._exclusive(key) as cursor:
            cursor.execute(self._select, (key,))
            stored = _decrypted(fernet, cursor.fetchone())
            if stored is not None and stored.access_token != used_access_token:
                return stored, False
            refresh_token = stored.refresh_token if stored is not None else fallback_refresh_token
            body = refresh(refresh_token)
            pair = TokenPair(str(body["access_token"]), str(body.get("refresh_token") or refresh_token))
            cursor.execute(
                self._upsert,
                (
                    key,
                    fernet.encrypt(pair.access_token.encode()).decode(),
                    fernet.encrypt(pair.refresh_token.encode()).decode(),
                    int(body.get("expires_in") or 0),
                    now(),
                    refreshed_by,
                ),
            )
        return pair, True


def _decrypted(fernet: Any, row: Any) -> TokenPair | None:
    """The stored pair, or None when there is none or the deployment's Fernet key changed since."""
    if row is None:
        return None
    try:
        return TokenPair(fernet.decrypt(row[0].encode()).decode(), fernet.decrypt(row[1].encode()).decode())
    except Exception:
        return None
