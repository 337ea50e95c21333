"""Graceful shutdown (issue 9): SIGTERM drains the real server on loopback.

New sessions are refused ("busy", 503) while HTTP is still served, an open session finishes
the turn it is in and is then closed ("server shutdown"), and a turn longer than
``server.drain_seconds`` is cut at the deadline.
"""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest
import pytest_asyncio
from server_harness import draining_server, loaded_engine, offer_sdp, until

from anima.server.app import create_app
from anima.server.client import RtcClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

LONG = " ".join(["The west wing is open until ten tonight, with guided tours every hour."] * 8)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tmp_path_factory, make_settings):
    settings = make_settings(tmp_path_factory.mktemp("drain"), server={"max_sessions": 4})
    eng = await loaded_engine(settings)
    yield eng
    await eng.aclose()


def index_of(events: list[dict], kind: str, **match) -> int:
    for i, e in enumerate(events):
        if e.get("type") == kind and all(e.get(k) == v for k, v in match.items()):
            return i
    return -1


async def test_sigterm_refuses_new_sessions_and_lets_the_turn_finish(
    engine, tmp_path, make_settings
):
    settings = make_settings(tmp_path, server={"drain_seconds": 30.0})
    app = create_app(settings, engine, host="127.0.0.1")
    sdp = await offer_sdp()
    async with draining_server(app, settings.server.drain_seconds) as (base, server):
        client = RtcClient(base, greet=False)
        try:
            await client.connect()
            client.send({"type": "ask", "text": "What are your opening hours?"})
            await client.wait_event("state", state="speaking")
            sound_before = client.sound_frames
            signal.raise_signal(signal.SIGTERM)  # what systemd / docker stop sends
            await client.wait_event("draining", within=5)
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                refused = await http.post("/api/offer", json={"sdp": sdp})
                health = (await http.get("/api/health")).json()
            assert refused.status_code == 503 and refused.json()["error"] == "busy"
            assert "shutting down" in refused.json()["message"]
            assert health["status"] == "draining" and health["sessions"] == 1
            client.send({"type": "ask", "text": "Where can I park?"})  # no new turns now
            assert "shutting down" in (await client.wait_event("error", code="busy"))["message"]
            closed = await client.wait_event("closed", within=30)
            assert closed["reason"] == "server shutdown"
            # The answer went on to its end (more sound, a return to listening) before closing.
            assert client.sound_frames > sound_before
            events = client.events
            assert 0 <= index_of(events, "draining") < index_of(events, "closed")
            back = [
                i
                for i, e in enumerate(events)
                if e.get("type") == "state" and e["state"] in ("listening", "idle")
            ]
            assert back and back[-1] < index_of(events, "closed")
        finally:
            await client.close()
        await asyncio.wait_for(until(lambda: server.should_exit, what="exit"), 10)
    assert not app.state.registry.sessions
    await until(lambda: not engine.sessions, what="engine sessions closed")


async def test_a_turn_past_the_deadline_is_cut(engine, tmp_path, make_settings):
    settings = make_settings(tmp_path, server={"drain_seconds": 1.0})
    app = create_app(settings, engine, host="127.0.0.1")
    async with draining_server(app, settings.server.drain_seconds) as (base, server):
        client = RtcClient(base, greet=False)
        try:
            await client.connect()
            client.send({"type": "say", "text": LONG})  # about 40 s of speech
            await client.wait_event("state", state="speaking")
            server.begin_drain()
            closed = await client.wait_event("closed", within=15)
            assert closed["reason"] == "server shutdown"
            # Closed while still speaking: no return to listening after the drain began.
            events = client.events
            start = index_of(events, "draining")
            assert start >= 0
            assert not any(
                e.get("type") == "state" and e["state"] != "speaking" for e in events[start:]
            )
        finally:
            await client.close()
    assert not app.state.registry.sessions
    await until(lambda: not engine.sessions, what="engine sessions closed")
