"""The cluster end to end: real nats-server, two ``anima worker`` processes of one slot each,
an ``anima gateway`` process, real aiortc peers and a real kiosk WebSocket client.

The tests run in file order on one cluster (module fixture): spread and busy, a worker that
answers garbage, forged and replayed tokens, the kiosk WebSocket, a NATS outage, a worker
SIGKILLed mid-session, and last a worker drained with SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time

import httpx
import nats
import pytest
import uvicorn
from cluster_harness import OPERATOR
from nats.errors import NoRespondersError
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from anima.cluster import wire
from anima.cluster.gateway import create_gateway
from anima.config import Settings
from anima.server.auth import TokenSigner
from anima.server.client import RtcClient

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {OPERATOR}"}


async def token(url: str) -> tuple[str, str]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(f"{url}/api/token", headers=AUTH)
    r.raise_for_status()
    return r.json()["token"], r.json()["session_id"]


async def describe(url: str, sid: str) -> dict:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{url}/api/sessions/{sid}", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


async def health(url: str) -> dict:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(f"{url}/api/health")).json()


async def until(check, within: float, what: str):
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def free_slots(url: str, n: int, within: float = 20.0) -> None:
    async def ok():
        h = await health(url)
        return h["nats"] and h["free"] >= n

    await until(ok, within, f"{n} free slots")


async def open_session(url: str) -> RtcClient:
    tok, _ = await token(url)
    client = RtcClient(url, token=tok, greet=False, send_audio=False)
    try:
        await client.connect(within=20)
    except BaseException:
        await client.close()
        raise
    return client


async def offer_status(url: str) -> httpx.Response:
    """An offer that is expected to be refused (a plausible SDP is enough for that)."""
    tok, _ = await token(url)
    client = RtcClient(url, token=tok, greet=False, send_audio=False)
    try:
        await client.connect(within=10)
    except ConnectionError as exc:
        code, _, body = str(exc).partition(": ")
        return httpx.Response(int(code), content=body.encode())
    finally:
        await client.close()
    raise AssertionError("the offer was answered")


async def test_spread_busy_and_garbage_worker(cluster):
    url = cluster.url
    await free_slots(url, 2)
    a = await open_session(url)
    b = await open_session(url)
    try:
        wa = (await describe(url, a.session_id))["worker"]
        wb = (await describe(url, b.session_id))["worker"]
        assert {wa, wb} == {"w1", "w2"}, "one session on each worker (most free slots first)"
        # Media flows browser <-> worker directly: frames arrive.
        await until(lambda: a.video_frames > 5 and b.video_frames > 5, 20, "video")

        t0 = time.monotonic()
        r = await offer_status(url)
        assert r.status_code == 503 and r.json()["error"] == "busy"
        assert time.monotonic() - t0 < 5, "busy is answered at once (NoResponders), no hang"

        # A worker that announces free slots but answers garbage: a clear 502, no hang, and
        # the open sessions go on.
        nc = await nats.connect(cluster.nats.url)
        try:
            # Both workers are full: they left the queue group, so nobody answers there.
            t0 = time.monotonic()
            with pytest.raises(NoRespondersError):
                await nc.request(wire.OFFER, b"{}", timeout=5)
            assert time.monotonic() - t0 < 1
            # They are registered as the NATS service "anima", with their capacity.
            info = json.loads((await nc.request("$SRV.INFO.anima", b"", timeout=2)).data)
            assert info["name"] == "anima" and info["metadata"]["capacity"] == "1"
            assert info["metadata"]["worker"] in ("w1", "w2")

            async def garbage(msg):
                await msg.respond(b"\x00\xffnot json")

            await nc.subscribe(wire.direct("bad", "offer"), cb=garbage)
            beat = wire.Heartbeat("bad", "node", "cpu", 5, 5)

            async def beating():
                while True:
                    await nc.publish(wire.heartbeat_subject("bad"), beat.to_bytes())
                    await asyncio.sleep(0.2)

            task = asyncio.create_task(beating())
            try:
                await until(lambda: _workers(url, 3), 5, "the garbage worker is seen")
                r = await offer_status(url)
                assert r.status_code == 502, r.text
                assert r.json()["error"] == "bad_worker"
                assert "not JSON" in r.json()["message"]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        finally:
            await nc.close()
        for c in (a, b):
            assert (await describe(url, c.session_id))["connection"] == "connected"

        # A second, stateless gateway (in this process) configured with a short queue: an
        # offer made while every worker is full waits, and gets the slot a closing session frees.
        settings = Settings.load(cluster.config).overridden({"cluster": {"queue_seconds": 15}})
        async with serving(create_gateway(settings, host="127.0.0.1")) as url2:
            await until(lambda: _workers(url2, 2), 5, "the second gateway sees the workers")
            queued = asyncio.create_task(open_session(url2))
            await asyncio.sleep(1.5)
            assert not queued.done(), "the offer waits in the queue"
            await a.close()
            c = await asyncio.wait_for(queued, 25)
            try:
                assert (await describe(url2, c.session_id))["worker"] == wa
            finally:
                await c.close()
    finally:
        await a.close()
        await b.close()


@contextlib.asynccontextmanager
async def serving(app):
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await task


async def _workers(url: str, n: int) -> bool:
    return (await health(url))["workers"] >= n


async def test_forged_and_replayed_tokens(cluster):
    url = cluster.url
    await free_slots(url, 1)
    forged, _ = TokenSigner(b"not-the-cluster-secret-xxxxxxxx", 60).issue("forgedsession1")
    client = RtcClient(url, token=forged, greet=False, send_audio=False)
    with pytest.raises(ConnectionError, match="401"):
        await client.connect(within=5)
    await client.close()

    tok, _ = await token(url)
    first = RtcClient(url, token=tok, greet=False, send_audio=False)
    await first.connect()
    again = RtcClient(url, token=tok, greet=False, send_audio=False)
    try:
        with pytest.raises(ConnectionError, match="409"):
            await again.connect(within=5)
    finally:
        await again.close()
        await first.close()
    # Closed now; the same token still opens nothing (the book remembers its session).
    await free_slots(url, 2)
    replay = RtcClient(url, token=tok, greet=False, send_audio=False)
    try:
        with pytest.raises(ConnectionError, match="409"):
            await replay.connect(within=5)
    finally:
        await replay.close()


async def test_kiosk_websocket_through_gateway(cluster):
    url = cluster.url
    await free_slots(url, 2)
    tok, _ = await token(url)
    ws_url = url.replace("http", "ws") + f"/ws?token={tok}"
    async with ws_connect(ws_url) as ws:
        await ws.send(
            json.dumps({"type": "hello", "version": 1, "media": "params", "greet": False})
        )
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome", welcome
        await ws.send(json.dumps({"type": "say", "text": "Hello there.", "id": 1}))
        kinds, audio = set(), 0
        async with asyncio.timeout(30):
            while "subtitle" not in kinds or not audio:
                msg = await ws.recv()
                if isinstance(msg, bytes):
                    audio += 1
                else:
                    kinds.add(json.loads(msg)["type"])
        assert "ack" in kinds
        # Bad input inside the bridged protocol: an error frame, the connection goes on.
        await ws.send("{not json")
        async with asyncio.timeout(10):
            while True:
                msg = await ws.recv()
                if isinstance(msg, str) and json.loads(msg)["type"] == "error":
                    break
        await ws.send(json.dumps({"type": "ping", "id": 7}))
        async with asyncio.timeout(10):
            while True:
                msg = await ws.recv()
                if isinstance(msg, str) and json.loads(msg).get("type") == "pong":
                    break
        await ws.send(json.dumps({"type": "bye"}))
    await free_slots(url, 2)


async def test_kiosk_socket_closes_1011_when_its_worker_goes_silent(cluster):
    """The gateway's side of a lost worker for a bridged kiosk socket: a stand-in worker takes
    the connection, then its heartbeats stop; the client is told at once (1011), no hang."""
    url = cluster.url
    nc = await nats.connect(cluster.nats.url)
    beat = wire.Heartbeat("ghost", "node", "cpu", 9, 9)

    async def take(msg):
        cid = json.loads(msg.data)["cid"]
        await msg.respond(wire.encode({"cid": cid, "worker": "ghost"}))

    async def beating():
        while True:
            await nc.publish(wire.heartbeat_subject("ghost"), beat.to_bytes())
            await asyncio.sleep(0.2)

    await nc.subscribe(wire.direct("ghost", "kiosk"), cb=take)
    task = asyncio.create_task(beating())
    try:
        await until(lambda: _workers(url, 3), 5, "the stand-in worker is seen")
        tok, _ = await token(url)
        async with ws_connect(url.replace("http", "ws") + f"/ws?token={tok}") as ws:
            task.cancel()  # the worker dies
            t0 = time.monotonic()
            with pytest.raises(ConnectionClosed) as info:
                async with asyncio.timeout(10):
                    while True:
                        await ws.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011
            assert time.monotonic() - t0 < 5
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await nc.close()


async def test_nats_outage_503_then_recovery(cluster):
    url = cluster.url
    await free_slots(url, 2)
    live = await open_session(url)  # its media never touches NATS: it carries on
    frames = live.video_frames
    cluster.nats.stop()
    try:
        await until(lambda: _down(url), 5, "the gateway to notice")
        t0 = time.monotonic()
        r = await offer_status(url)
        assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
        assert time.monotonic() - t0 < 3
        assert (await health(url))["status"] == "unavailable"  # the gateway still answers
        await asyncio.sleep(1.0)
        assert live.video_frames > frames + 10, "media flows during the outage"
    finally:
        cluster.nats.start()
    try:
        await free_slots(url, 1, within=30)
        assert (await describe(url, live.session_id))["connection"] == "connected"
        client = await open_session(url)
        await client.close()
    finally:
        await live.close()


async def _down(url: str) -> bool:
    return not (await health(url))["nats"]


async def test_sigkill_worker_session_lost_then_other_worker(cluster):
    url = cluster.url
    await free_slots(url, 2)
    victim = await open_session(url)
    try:
        owner = (await describe(url, victim.session_id))["worker"]
        other = "w2" if owner == "w1" else "w1"
        cluster.workers[owner].stop(signal.SIGKILL)
        t0 = time.monotonic()
        answered = 0

        async def lost():
            nonlocal answered
            state = (await describe(url, victim.session_id)).get("state")
            answered += 1  # the gateway keeps answering throughout
            return state == "lost"

        await until(lost, 6, "the session to be reported lost")
        assert time.monotonic() - t0 < 6 and answered >= 1
        fresh = await open_session(url)
        try:
            assert (await describe(url, fresh.session_id))["worker"] == other
        finally:
            await fresh.close()
    finally:
        await victim.close()


async def test_drain_on_sigterm(cluster):
    url = cluster.url
    alive = [n for n, p in cluster.workers.items() if p.proc.poll() is None]
    assert alive, "a worker survives the previous test"
    name = alive[0]
    await free_slots(url, 1)
    client = await open_session(url)
    try:
        assert (await describe(url, client.session_id))["worker"] == name
        cluster.workers[name].proc.send_signal(signal.SIGTERM)
        await client.wait_event("closed", within=15)
        code = await asyncio.to_thread(cluster.workers[name].proc.wait, 20)
        assert code == 0
        record = await describe(url, client.session_id)
        assert record["state"] == "closed" and "shutdown" in record["reason"]
        r = await offer_status(url)
        assert r.status_code == 503 and r.json()["error"] == "busy"
    finally:
        await client.close()
