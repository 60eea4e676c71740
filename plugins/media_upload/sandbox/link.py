"""A link model for the emulators: a per-connection bandwidth and a round-trip latency.

Sellers rehearse a slow link (a warehouse in one country, the gateway in another) and timeouts with it;
the benchmarks measure against it. It is an ASGI middleware, so it shapes what the client sees:

- every request costs one round trip (half before the app sees it, half before the answer starts);
- a connection's first request costs one more round trip (the TCP handshake);
- request and response bodies flow at most ``bandwidth_per_connection`` MB/s (10**6 bytes) each.

The body is throttled where the app reads it; uvicorn then stops reading the socket (its flow control
pauses at 64 KiB), so the client's send blocks as it would on a slow link.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_KNOWN_CONNECTIONS = 4096


@dataclass(frozen=True)
class LinkModel:
    """``bandwidth_per_connection`` in MB/s (0: unlimited); ``latency_ms``: the round-trip time."""

    bandwidth_per_connection: float = 0.0
    latency_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.bandwidth_per_connection < 0 or self.latency_ms < 0:
            raise ValueError(
                f"link model needs bandwidth >= 0 and latency >= 0, got {self.bandwidth_per_connection} MB/s "
                f"and {self.latency_ms} ms"
            )

    @property
    def shapes(self) -> bool:
        return self.bandwidth_per_connection > 0 or self.latency_ms > 0

    @property
    def bytes_per_second(self) -> float:
        return self.bandwidth_per_connection * 1_000_000

    def describe(self) -> str:
        bandwidth = (
            f"{self.bandwidth_per_connection:g} MB/s per connection"
            if self.bandwidth_per_connection
            else "unlimited bandwidth"
        )
        return f"{bandwidth}, {self.latency_ms:g} ms round trip"


class _Meter:
    """Lets ``size`` bytes pass no faster than the link's rate, measured from the first byte."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started: float | None = None
        self.sent = 0

    async def pass_bytes(self, size: int) -> None:
        if self.rate <= 0 or size <= 0:
            return
        now = time.monotonic()
        if self.started is None:
            self.started = now
        self.sent += size
        ahead = self.started + self.sent / self.rate - now
        if ahead > 0:
            await asyncio.sleep(ahead)


class LinkShaper:
    """ASGI middleware applying a :class:`LinkModel` to every HTTP request."""

    def __init__(self, app: ASGIApp, link: LinkModel) -> None:
        self.app = app
        self.link = link
        self._connections: OrderedDict[tuple[str, int], None] = OrderedDict()

    def _new_connection(self, scope: Scope) -> bool:
        client = scope.get("client")
        if not client:
            return False
        key = (str(client[0]), int(client[1]))
        if key in self._connections:
            self._connections.move_to_end(key)
            return False
        self._connections[key] = None
        if len(self._connections) > _KNOWN_CONNECTIONS:
            self._connections.popitem(last=False)
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.link.shapes:
            await self.app(scope, receive, send)
            return
        round_trip = self.link.latency_ms / 1000
        handshake = round_trip if self._new_connection(scope) else 0.0
        await asyncio.sleep(handshake + round_trip / 2)
        upstream, downstream = _Meter(self.link.bytes_per_second), _Meter(self.link.bytes_per_second)

        async def shaped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                await upstream.pass_bytes(len(message.get("body", b"")))
            return message

        async def shaped_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(round_trip / 2)
            elif message["type"] == "http.response.body":
                await downstream.pass_bytes(len(message.get("body", b"")))
            await send(message)

        await self.app(scope, shaped_receive, shaped_send)
