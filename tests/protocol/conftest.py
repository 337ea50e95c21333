"""A real protocol server on loopback (port 0) over a shared kb-brain engine, and client helpers."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from engine_helpers import make_engine  # noqa: E402  (the engine tests' factory)

from anima.protocol import ProtocolServer  # noqa: E402
from anima.protocol.messages import unpack_media  # noqa: E402

LIMIT = 4096  # ws_max_message_bytes of the test server


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = make_engine(
        tmp_path_factory.mktemp("proto"),
        server={"max_sessions": 2, "ws_max_message_bytes": LIMIT, "idle_timeout": 30},
    )
    asyncio.run(eng.load())
    yield eng
    asyncio.run(eng.aclose())


@pytest.fixture
async def server(engine):
    srv = ProtocolServer(engine, "127.0.0.1", 0)
    await srv.start()
    yield srv
    await srv.aclose()
    for _ in range(50):  # connections close their sessions as they go
        if not engine.sessions:
            break
        await asyncio.sleep(0.05)


def url(server) -> str:
    return f"ws://127.0.0.1:{server.port}"


def decode(msg: str | bytes) -> dict[str, Any]:
    """A server message as a dict; binary media as {"type": "media", kind, flags, turn, pts, payload}."""
    if isinstance(msg, bytes):
        kind, flags, turn, pts, payload = unpack_media(msg)
        return {
            "type": "media",
            "kind": kind,
            "flags": flags,
            "turn": turn,
            "pts": pts,
            "payload": payload,
        }
    return json.loads(msg)


async def recv_until(
    ws,
    pred: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,  # noqa: ASYNC109
) -> list[dict[str, Any]]:
    """Messages up to and including the first where ``pred`` is true."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = decode(await ws.recv())
            out.append(msg)
            if pred(msg):
                return out


def of(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    """Predicate: a message of ``type`` kind with these field values."""
    return lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items())


async def hello(ws, **fields: Any) -> dict[str, Any]:
    """Send hello (events mode, no greeting unless told) and return the welcome."""
    msg = {"type": "hello", "version": 1, "media": "events", "greet": False, **fields}
    await ws.send(json.dumps(msg))
    return (await recv_until(ws, lambda m: m["type"] in ("welcome", "error")))[-1]
