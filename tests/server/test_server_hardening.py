"""Review fixes of ``anima serve``: token-bucket churn, loopback exemption, second signal,
CORS around the limiter, drive sessions refusing say/ask, ``quiet`` from ``Session.busy``."""

from __future__ import annotations

import asyncio
import logging
import signal

import httpx
import pytest
import pytest_asyncio
import uvicorn
from server_harness import draining_server, loaded_engine, offer_sdp, until

from anima.config import ServerSettings
from anima.server import limits as limits_module
from anima.server.app import create_app
from anima.server.client import RtcClient
from anima.server.limits import ServerLimits, token_key
from anima.server.registry import Registry
from anima.server.rtc import RtcSession
from anima.server.serving import DrainingServer

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # shares the engine's loop
ORIGIN = "https://kiosk.example"


# --- limits: the token buckets ------------------------------------------------------------------


def test_random_tokens_from_a_refused_client_do_not_evict_a_token(monkeypatch):
    monkeypatch.setattr(limits_module, "MAX_KEYS", 4)  # a small LRU, so churn would show
    t = [0.0]
    lim = ServerLimits(ServerSettings(messages_per_second=1, message_burst=2), now=lambda: t[0])
    assert lim.allow("alice", "shared") and lim.allow("bob", "shared")
    assert not lim.allow("carol", "shared")  # the token's bucket is spent
    assert lim.allow("mallory") and lim.allow("mallory") and not lim.allow("mallory")
    for i in range(50):  # over its own rate: none of these may create a token bucket
        assert not lim.allow("mallory", f"random-{i}")
    assert len(lim.tokens) == 1
    assert not lim.allow("dave", "shared")  # still spent: not evicted and re-created full


def test_only_valid_tokens_get_a_bucket():
    lim = ServerLimits(ServerSettings(messages_per_second=100, message_burst=100))
    for i in range(20):
        assert lim.allow("mallory", f"forged-{i}", valid=lambda text: text == "genuine")
    assert len(lim.tokens) == 0  # the requests were allowed (the route refuses them), no buckets
    assert lim.allow("alice", "genuine", valid=lambda text: text == "genuine")
    assert len(lim.tokens) == 1 and token_key("genuine") in lim.tokens._buckets


# --- limits: who is this machine --------------------------------------------------------------


def test_loopback_exemption_is_judged_on_the_peer(caplog):
    wide = ServerLimits(ServerSettings(trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"]))
    assert wide.local("127.0.0.1", None) and wide.local("::1", None)
    # A believed header names whoever the proxy saw, even when it says 127.0.0.1.
    assert wide.client("10.0.0.7", "127.0.0.1") == "127.0.0.1"
    assert not wide.local("10.0.0.7", "127.0.0.1")
    assert not wide.local("127.0.0.1", "127.0.0.1")
    assert not wide.local("10.0.0.7", None)  # not loopback at all
    plain = ServerLimits(ServerSettings())
    with caplog.at_level(logging.WARNING, logger="anima.server.limits"):
        assert plain.client("127.0.0.1", "203.0.113.9") == "127.0.0.1"  # the header ignored
        assert plain.client("127.0.0.1", "198.51.100.2") == "127.0.0.1"
        assert plain.client("192.0.2.4", "203.0.113.9") == "192.0.2.4"
    warnings = [r for r in caplog.records if "trusted_proxies is empty" in r.getMessage()]
    assert len(warnings) == 1  # once, and only for a loopback peer
    # Unlisted, the same-host proxy's clients are all "this machine" (what the warning says).
    assert plain.local("127.0.0.1", "203.0.113.9")


# --- a second signal --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_second_signal_right_after_the_first_cuts_the_drain(make_settings, tmp_path):
    settings = make_settings(tmp_path)
    app = create_app(settings, object(), host="127.0.0.1")
    registry = Registry(None, settings)
    app.state.registry = registry
    server = DrainingServer(uvicorn.Config(app, log_level="warning"), app, drain_seconds=30.0)
    server._loop = asyncio.get_running_loop()  # what serve() records
    server.handle_exit(signal.SIGTERM, None)
    assert server.drain_requested and not server.should_exit  # the first one drains
    server.handle_exit(signal.SIGTERM, None)  # before the loop ran the first one's callback
    assert server.should_exit  # the second one exits now, as plain uvicorn
    for _ in range(3):
        await asyncio.sleep(0)
    assert registry._deadline == 0.0  # hurried: the lifespan's drain closes all at once
    assert server._drain is not None and server._drain.cancelled()


# --- CORS outside the limiter (no engine needed: the limiter answers first) ---------------------


@pytest.mark.asyncio
async def test_a_429_carries_cors_and_preflights_do_not_spend(make_settings, tmp_path):
    settings = make_settings(
        tmp_path,
        server={"messages_per_second": 0.5, "message_burst": 2},
        webrtc={"cors_origins": [ORIGIN]},
    )
    app = create_app(settings, object(), host="127.0.0.1")
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        for _ in range(5):
            r = await http.options("/api/token", headers=preflight)
            assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
        assert len(app.state.limits.clients) == 0  # no bucket touched
        codes = [(await http.post("/api/token", headers={"Origin": ORIGIN})) for _ in range(3)]
        assert [r.status_code for r in codes] == [200, 200, 429]
        limited = codes[-1]
        assert limited.json()["error"] == "rate_limited"
        assert limited.headers["access-control-allow-origin"] == ORIGIN


@pytest.mark.asyncio
async def test_forged_tokens_get_no_bucket_when_tokens_are_required(make_settings, tmp_path):
    settings = make_settings(
        tmp_path,
        server={"messages_per_second": 100, "message_burst": 100},
        webrtc={"require_token": True, "operator_key": "op-key-123"},
    )
    app = create_app(settings, object(), host="127.0.0.1")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        for i in range(10):
            r = await http.post("/api/token", headers={"Authorization": f"Bearer junk-{i}"})
            assert r.status_code == 401
        assert len(app.state.limits.tokens) == 0
        r = await http.post("/api/token", headers={"Authorization": "Bearer op-key-123"})
        assert r.status_code == 200
        token = r.json()["token"]
        assert len(app.state.limits.tokens) == 1  # the operator key has its bucket
        await http.get("/api/sessions/nope", headers={"Authorization": f"Bearer {token}"})
        assert len(app.state.limits.tokens) == 2  # and so has a genuine session token


# --- the real server --------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tmp_path_factory, make_settings):
    settings = make_settings(tmp_path_factory.mktemp("hard"), server={"max_sessions": 4})
    eng = await loaded_engine(settings)
    yield eng
    await eng.aclose()


@in_module_loop
async def test_spoofed_loopback_forwarded_for_is_capped(engine, tmp_path, make_settings):
    settings = make_settings(
        tmp_path,
        server={"max_sessions_per_client": 1, "trusted_proxies": ["127.0.0.0/8"]},
        webrtc={"connect_timeout": 30.0},
    )
    app = create_app(settings, engine, host="127.0.0.1")
    sdp = await offer_sdp()
    spoof = {"X-Forwarded-For": "127.0.0.1"}
    opened = []
    async with (
        draining_server(app) as (base, _server),
        httpx.AsyncClient(base_url=base, timeout=20) as http,
    ):
        try:
            first = await http.post("/api/offer", json={"sdp": sdp, "greet": False}, headers=spoof)
            assert first.status_code == 200
            opened.append(first.json()["session_id"])
            second = await http.post("/api/offer", json={"sdp": sdp, "greet": False}, headers=spoof)
            assert second.status_code == 429 and second.json()["error"] == "busy"
            # This machine itself (no header) is still not capped.
            for _ in range(2):
                r = await http.post("/api/offer", json={"sdp": sdp, "greet": False})
                assert r.status_code == 200
                opened.append(r.json()["session_id"])
        finally:
            for sid in opened:
                await http.delete(f"/api/sessions/{sid}")
        assert len(app.state.limits.slots) == 0
    await until(lambda: not engine.sessions, what="sessions closed")


@in_module_loop
async def test_drive_session_refuses_say_and_ask(engine, tmp_path, make_settings):
    app = create_app(make_settings(tmp_path), engine, host="127.0.0.1")
    async with draining_server(app) as (base, _server):
        client = RtcClient(base, drive=True, greet=False, send_audio=False)
        try:
            await client.connect()
            async with httpx.AsyncClient(base_url=base, timeout=10) as http:
                for verb in ("say", "ask"):
                    r = await http.post(
                        f"/api/sessions/{client.session_id}/{verb}", json={"text": "Hello"}
                    )
                    assert r.status_code == 409, r.text
                    assert r.json() == {
                        "error": "unavailable",
                        "message": f"'{verb}' is not available in a drive session",
                    }
            for verb in ("say", "ask"):
                client.send({"type": verb, "text": "Hello there"})
                err = await client.wait_event("error", code="unavailable", within=10)
                assert verb in err["message"] and err["stage"] == "input"
            client.send({"type": "ping", "t": 1})  # the conversation carries on
            await client.wait_event("pong", t=1)
            assert not [e for e in client.events if e["type"] == "closed"]
        finally:
            await client.close()
    await until(lambda: not engine.sessions, what="session closed")


@in_module_loop
async def test_quiet_follows_the_sessions_busy(engine):
    rtc = RtcSession("q1", engine.session(None, greet=False), ice=[])
    try:
        assert rtc.quiet  # not started: nothing in flight
        await rtc.session.start()
        rtc._spawn(rtc._pump(), "pump")  # what answer() starts: frames must be consumed
        await rtc.session.say("Hello.")
        assert rtc.session.busy and not rtc.quiet  # queued: not quiet even while "listening"
        await until(lambda: rtc.quiet, what="the reply to finish")
        assert not rtc.session.busy
        rtc._commands = 1  # a data-channel request still being carried out
        assert not rtc.quiet
        rtc._commands = 0
    finally:
        await rtc.close("test over")
    await until(lambda: not engine.sessions, what="session closed")
