"""The offline guarantee: the whole engine runs with every outbound connection refused.

The guard refuses any socket connection (and name lookup) that is not loopback, records the
attempt, and lets the test's own WebSocket on 127.0.0.1 through. The engine is created and its
models loaded under the guard.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket

import cv2
import numpy as np
import pytest
from engine_helpers import collect, make_engine, speech
from websockets.asyncio.client import connect

from anima.asr.audio import resample
from anima.events import Subtitle, TurnLatency
from anima.protocol import ProtocolServer
from anima.protocol.messages import KIND_AUDIO, KIND_VIDEO, unpack_media


def _loopback(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths are local
        return True
    host = address[0]
    if isinstance(host, bytes):
        host = host.decode()
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it would need DNS, which is the network


@pytest.fixture
def no_network(monkeypatch):
    refused: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def guarded_connect(self, address):
        if not _loopback(address):
            refused.append(address)
            raise ConnectionRefusedError(errno.ECONNREFUSED, f"offline test: {address} refused")
        return real_connect(self, address)

    def guarded_connect_ex(self, address):
        if not _loopback(address):
            refused.append(address)
            return errno.ECONNREFUSED
        return real_connect_ex(self, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _loopback((host,)):
            refused.append(host)
            raise socket.gaierror(socket.EAI_NONAME, f"offline test: no lookup of {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    return refused


async def test_whole_engine_over_the_protocol_with_the_network_refused(no_network, tmp_path):
    with pytest.raises(OSError):
        socket.create_connection(("93.184.216.34", 80), timeout=2)
    with pytest.raises(OSError):
        socket.create_connection(("example.com", 80), timeout=2)
    probes = len(no_network)
    assert probes == 2

    engine = make_engine(tmp_path)
    await engine.load()
    try:
        async with ProtocolServer(engine, "127.0.0.1", 0) as srv:
            async with connect(f"ws://127.0.0.1:{srv.port}") as ws:
                await ws.send(json.dumps({"type": "hello", "version": 1, "media": "video"}))
                welcome = json.loads(await ws.recv())
                assert welcome["type"] == "welcome"
                mic = resample(speech(engine, "Is there free wifi?", tail=1.5), 22050)
                pcm = (mic * 32767).astype("<i2")
                for i in range(0, len(pcm), 3200):
                    await ws.send(pcm[i : i + 3200].tobytes())
                final = subtitle = jpeg = None
                spoken = 0
                while not (final and subtitle and jpeg is not None and spoken > 5):
                    msg = await ws.recv()
                    if isinstance(msg, bytes):
                        kind, flags, _, _, payload = unpack_media(msg)
                        if kind == KIND_VIDEO:
                            jpeg = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_COLOR)
                        elif kind == KIND_AUDIO and flags & 1:
                            spoken += np.abs(np.frombuffer(payload, "<i2")).max() > 500
                        continue
                    m = json.loads(msg)
                    if m["type"] == "transcript" and m["final"]:
                        final = m["text"]
                    elif m["type"] == "subtitle" and final:
                        subtitle = m["text"]
                assert "wifi" in final.lower()
                assert jpeg.shape == (128, 128, 3)
    finally:
        await engine.aclose()
    # Loading, listening, answering, speaking and rendering tried no outside connection.
    assert len(no_network) == probes


@pytest.mark.slow
async def test_embedded_gguf_brain_answers_offline(no_network, tmp_path):
    engine = make_engine(tmp_path, brain={"backend": "gguf", "max_tokens": 40})
    await engine.load()
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()
    try:
        await s.ask("Hello! Who are you?")
        items = await collect(s, lambda i, _: isinstance(i, TurnLatency), timeout=150)
        assert any(isinstance(i, Subtitle) and i.text.strip() for i in items)
        assert "first_phrase" in items[-1].parts
    finally:
        await s.aclose()
        await engine.aclose()
    assert no_network == []
