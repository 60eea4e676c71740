"""``http://`` and ``https://`` for Airflow's ``ObjectStoragePath``, registered through provider info.

Airflow ships filesystems for ``file`` only; cloud providers add ``s3``, ``gs``... This adds fsspec's
HTTP filesystem, which reads byte ranges with ``Range`` requests, so a video on a web server or CDN can be
a source. ``conn_id`` may name an ``http`` connection: its login/password become Basic auth and its
extra ``headers`` are sent with every request.
"""

from __future__ import annotations

from typing import Any

from fsspec.implementations.http import HTTPFileSystem

schemes = ["http", "https"]


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> HTTPFileSystem:
    options: dict[str, Any] = dict(storage_options or {})
    if conn_id:
        import aiohttp
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(conn_id)
        client_kwargs = dict(options.pop("client_kwargs", {}))
        if conn.login:
            client_kwargs["auth"] = aiohttp.BasicAuth(conn.login, conn.password or "")
        headers = conn.extra_dejson.get("headers")
        if headers:
            client_kwargs["headers"] = {**client_kwargs.get("headers", {}), **headers}
        options["client_kwargs"] = client_kwargs
    return HTTPFileSystem(**options)
