"""The real server under :class:`DrainingServer` on a free loopback port (issue-9 tests)."""

from __future__ import annotations

import asyncio
import contextlib
import time

import uvicorn
from aiortc import RTCPeerConnection

from anima.engine import Engine
from anima.server.serving import DrainingServer


@contextlib.asynccontextmanager
async def draining_server(app, drain_seconds: float = 10.0):
    """Yields ``(base_url, server)``; the server is stopped (drained) on exit."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = DrainingServer(config, app, drain_seconds)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.should_exit = True
        await task


async def until(predicate, within: float = 20.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; AssertionError naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def loaded_engine(settings) -> Engine:
    """An engine with every model and the sample avatar loaded (as a warm server has it)."""
    eng = Engine.from_config(settings)
    await eng.load()
    await eng.avatar(None)
    return eng


async def offer_sdp() -> str:
    """A browser-like offer: mic audio out, audio and video in, the events data channel."""
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="recvonly")
    pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp
