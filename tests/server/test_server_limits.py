"""Per-client limits of ``anima serve`` (issue 9) against the real server on loopback.

HTTP request rate per client address and per token, data-channel message rate, speech
seconds per session, sessions per client address, and X-Forwarded-For honoured only from
``server.trusted_proxies`` (both ways).
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest
import pytest_asyncio
from server_harness import draining_server, loaded_engine, offer_sdp, until

from anima.config import ServerSettings
from anima.ratelimit import ClientSlots
from anima.server.app import create_app
from anima.server.client import RtcClient
from anima.server.limits import ServerLimits, client_address, parse_proxies


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tmp_path_factory, make_settings):
    settings = make_settings(tmp_path_factory.mktemp("lim"), server={"max_sessions": 4})
    eng = await loaded_engine(settings)
    yield eng
    await eng.aclose()


@contextlib.asynccontextmanager
async def serve(app):
    """The app under DrainingServer (uvicorn's own X-Forwarded-For handling off)."""
    async with draining_server(app) as (base, _server):
        yield base


# --- who the client is ------------------------------------------------------------------------


def test_forwarded_for_ignored_without_trusted_proxies():
    assert client_address("10.0.0.7", "203.0.113.9", []) == "10.0.0.7"
    assert client_address("10.0.0.7", None, parse_proxies(["10.0.0.0/8"])) == "10.0.0.7"


def test_forwarded_for_from_a_trusted_proxy_names_the_client():
    proxies = parse_proxies(["10.0.0.0/8", "::1"])
    # One proxy: the address it saw.
    assert client_address("10.0.0.7", "203.0.113.9", proxies) == "203.0.113.9"
    # Entries left of the first untrusted hop were written by the client: not believed.
    assert client_address("10.0.0.7", "1.2.3.4, 203.0.113.9", proxies) == "203.0.113.9"
    # A chain of trusted proxies is walked through.
    assert client_address("10.0.0.7", "198.51.100.3, 10.0.0.9", proxies) == "198.51.100.3"
    # Ports, IPv6 and IPv4-mapped forms are normalised; junk stops the walk.
    assert client_address("::1", "[2001:db8::5]:443", proxies) == "2001:db8::5"
    assert client_address("10.0.0.7", "::ffff:192.0.2.1", proxies) == "192.0.2.1"
    assert client_address("10.0.0.7", "203.0.113.9:5000", proxies) == "203.0.113.9"
    assert client_address("10.0.0.7", "not-an-ip", proxies) == "10.0.0.7"
    # Not from a trusted proxy: the header is the client's own claim, ignored.
    assert client_address("192.0.2.50", "203.0.113.9", proxies) == "192.0.2.50"


def test_bucket_per_client_and_per_token_with_a_clock():
    t = [0.0]
    lim = ServerLimits(ServerSettings(messages_per_second=1, message_burst=2), now=lambda: t[0])
    assert lim.allow("a") and lim.allow("a") and not lim.allow("a")
    assert lim.allow("b", "tok1")  # another client is unaffected
    assert lim.allow("c", "tok1") and not lim.allow("d", "tok1")  # the token's own bucket
    t[0] = 1.0
    assert lim.allow("a")  # refilled at the configured rate
    slots = ClientSlots(1)
    assert slots.acquire("x") and not slots.acquire("x")


# --- the real server --------------------------------------------------------------------------

in_module_loop = pytest.mark.asyncio(loop_scope="module")  # shares the engine's loop


@in_module_loop
async def test_http_rate_limit_keys_on_the_real_client(engine, tmp_path, make_settings):
    async def burst(http, headers) -> list[int]:
        return [(await http.get("/api/config", headers=headers)).status_code for _ in range(8)]

    for trusted in ([], ["127.0.0.1"]):
        settings = make_settings(
            tmp_path,
            server={"messages_per_second": 0.5, "message_burst": 5, "trusted_proxies": trusted},
        )
        app = create_app(settings, engine, host="127.0.0.1")
        async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
            codes = await burst(http, {"X-Forwarded-For": "203.0.113.1"})
            assert codes[:5] == [200] * 5 and codes[5:] == [429] * 3
            r = await http.get("/api/config", headers={"X-Forwarded-For": "203.0.113.1"})
            assert r.json()["error"] == "rate_limited" and int(r.headers["retry-after"]) >= 1
            # Another client behind the same proxy:
            other = await burst(http, {"X-Forwarded-For": "198.51.100.2"})
            if trusted:
                assert other[:5] == [200] * 5  # its own bucket: not starved by the first
            else:
                assert other == [429] * 8  # the header is ignored: same peer, same bucket
            assert (await http.get("/api/health")).status_code == 200  # health never limited


@in_module_loop
async def test_token_bucket_is_shared_across_addresses(engine, tmp_path, make_settings):
    settings = make_settings(
        tmp_path,
        server={"messages_per_second": 0.5, "message_burst": 3, "trusted_proxies": ["127.0.0.1"]},
    )
    app = create_app(settings, engine, host="127.0.0.1")
    async with serve(app) as base, httpx.AsyncClient(base_url=base) as http:
        codes = []
        for i in range(5):  # five addresses, one token: the token's bucket caps them together
            r = await http.get(
                "/api/config",
                headers={"X-Forwarded-For": f"203.0.113.{i + 10}", "Authorization": "Bearer t1"},
            )
            codes.append(r.status_code)
        assert codes == [200, 200, 200, 429, 429]


@in_module_loop
async def test_sessions_per_client_address(engine, tmp_path, make_settings):
    settings = make_settings(
        tmp_path,
        server={"max_sessions_per_client": 1, "trusted_proxies": ["127.0.0.1"]},
        webrtc={"connect_timeout": 30.0},
    )
    app = create_app(settings, engine, host="127.0.0.1")
    sdp = await offer_sdp()
    alice = {"X-Forwarded-For": "203.0.113.5"}
    async with serve(app) as base, httpx.AsyncClient(base_url=base, timeout=20) as http:
        first = await http.post("/api/offer", json={"sdp": sdp, "greet": False}, headers=alice)
        assert first.status_code == 200
        second = await http.post("/api/offer", json={"sdp": sdp, "greet": False}, headers=alice)
        assert second.status_code == 429 and second.json()["error"] == "busy"
        assert "1 open sessions" in second.json()["message"]
        bob = await http.post(
            "/api/offer",
            json={"sdp": sdp, "greet": False},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert bob.status_code == 200  # another client is served
        # Alice leaves: her slot is free again.
        sid = first.json()["session_id"]
        assert (await http.delete(f"/api/sessions/{sid}")).status_code == 204
        again = await http.post("/api/offer", json={"sdp": sdp, "greet": False}, headers=alice)
        assert again.status_code == 200
        for r in (bob, again):
            await http.delete(f"/api/sessions/{r.json()['session_id']}")
        assert len(app.state.limits.slots) == 0  # every slot given back
    await until(lambda: not engine.sessions, what="sessions closed")


@contextlib.asynccontextmanager
async def connected(url: str, **options):
    client = RtcClient(url, **options)
    try:
        await client.connect()
        yield client
    finally:
        await client.close()


@in_module_loop
async def test_data_channel_rate_and_speech_limit(engine, tmp_path, make_settings):
    settings = make_settings(
        tmp_path,
        server={"messages_per_second": 2, "message_burst": 5, "max_speech_seconds": 0.5},
    )
    app = create_app(settings, engine, host="127.0.0.1")
    async with serve(app) as base, connected(base, greet=False) as client:
        # The microphone sends silence all the time: past 0.5 s the session is told once.
        err = await client.wait_event("error", code="speech_limit", within=10)
        assert "0.5 s of audio" in err["message"]
        rtc = next(iter(app.state.registry.sessions.values()))
        await asyncio.sleep(0.5)
        assert rtc.speech_seconds < 0.6  # nothing counted (or pushed) after the limit
        # A flood of 30 pings: at most the burst (plus refill) is answered, one error told.
        for i in range(30):
            client.send({"type": "ping", "t": i})
        await client.wait_event("error", code="rate_limited", within=10)
        await asyncio.sleep(1.0)
        pongs = [e for e in client.events if e["type"] == "pong"]
        limited = [e for e in client.events if e.get("code") == "rate_limited"]
        assert 4 <= len(pongs) <= 9 and len(limited) == 1
        client.send({"type": "ping", "t": "later"})  # served again after a pause
        assert (await client.wait_event("pong", t="later"))["t"] == "later"
        assert [e for e in client.events if e.get("code") == "speech_limit"] == [err]
    await until(lambda: not engine.sessions, what="session closed")
