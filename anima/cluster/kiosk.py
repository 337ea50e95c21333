"""A kiosk WebSocket carried over NATS: the gateway holds the socket, a worker the session.

On the worker, :class:`NatsSocket` looks to :class:`anima.protocol.server.Connection` like the
WebSocket it normally serves (``recv``, ``send``, ``close``, ``remote_address``), so the kiosk
protocol (hello, commands, media, limits, errors) is the same code as ``anima kiosk``. On the
gateway, :func:`bridge` pumps one real WebSocket to and from the connection's subjects.
Messages keep their order: NATS delivers one publisher's messages on a subject in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

from anima.cluster import wire

log = logging.getLogger(__name__)

MAX_QUEUED = 64  # client messages waiting for the worker's reader (more: the client is flooding)


def _close_body(code: int, reason: str) -> bytes:
    return f"{code} {reason[:120]}".encode()


def _parse_close(data: bytes) -> tuple[int, str]:
    code, _, reason = data.decode(errors="replace").partition(" ")
    try:
        return int(code), reason
    except ValueError:
        return 1011, "bad close message"


class NatsSocket:
    """The worker's end of a bridged kiosk WebSocket (what ``Connection`` reads and writes)."""

    def __init__(self, nc: NATS, cid: str, client: str) -> None:
        self.nc = nc
        self.cid = cid
        self.remote_address = (client, 0)
        self._inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(MAX_QUEUED)
        self._sub: Any = None
        self._closed: Close | None = None

    async def start(self) -> None:
        """Subscribe to the client's messages (before the gateway is told to send any)."""
        self._sub = await self.nc.subscribe(wire.kiosk_in(self.cid), cb=self._on_msg)

    async def _on_msg(self, msg: Msg) -> None:
        kind = (msg.headers or {}).get(wire.KIND, "t")
        try:
            self._inbox.put_nowait((kind, msg.data))
        except asyncio.QueueFull:  # a flood: the protocol's own rate limit would drop it too
            log.debug("kiosk %s: inbox full, message dropped", self.cid)

    async def recv(self) -> str | bytes:
        """The client's next message; ``ConnectionClosed`` once it has gone."""
        if self._closed is not None:
            raise ConnectionClosedOK(self._closed, None)
        kind, data = await self._inbox.get()
        if kind == "close":
            self._closed = Close(*_parse_close(data))
            raise ConnectionClosedOK(self._closed, None)
        return data if kind == "b" else data.decode(errors="replace")

    async def send(self, data: str | bytes) -> None:
        """One message to the client."""
        if self._closed is not None:
            raise ConnectionClosedError(None, self._closed)
        kind = "b" if isinstance(data, bytes) else "t"
        body = data if isinstance(data, bytes) else data.encode()
        await self.nc.publish(wire.kiosk_out(self.cid), body, headers={wire.KIND: kind})

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the client's socket (through the gateway)."""
        if self._closed is None:
            self._closed = Close(code, reason)
            with contextlib.suppress(asyncio.QueueFull):  # wake a reader waiting on the client
                self._inbox.put_nowait(("close", _close_body(code, reason)))
            with contextlib.suppress(Exception):
                await self.nc.publish(
                    wire.kiosk_out(self.cid),
                    _close_body(code, reason),
                    headers={wire.KIND: "close"},
                )

    async def aclose(self) -> None:
        """Stop listening (after the connection ended)."""
        await self.close(1001, "session ended")
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None


async def bridge(
    nc: NATS,
    cid: str,
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send_text: Callable[[str], Awaitable[None]],
    send_bytes: Callable[[bytes], Awaitable[None]],
    close: Callable[[int, str], Awaitable[None]],
    out_sub: Any,
    lost: asyncio.Event,
) -> str:
    """Pump a gateway WebSocket (ASGI ``receive`` messages) to and from ``cid`` until either
    side closes or the worker is ``lost``; returns why it ended. ``out_sub`` is the already
    made subscription to the worker's messages (made before the worker was asked)."""

    async def upstream() -> str:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code = int(message.get("code") or 1000)
                await nc.publish(
                    wire.kiosk_in(cid),
                    _close_body(code, "client left"),
                    headers={wire.KIND: "close"},
                )
                return "client left"
            if message.get("bytes") is not None:
                await nc.publish(wire.kiosk_in(cid), message["bytes"], headers={wire.KIND: "b"})
            elif message.get("text") is not None:
                await nc.publish(
                    wire.kiosk_in(cid), message["text"].encode(), headers={wire.KIND: "t"}
                )

    async def downstream() -> str:
        async for msg in out_sub.messages:
            kind = (msg.headers or {}).get(wire.KIND, "t")
            if kind == "close":
                code, reason = _parse_close(msg.data)
                await close(code, reason)
                return "worker closed"
            if kind == "b":
                await send_bytes(msg.data)
            else:
                await send_text(msg.data.decode(errors="replace"))
        return "subscription ended"

    async def watchdog() -> str:
        await lost.wait()
        await close(1011, "the worker serving this session was lost; reconnect")
        return "worker lost"

    tasks = [asyncio.create_task(c) for c in (upstream(), downstream(), watchdog())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = next(iter(done))
        return first.result() if not first.cancelled() and first.exception() is None else "error"
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
