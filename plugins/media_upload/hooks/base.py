"""What every platform hook shares: the connection read once, the HTTP provider's session, a retry policy."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import cached_property
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowFailException
from requests.utils import select_proxy

from media_upload import metrics
from media_upload.budget import CallBudget
from media_upload.connections import get_connection
from media_upload.hooks.retry import RetryPolicy, never_sent
from media_upload.hooks.transport import (
    KeepAlive,
    TransportFailure,
    aiohttp_ssl,
    proxy_trouble,
    transport_view,
    untrusted_certificate,
)
from media_upload.ledger import DEFAULT_CONN_ID as LEDGER_CONN_ID
from media_upload.masking import mask_text, mask_url

CredentialsT = TypeVar("CredentialsT")
#: "this ban will last 1 seconds" (Lazada's ApiCallLimit), and the like.
_BAN = re.compile(r"ban will last (\d+(?:\.\d+)?) (?:more )?seconds?", re.IGNORECASE)


class PlatformHook(HttpHook, Generic[CredentialsT]):
    """Base of the platform hooks: subclasses set Airflow's hook attributes and :meth:`credentials_from`.

    The connection is resolved lazily (never in ``__init__``) and once per hook, by :attr:`credentials` or,
    in a trigger, :meth:`acredentials`. Requests go through ``HttpHook``'s session (:attr:`session`), so a
    connection's ``proxies``, ``verify``, ``cert``, ``trust_env``, ``max_redirects`` and TCP keep-alive
    extras apply as they do on an ``http`` connection (see :mod:`media_upload.hooks.transport`); aiohttp
    calls take the same proxy and TLS settings from :meth:`aiohttp_options`.

    Every request first takes a call from the connection's :class:`~media_upload.budget.CallBudget`
    (extras ``calls_per_second`` and ``call_burst``), shared by the whole deployment through the ledger's
    database, and a throttle answer pauses the budget deployment-wide for the ban it names.

    :param tcp_keep_alive, tcp_keep_alive_idle, tcp_keep_alive_count, tcp_keep_alive_interval: as
        ``HttpHook`` takes them; the connection's extras of the same names win.
    :param ledger_conn_id: the upload ledger's connection, where call budgets (and renewed tokens) live.
    """

    conn_name_attr: str
    conn_type: str
    #: Connections kept open per host: the blocks a chunk sends at once (up to 32 small ones) and the
    #: commits beside them (16). Four hosts: a gateway and its auth host, or VOD and an OBS bucket.
    pool_maxsize = 48
    pool_connections = 4

    def __init__(
        self,
        conn_id: str,
        *,
        timeout: float,
        retry_policy: RetryPolicy,
        tcp_keep_alive: bool = True,
        tcp_keep_alive_idle: int = 120,
        tcp_keep_alive_count: int = 20,
        tcp_keep_alive_interval: int = 30,
        ledger_conn_id: str = LEDGER_CONN_ID,
    ) -> None:
        super().__init__(http_conn_id=conn_id)
        self.conn_id = conn_id
        self.ledger_conn_id = ledger_conn_id
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.keep_alive = KeepAlive(
            tcp_keep_alive, tcp_keep_alive_idle, tcp_keep_alive_count, tcp_keep_alive_interval
        )
        self._credentials: CredentialsT | None = None
        self._connection: Connection | None = None
        self._ssl_contexts: dict[str, Any] = {}

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
        self._connection = conn
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

    # ------------------------------------------------------------------ transport

    def get_connection(self, conn_id: str) -> Connection:  # type: ignore[override]
        """The connection as ``HttpHook.get_conn`` reads it to build the session: the transport view of this
        hook's connection (see :func:`~media_upload.hooks.transport.transport_view`), never the connection
        itself, whose app secret and tokens ``HttpHook`` would send as Basic auth and headers."""
        if conn_id != self.conn_id:
            return super().get_connection(conn_id)
        return self._transport

    @cached_property
    def _transport(self) -> Connection:
        """The transport view and keep-alive settings, checked when the session is first needed, not with
        the credentials: the push receiver reads those on the api-server, where a worker's CA bundle or
        client certificate need not exist."""
        self.credentials  # noqa: B018 - reads the connection once
        assert self._connection is not None
        try:
            self.keep_alive = self.keep_alive.tuned(self._connection, self.conn_type)
            return transport_view(self._connection, self.conn_type)
        except ValueError as exc:
            raise AirflowFailException(f"connection {self.conn_id!r}: {exc}") from None

    @cached_property
    def session(self) -> requests.Session:
        """``HttpHook``'s session for this connection, made once: proxies, verify, cert, trust_env and
        max_redirects as the HTTP provider reads them, on its keep-alive adapter with a pool sized for the
        blocks in flight."""
        self._transport  # noqa: B018 - checks the connection's settings (and keep-alive extras) first
        adapter = self.keep_alive.adapter(self.pool_connections, self.pool_maxsize)
        # HttpHook mounts its keep-alive adapter on http:// and https://; without keep-alive it mounts none.
        self.keep_alive_adapter = adapter if self.keep_alive.tcp_keep_alive else None
        session: requests.Session = super().get_conn()
        if isinstance(session.cert, list):  # [certificate, key] from JSON: urllib3 keys its pools by it
            session.cert = tuple(session.cert)
        if self.keep_alive_adapter is None:
            session.mount("http://", adapter)
            session.mount("https://", adapter)
        return session

    def get_conn(self, headers: Any = None, extra_options: Any = None) -> requests.Session:
        """The hook's one session (``HttpHook.get_conn`` would build another on every call)."""
        return self.session

    @cached_property
    def budget(self) -> CallBudget:
        """The connection's call budget: ``calls_per_second`` and ``call_burst`` from its extra (none: only
        the platform's bans are shared)."""
        self.credentials  # noqa: B018 - reads the connection once
        assert self._connection is not None
        try:
            per_second = float(self.extra_option(self._connection, "calls_per_second") or 0)
            burst = float(self.extra_option(self._connection, "call_burst") or 0)
            return CallBudget(self.ledger_conn_id, self.conn_type, self.conn_id, per_second, burst)
        except ValueError as exc:
            raise AirflowFailException(
                f"connection {self.conn_id!r}: calls_per_second and call_burst must be positive numbers ({exc})"
            ) from None

    def is_throttle(self, exc: BaseException) -> bool:
        """Whether ``exc`` is the platform's "too many calls" answer: waited out, never a failed look."""
        return False

    def throttled(self, exc: BaseException) -> None:
        """The platform answered "too many calls": pause this connection's calls in every process, for the
        ban the answer names ("this ban will last 5 seconds") or the policy's throttle pause."""
        found = _BAN.search(str(exc))
        seconds = float(found.group(1)) if found else self.retry_policy.throttle_pause_seconds
        self.log.warning(
            "%s throttled the calls of %r: pausing them for %.1f s", self.conn_type, self.conn_id, seconds
        )
        self.budget.ban(seconds)
        metrics.incr(metrics.THROTTLE_WAITED, platform=self.conn_type, conn_id=self.conn_id)

    def token_renewed(self, outcome: str) -> None:
        """Count a refused access token's renewal: ``refreshed`` here, ``reused`` (another task renewed it
        first) or ``failed``; a run of ``failed`` means a seller must authorize the app again."""
        metrics.incr(metrics.TOKEN_REFRESHED, platform=self.conn_type, conn_id=self.conn_id, outcome=outcome)

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request on :attr:`session`, its proxies, verify and cert ahead of the environment's (as
        ``HttpHook.run_and_check`` sends: on its own, requests lets ``HTTPS_PROXY`` override them), once the
        call budget allows it."""
        self.budget.take()
        session = self.session
        return session.request(
            method, url, proxies=dict(session.proxies), verify=session.verify, cert=session.cert, **kwargs
        )

    def _settings(self, url: str) -> dict[str, Any]:
        """What :meth:`request` would use for ``url``: proxies, verify, cert (the environment's included)."""
        session = self.session
        return session.merge_environment_settings(
            url, dict(session.proxies), None, session.verify, session.cert
        )

    def aiohttp_options(self, url: str) -> dict[str, Any]:
        """aiohttp's ``proxy=`` and ``ssl=`` for ``url``: the proxy and TLS settings :meth:`request` uses."""
        settings = self._settings(url)
        key = repr((settings["verify"], settings["cert"]))
        if key not in self._ssl_contexts:
            self._ssl_contexts[key] = aiohttp_ssl(settings["verify"], settings["cert"])
        return {"proxy": select_proxy(url, settings["proxies"]), "ssl": self._ssl_contexts[key]}

    def transport_failure(self, exc: BaseException, url: str) -> TransportFailure:
        """Words for a request to ``url`` that got no answer, naming the connection and the setting to fix
        when a proxy or a certificate is at fault; URL credentials and secret parameters masked."""
        proxy = select_proxy(url, self._settings(url)["proxies"])
        if proxy and (trouble := proxy_trouble(exc)):
            what, retryable = trouble
            named = select_proxy(url, self.session.proxies) == proxy
            origin = (
                "named in its extra (proxies)" if named else "from the environment (HTTPS_PROXY, HTTP_PROXY)"
            )
            return TransportFailure(
                f"connection {self.conn_id!r}: the proxy {mask_url(proxy)} {origin} {what}",
                retryable=retryable,
                sent=False,
            )
        if reason := untrusted_certificate(exc):
            host = urlsplit(url).netloc.rpartition("@")[2]
            return TransportFailure(
                f"connection {self.conn_id!r}: the TLS certificate of {host} is not trusted ({reason}); give "
                'the connection the CA bundle that signed it (extra "verify": "/path/to/ca.pem")',
                retryable=False,
                sent=False,
            )
        return TransportFailure(
            mask_text(f"{type(exc).__name__}: {exc}"), retryable=True, sent=not never_sent(exc)
        )
