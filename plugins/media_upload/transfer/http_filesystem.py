"""``http://`` and ``https://`` for Airflow's ``ObjectStoragePath``, registered through provider info.

Airflow ships filesystems for ``file`` only; cloud providers add ``s3``, ``gs``... This adds fsspec's
HTTP filesystem, which reads byte ranges with ``Range`` requests, so a video on a web server or CDN can be
a source. ``conn_id`` may name an ``http`` connection: its login/password become Basic auth, its extra
``headers`` are sent with every request, and its extra ``verify`` (false, or a CA bundle's path) says how
the server's certificate is checked. :class:`~media_upload.transfer.source.Source` sends that connection
only to its own host, and redirects are not followed (an answer of 300 or more is an error, which the
source reports with its status): credentials never travel on to another host.
"""

from __future__ import annotations

from typing import Any

from fsspec.implementations.http import HTTPFileSystem

schemes = ["http", "https"]


async def _refuse_redirects_and_errors(response: Any) -> None:
    """Every answer from 300 up raises, a redirect included (fsspec would take its body for the file)."""
    import aiohttp

    if response.status >= 300:
        raise aiohttp.ClientResponseError(
            response.request_info, response.history, status=response.status, message=response.reason or ""
        )


def get_fs(conn_id: str | None, storage_options: dict[str, Any] | None = None) -> HTTPFileSystem:
    options: dict[str, Any] = {**(storage_options or {}), "allow_redirects": False}
    client_kwargs = {"raise_for_status": _refuse_redirects_and_errors, **options.pop("client_kwargs", {})}
    options["client_kwargs"] = client_kwargs
    if conn_id:
        import aiohttp

        from media_upload.connections import get_connection

        conn = get_connection(conn_id)
        extra = conn.extra_dejson
        headers = {**client_kwargs.get("headers", {}), **(extra.get("headers") or {})}
        if conn.login:
            encode = getattr(aiohttp, "encode_basic_auth", None)  # aiohttp 3.14+; BasicAuth before
            login, password = conn.login, conn.password or ""
            headers["Authorization"] = (
                encode(login, password) if encode else aiohttp.BasicAuth(login, password).encode()
            )
        if headers:
            client_kwargs["headers"] = headers
        verify = extra.get("verify")
        if verify is False or str(verify).lower() == "false":
            options["ssl"] = False
        elif isinstance(verify, str) and verify.strip() and verify.lower() != "true":
            import ssl

            options["ssl"] = ssl.create_default_context(cafile=verify)
    return HTTPFileSystem(**options)
