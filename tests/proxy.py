"""A forward proxy on loopback, as sellers' workers reach the internet through: CONNECT tunnels (https) and
absolute-form requests (http), optional Basic proxy authentication, and a record of everything it was asked.

``hosts`` gives names only the proxy resolves (``lazada.test`` → 127.0.0.1): an emulator addressed by such
a name can be reached through the proxy and in no other way, so a request that bypassed the proxy fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

#: Hop-by-hop headers a proxy does not pass on (RFC 9110 §7.6.1), and its own.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"}


@dataclass(frozen=True)
class Relayed:
    """One request the proxy received: ``CONNECT`` (a tunnel) or an absolute-form request, its target
    ``host:port``, the path (absolute-form only), the headers it saw (lower-case names), and whether it let
    it through."""

    method: str
    target: str
    path: str | None
    headers: dict[str, str]
    allowed: bool

    def carries(self, *secrets: str) -> bool:
        """True when a header carries Basic auth or any of ``secrets`` (plain or base64'd)."""
        values = " ".join(f"{name}: {value}" for name, value in self.headers.items())
        encoded = [base64.b64encode(secret.encode()).decode() for secret in secrets if secret]
        return "basic " in self.headers.get("authorization", "").lower() or any(
            secret in values for secret in [*secrets, *encoded] if secret
        )


@dataclass
class ForwardProxy:
    hosts: Mapping[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = None
    relayed: list[Relayed] = field(default_factory=list)
    port: int = 0

    def url(self, credentials: tuple[str, str] | None = None) -> str:
        """The proxy's URL, with ``credentials`` (default: the ones it asks for) as its user part."""
        user, password = credentials or self.credentials or ("", "")
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def targets(self, method: str | None = None) -> set[str]:
        return {r.target for r in self.relayed if r.allowed and (method is None or r.method == method)}

    # ------------------------------------------------------------------ serving

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return headers.get("proxy-authorization", "") == f"Basic {expected}"

    async def _open(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.hosts.get(host, host), port)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
            method, target, version = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines)
            }
            absolute = urlsplit(target) if method != "CONNECT" else None
            if absolute is not None:
                host, port = absolute.hostname or "", absolute.port or 80
            else:
                host, _, port_text = target.rpartition(":")
                port = int(port_text)
            allowed = self._authorised(headers)
            path = None
            if absolute is not None:
                path = absolute.path + (f"?{absolute.query}" if absolute.query else "")
            self.relayed.append(Relayed(method, f"{host}:{port}", path, headers, allowed))
            if not allowed:
                writer.write(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="test proxy"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
                )
                await writer.drain()
                return
            try:
                up_reader, up_writer = await self._open(host, port)
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                await writer.drain()
                return
            if absolute is None:
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
                return
            await self._forward(method, path or "/", version, headers, reader, up_reader, up_writer, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    async def _forward(
        self,
        method: str,
        path: str,
        version: str,
        headers: Mapping[str, str],
        reader: asyncio.StreamReader,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        writer: asyncio.StreamWriter,
    ) -> None:
        """One absolute-form request, origin-form upstream; both connections close after the answer."""
        kept = [f"{name}: {value}" for name, value in headers.items() if name not in _HOP_BY_HOP]
        up_writer.write(
            "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""]).encode()
        )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await _relay_chunks(reader, up_writer)
        else:
            await _relay(reader, up_writer, int(headers.get("content-length", "0")))
        answer = await up_reader.readuntil(b"\r\n\r\n")
        status, *answer_lines = answer.decode("latin-1").split("\r\n")[:-2]
        answer_kept = [
            line for line in answer_lines if line.partition(":")[0].strip().lower() not in _HOP_BY_HOP
        ]
        writer.write("\r\n".join([status, *answer_kept, "Connection: close", "", ""]).encode("latin-1"))
        await _pipe(up_reader, writer)


async def _relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int) -> None:
    while size > 0:
        data = await reader.read(min(size, 65536))
        if not data:
            raise ConnectionError("the client closed the connection mid-body")
        writer.write(data)
        await writer.drain()
        size -= len(data)


async def _relay_chunks(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A chunked body as it came, up to its last chunk and trailers."""
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";")[0], 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                writer.write(trailer)
            writer.write(b"\r\n")
            await writer.drain()
            return
        await _relay(reader, writer, size + 2)  # the chunk and its CRLF


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@contextlib.contextmanager
def forward_proxy(
    *, hosts: Mapping[str, str] | None = None, credentials: tuple[str, str] | None = None
) -> Iterator[ForwardProxy]:
    """Serve a :class:`ForwardProxy` on a free loopback port, on a thread of its own, until the block ends."""
    proxy = ForwardProxy(dict(hosts or {}), credentials)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        tasks: set[asyncio.Task[None]] = set()

        def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = loop.create_task(proxy.handle(reader, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        proxy.port = server.sockets[0].getsockname()[1]
        state["stop"] = asyncio.Event()
        started.set()
        await state["stop"].wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), name="test-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the test proxy did not start on loopback within 10 s")
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(state["stop"].set)
        thread.join(10)
        loop.close()


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed): connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
