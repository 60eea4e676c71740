"""How a platform hook's requests travel: proxies, TLS and keep-alive, read from its connection the way the
HTTP provider reads an ``http`` connection
(https://airflow.apache.org/docs/apache-airflow-providers-http/stable/connections/http.html).

A platform connection's login and password are an app key and secret (or AK/SK) and its extra holds tokens;
``HttpHook`` would send the first as Basic auth and every unknown extra as a header. So it builds its session
from a *transport view* of the connection: host, schema, port and only the extras below, checked here so a
mistake fails the task with a message instead of a request. The same settings are turned into aiohttp's
``proxy=`` and ``ssl=`` for triggers, and a proxy or certificate that fails is described in words that name
the setting to fix.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from airflow.sdk import Connection
from airflow.sdk.log import mask_secret
from requests.adapters import HTTPAdapter
from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

from media_upload.masking import mask_url

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def extra_value(conn: Connection, conn_type: str, *names: str) -> Any:
    """The first of ``names`` the extra has, as JSON holds it or as the connection form saves it
    (``extra__<type>__<name>``); None when none is set."""
    extra: dict[str, Any] = conn.extra_dejson
    for name in names:
        for key in (name, f"extra__{conn_type}__{name}"):
            if extra.get(key) not in (None, ""):
                return extra[key]
    return None


def boolean(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ValueError(f"{name} must be true or false, not {value!r}")


def whole(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a whole number, not {value!r}") from None


def _json(value: Any, opening: str) -> Any:
    """A JSON object or list that a form field or a URI-style extra holds as text."""
    if isinstance(value, str) and value.lstrip().startswith(opening):
        return json.loads(value)
    return value


def proxies_from(value: Any) -> dict[str, str]:
    """``proxies`` as requests takes it (scheme, or ``scheme://host``, to proxy URL) from that JSON object or
    from one proxy URL for every scheme. Proxy passwords are registered with Airflow's log masker."""
    value = _json(value, "{")
    if isinstance(value, str):
        value = {"http": value.strip(), "https": value.strip()}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError(
            "proxies must be a proxy URL or a JSON object of proxy URLs by scheme, "
            'such as {"https": "http://proxy.example.com:3128"}'
        )
    for key, url in value.items():
        if key == "no_proxy":
            continue
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            raise ValueError(
                f"proxies: {mask_url(url)!r} is not a proxy URL such as http://proxy.example.com:3128"
            )
        if parts.password:
            mask_secret(parts.password)
            mask_secret(unquote(parts.password))
    return dict(value)


def verify_from(value: Any) -> bool | str:
    """``verify``: true (the default trust store), false (no check), or a CA bundle file or folder."""
    if isinstance(value, bool) or str(value).strip().lower() in _TRUE | _FALSE:
        return boolean(value, "verify")
    path = str(value).strip()
    if not os.path.exists(path):
        raise ValueError(
            f"verify names {path}, which is not a file or folder on this worker: give the path of the CA "
            "bundle (PEM) that every worker has, or true or false"
        )
    if os.path.isfile(path):
        try:
            ssl.create_default_context(cafile=path)
        except (OSError, ValueError):  # ssl.SSLError is an OSError
            raise ValueError(f"verify names {path}, which is not a readable CA bundle (PEM)") from None
    return path


def cert_from(value: Any) -> str | list[str]:
    """``cert``: a PEM file with the client certificate and its key, or ``[certificate, key]``. Its paths are
    never put in a message: a key's location is nobody's business."""
    value = _json(value, "[")
    paths = [value] if isinstance(value, str) else value
    if not (isinstance(paths, list) and len(paths) in (1, 2) and all(isinstance(p, str) for p in paths)):
        raise ValueError(
            "cert must be the path of a PEM file with the client certificate and its key, or a list "
            "[certificate, key] of two paths"
        )
    if not all(os.path.isfile(path) for path in paths):
        raise ValueError("cert names a client certificate or key that is not a file on this worker")
    try:
        ssl.create_default_context().load_cert_chain(*paths)
    except OSError:  # ssl.SSLError is an OSError
        raise ValueError("cert names files that are not a readable PEM certificate and its key") from None
    return paths[0] if len(paths) == 1 else paths


def transport_view(conn: Connection, conn_type: str) -> Connection:
    """What ``HttpHook`` may see of a platform connection: host, schema, port and the checked transport
    extras (``proxies``, ``verify``, ``cert``, ``trust_env``, ``max_redirects``). No login, no password, no
    token: nothing it could turn into Basic auth or headers. Raises ``ValueError`` for a setting it cannot use."""
    parsers = {
        ("proxies", "proxy"): proxies_from,
        ("verify", "verify_ssl"): verify_from,
        ("cert",): cert_from,
        ("trust_env",): lambda value: boolean(value, "trust_env"),
        ("max_redirects",): lambda value: whole(value, "max_redirects"),
    }
    extra = {
        names[0]: parse(value)
        for names, parse in parsers.items()
        if (value := extra_value(conn, conn_type, *names)) is not None
    }
    return Connection(
        conn_id=conn.conn_id,
        conn_type="http",
        host=conn.host,
        schema=conn.schema,
        port=conn.port,
        extra=json.dumps(extra),
    )


class KeepAliveAdapter(TCPKeepAliveAdapter):
    """``HttpHook``'s keep-alive adapter, also on connections through a proxy: requests builds a proxy's
    pool without the adapter's socket options, so a tunnel idling behind an egress proxy had none."""

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return super().proxy_manager_for(proxy, socket_options=self.socket_options, **proxy_kwargs)


@dataclass(frozen=True)
class KeepAlive:
    """TCP keep-alive as ``HttpHook`` takes it: its constructor arguments, with its defaults."""

    tcp_keep_alive: bool = True
    tcp_keep_alive_idle: int = 120
    tcp_keep_alive_count: int = 20
    tcp_keep_alive_interval: int = 30

    def tuned(self, conn: Connection, conn_type: str) -> KeepAlive:
        """These settings with the connection's extras of the same names in their place."""
        changes: dict[str, Any] = {}
        for name, default in vars(self).items():
            value = extra_value(conn, conn_type, name)
            if value is not None:
                changes[name] = boolean(value, name) if isinstance(default, bool) else whole(value, name)
        return replace(self, **changes)

    def adapter(self, pool_connections: int, pool_maxsize: int) -> HTTPAdapter:
        if not self.tcp_keep_alive:
            return HTTPAdapter(pool_connections=pool_connections, pool_maxsize=pool_maxsize)
        return KeepAliveAdapter(
            idle=self.tcp_keep_alive_idle,
            count=self.tcp_keep_alive_count,
            interval=self.tcp_keep_alive_interval,
            pool_connections=pool_connections,
            pool_maxsize=pool_maxsize,
        )


def aiohttp_ssl(verify: bool | str, cert: str | list[str] | None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=`` for requests' ``verify`` and ``cert``."""
    if not cert and isinstance(verify, bool):
        return verify
    if isinstance(verify, str):
        where = {"capath": verify} if os.path.isdir(verify) else {"cafile": verify}
        context = ssl.create_default_context(**where)  # type: ignore[arg-type]
    else:
        context = ssl.create_default_context()
    if verify is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if cert:
        certificate, key = (cert, None) if isinstance(cert, str) else (cert[0], cert[-1])
        context.load_cert_chain(certificate, key)
    return context


@dataclass(frozen=True)
class TransportFailure:
    """Why no answer came, for an exception message; whether trying again may help; whether the request may
    have reached the platform."""

    description: str
    retryable: bool
    sent: bool


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: requests and urllib3 nest the socket's error in ``args`` and ``reason``,
    aiohttp in ``os_error`` and ``certificate_error``."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        inner = (
            *current.args,
            *(getattr(current, name, None) for name in ("reason", "os_error", "certificate_error")),
            current.__cause__,
            current.__context__,
        )
        stack.extend(item for item in inner if isinstance(item, BaseException))


def proxy_trouble(exc: BaseException) -> tuple[str, bool] | None:
    """What the proxy did, when the proxy is what failed (``refused the connection``...), and whether trying
    again may help: not when it refused the tunnel for credentials (407) or by policy (403)."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return f"refused the tunnel: {exc.status} {exc.message}", exc.status not in (403, 407)
    if not isinstance(exc, requests.exceptions.ProxyError | aiohttp.ClientProxyConnectionError):
        return None
    causes = list(_causes(exc))
    for cause in causes:
        if found := re.search(r"Tunnel connection failed: ((\d{3})[^'\")]*)", str(cause)):
            return f"refused the tunnel: {found[1].strip()}", found[2] not in ("403", "407")
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes):
        return "refused the connection", True
    if any(isinstance(cause, TimeoutError) or "timed out" in str(cause) for cause in causes):
        return "did not answer in time", True
    return "could not be reached", True


def untrusted_certificate(exc: BaseException) -> str | None:
    """The reason a server's certificate failed verification (``unable to get local issuer certificate``),
    when it did."""
    failed = [cause for cause in _causes(exc) if isinstance(cause, ssl.SSLCertVerificationError)]
    if not failed:
        return None
    reasons = [getattr(cause, "verify_message", None) for cause in failed]  # aiohttp's wrapper has none
    return next((str(reason) for reason in reasons if reason), "certificate verify failed")
