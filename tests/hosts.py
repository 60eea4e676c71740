"""Web hosts on loopback for source tests: a file host that records every request it receives (who asked
for what, with which headers), optionally over TLS and behind Basic auth."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from media_upload.sandbox.server import SandboxServer


@dataclass
class RecordingHost:
    """Serves ``folder`` (with Range requests) and keeps every request: method, path, query, headers."""

    folder: Path
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)

    def carrying(self, *secrets: str) -> list[dict[str, Any]]:
        """The requests that carried an ``Authorization`` header or any of ``secrets`` (also base64'd)."""
        wanted = {s for s in secrets if s} | {base64.b64encode(s.encode()).decode() for s in secrets if s}
        return [
            request
            for request in self.requests
            if "authorization" in request["headers"] or any(s in repr(request) for s in wanted)
        ]


@contextmanager
def recording_host(
    folder: Path, *, tls: tuple[str, str] | None = None, basic_auth: tuple[str, str] | None = None
) -> Iterator[RecordingHost]:
    folder.mkdir(parents=True, exist_ok=True)
    host = RecordingHost(folder)
    files = Starlette(routes=[Mount("/", app=StaticFiles(directory=folder))])  # a 404 for a missing file
    expected = "Basic " + base64.b64encode(":".join(basic_auth).encode()).decode() if basic_auth else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        host.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "headers": {name.lower(): value for name, value in request.headers.items()},
            }
        )
        if expected and request.headers.get("authorization") != expected:
            await Response("who are you?", status_code=401)(scope, receive, send)
            return
        await files(scope, receive, send)

    server = SandboxServer(app, tls=tls)
    host.url = server.start()
    try:
        yield host
    finally:
        server.stop()
