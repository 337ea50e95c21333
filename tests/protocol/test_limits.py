"""Per-client and per-session limits of the kiosk server: message rate, speech, sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json

import numpy as np
import pytest
from conftest import hello, of, recv_until
from websockets.asyncio.client import connect

from anima.protocol import ProtocolServer
from anima.ratelimit import ClientSlots, TokenBucket


@contextlib.asynccontextmanager
async def limited_server(engine, monkeypatch, **limits):
    for key, value in limits.items():
        monkeypatch.setattr(engine.settings.server, key, value)
    srv = ProtocolServer(engine, "127.0.0.1", 0)
    await srv.start()
    try:
        yield f"ws://127.0.0.1:{srv.port}", srv
    finally:
        await srv.aclose()
        for _ in range(100):  # connections close their sessions as they go
            if not engine.sessions:
                break
            await asyncio.sleep(0.05)


def test_token_bucket_and_slots_with_an_injected_clock():
    t = [0.0]
    bucket = TokenBucket(rate=2, burst=3, now=lambda: t[0])
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    t[0] = 0.5  # one token back
    assert bucket.take() and not bucket.take()
    t[0] = 100.0  # never more than the burst
    assert sum(bucket.take() for _ in range(10)) == 3
    slots = ClientSlots(2)
    assert slots.acquire("a") and slots.acquire("a") and not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.acquire("a")
    for _ in range(3):
        slots.release("a")
        slots.release("b")
    assert len(slots) == 0 and slots.held("a") == 0
    with pytest.raises(ValueError):
        TokenBucket(0, 1)


async def test_flood_is_dropped_with_one_error_and_others_unaffected(engine, monkeypatch):
    async with limited_server(engine, monkeypatch, messages_per_second=2.0, message_burst=10) as (
        u,
        _,
    ):
        async with connect(u) as flood, connect(u) as calm:
            for i in range(60):
                await flood.send(json.dumps({"type": "ping", "id": i}))
            await flood.send(json.dumps({"type": "ping", "id": "last"}))
            # The other client is served at once, while the flood is being dropped.
            await calm.send(json.dumps({"type": "ping", "id": "calm"}))
            assert (await recv_until(calm, of("pong")))[-1]["id"] == "calm"
            msgs = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    while True:
                        msgs.append(json.loads(await flood.recv()))
            pongs = [m for m in msgs if m["type"] == "pong"]
            errors = [m for m in msgs if m["type"] == "error"]
            assert 10 <= len(pongs) < 20  # the burst (plus what refilled meanwhile), no more
            assert len(errors) == 1 and errors[0]["code"] == "rate_limited"
            assert errors[0]["fatal"] is False
            await asyncio.sleep(1.0)  # tokens come back: the connection is usable again
            await flood.send(json.dumps({"type": "ping", "id": "again"}))
            assert (await recv_until(flood, of("pong")))[-1]["id"] == "again"


async def test_speech_seconds_per_session_are_capped(engine, monkeypatch):
    async with limited_server(engine, monkeypatch, max_speech_seconds=0.5) as (u, _):
        async with connect(u) as ws:
            assert (await hello(ws))["type"] == "welcome"
            chunk = np.zeros(1600, np.int16).tobytes()  # 0.1 s at 16 kHz
            for _ in range(10):
                await ws.send(chunk)
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            msgs = await recv_until(ws, of("pong"))
            errors = [m for m in msgs if m.get("type") == "error"]
            assert [e["code"] for e in errors] == ["speech_limit"]
            assert "0.5 s" in errors[0]["message"] and errors[0]["fatal"] is False


async def test_sessions_per_client_address_are_capped(engine, monkeypatch):
    async with limited_server(engine, monkeypatch, max_sessions_per_client=1) as (u, srv):
        async with connect(u) as a:
            assert (await hello(a))["type"] == "welcome"
            async with connect(u) as b:
                err = await hello(b)
                assert err["type"] == "error" and err["code"] == "busy" and err["fatal"]
                assert "this client already has 1" in err["message"]
            await a.send(json.dumps({"type": "bye"}))
            await recv_until(a, of("bye"))
        for _ in range(100):
            if srv.clients.held("127.0.0.1") == 0:
                break
            await asyncio.sleep(0.05)
        async with connect(u) as c:  # the slot came back when the first client left
            assert (await hello(c))["type"] == "welcome"
