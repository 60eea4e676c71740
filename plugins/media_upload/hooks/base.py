"""What both platform hooks share: the connection read once, one pooled session, a retry policy."""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property
from typing import Any, Generic, TypeVar

import requests
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowFailException
from requests.adapters import HTTPAdapter

from media_upload.connections import get_connection
from media_upload.hooks.retry import RetryPolicy

CredentialsT = TypeVar("CredentialsT")


class PlatformHook(BaseHook, Generic[CredentialsT]):
    """Base of the platform hooks: subclasses set Airflow's hook attributes and :meth:`credentials_from`.

    The connection is resolved lazily (never in ``__init__``) and once per hook, by :attr:`credentials` or,
    in a trigger, :meth:`acredentials`.
    """

    conn_name_attr: str
    conn_type: str

    def __init__(self, conn_id: str, *, timeout: float, retry_policy: RetryPolicy) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.timeout = timeout
        self.retry_policy = retry_policy
        self._credentials: CredentialsT | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.conn_name_attr}={self.conn_id!r})"

    def credentials_from(self, conn: Connection) -> CredentialsT:
        raise NotImplementedError

    def extra_option(self, conn: Connection, name: str) -> str | None:
        """An extra field, as JSON extras hold it or as the connection form saves it (``extra__<type>__``)."""
        extra: dict[str, Any] = conn.extra_dejson
        value = extra.get(name) or extra.get(f"extra__{self.conn_type}__{name}")
        return str(value) if value else None

    def _checked(self, conn: Connection) -> CredentialsT:
        """Credentials from a connection of this hook's type; any other type fails the task at once."""
        if conn.conn_type and conn.conn_type.replace("-", "_") != self.conn_type:
            raise AirflowFailException(
                f"connection {self.conn_id!r} is of type {conn.conn_type!r}; {type(self).__name__} needs a "
                f"{self.conn_type!r} connection (see the connection form for its fields)"
            )
        self._tune(conn)
        return self.credentials_from(conn)

    def _tune(self, conn: Connection) -> None:
        """Timeout and retry settings from the connection's extra, when it names them: ``timeout``,
        ``max_attempts``, ``backoff_seconds``, ``backoff_max_seconds``, ``throttle_pause_seconds``."""
        try:
            if timeout := self.extra_option(conn, "timeout"):
                self.timeout = float(timeout)
            tuned = {
                name: type(getattr(self.retry_policy, name))(value)
                for name in (
                    "max_attempts",
                    "backoff_seconds",
                    "backoff_max_seconds",
                    "throttle_pause_seconds",
                )
                if (value := self.extra_option(conn, name))
            }
        except ValueError as exc:
            raise AirflowFailException(
                f"connection {self.conn_id!r} has a setting that is not a number: {exc}"
            ) from None
        if tuned:
            self.retry_policy = replace(self.retry_policy, **tuned)

    @property
    def credentials(self) -> CredentialsT:
        if self._credentials is None:
            self._credentials = self._checked(get_connection(self.conn_id))
        return self._credentials

    async def acredentials(self) -> CredentialsT:
        if self._credentials is None:
            self._credentials = self._checked(await self.aget_connection(self.conn_id))
        return self._credentials

    @cached_property
    def session(self) -> requests.Session:
        """One pooled session for every call this hook makes."""
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def get_conn(self) -> requests.Session:
        return self.session
