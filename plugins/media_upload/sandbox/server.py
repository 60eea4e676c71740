"""Serve an emulator's ASGI app with uvicorn on a background thread, bound to a loopback port."""

from __future__ import annotations

import ssl
import threading
import time

import uvicorn
from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from media_upload.sandbox.link import LinkModel, LinkShaper


class CutOffResponse(Response):
    """Starts a response and never finishes it, so the server closes the connection mid-body.

    Emulates a connection lost after the platform acted on the request: the client cannot know.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})


def gateway_page(status: int) -> HTMLResponse:
    """What a gateway or load balancer answers when the service behind it is down (502, 503)."""
    reason = {502: "Bad Gateway", 503: "Service Unavailable"}[status]
    return HTMLResponse(f"<html><body><h1>{status} {reason}</h1></body></html>", status_code=status)


class SandboxServer:
    """One uvicorn server on its own thread; ``port=0`` lets the OS pick a free port.

    ``link`` shapes every request with a :class:`~media_upload.sandbox.link.LinkModel` (bandwidth, latency).
    ``tls`` (a certificate file and its key file) serves HTTPS; with ``tls_client_ca`` (a CA file) too, only
    to clients that show a certificate that CA signed.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        link: LinkModel | None = None,
        tls: tuple[str, str] | None = None,
        tls_client_ca: str | None = None,
    ) -> None:
        if link is not None and link.shapes:
            app = LinkShaper(app, link)
        certificate, key = tls or (None, None)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            ssl_certfile=certificate,
            ssl_keyfile=key,
            ssl_ca_certs=tls_client_ca,
            ssl_cert_reqs=ssl.CERT_REQUIRED if tls_client_ca else ssl.CERT_NONE,
        )
        self.scheme = "https" if tls else "http"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"sandbox-{host}:{port}", daemon=True)
        self.host = host
        self.url = ""

    def start(self, timeout: float = 15.0) -> str:
        """Start serving and return the base URL, or raise when the server cannot bind in time."""
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox server on {self.host} did not start (port taken?)")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"{self.scheme}://{self.host}:{port}"
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
