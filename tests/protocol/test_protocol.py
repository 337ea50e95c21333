"""The kiosk WebSocket protocol with a real ``websockets`` client over loopback."""

from __future__ import annotations

import asyncio
import json

import cv2
import numpy as np
import pytest
from conftest import LIMIT, decode, hello, of, recv_until, url
from engine_helpers import speech
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from anima.asr.audio import resample
from anima.protocol.messages import HEADER, KIND_AUDIO, KIND_VIDEO


async def test_hello_welcome_and_every_command_in_events_mode(server):
    async with connect(url(server)) as ws:
        welcome = await hello(ws)
        assert welcome["type"] == "welcome" and welcome["version"] == 1
        assert welcome["media"] == "events" and welcome["output"]["audio"] is None
        assert welcome["limits"]["max_message_bytes"] == LIMIT
        assert (await recv_until(ws, of("state")))[-1]["state"] == "listening"

        await ws.send(json.dumps({"type": "ping", "id": 7}))
        assert (await recv_until(ws, of("pong")))[-1]["id"] == 7

        await ws.send(json.dumps({"type": "say", "text": "Good morning.", "id": "a"}))
        got = await recv_until(ws, of("subtitle"))
        assert {"type": "ack", "command": "say", "id": "a"} in got
        assert got[-1]["text"] == "Good morning." and got[-1]["turn"] >= 1
        await recv_until(ws, of("state", state="listening"))

        await ws.send(json.dumps({"type": "ask", "text": "Where are the toilets?"}))
        got = await recv_until(ws, of("latency"))
        assert any(m["type"] == "subtitle" and "toilets" in m["text"] for m in got)
        assert {"first_phrase", "total"} <= set(got[-1]["parts"])

        await ws.send(json.dumps({"type": "interrupt"}))
        got = await both(ws, of("ack", command="interrupt"), of("interrupted"))
        cut = next(m for m in got if m["type"] == "interrupted")
        assert cut["reason"] == "user" and 0 <= cut["heard_chars"] < 100

        await ws.send(json.dumps({"type": "set_persona", "persona": {"name": "Robin"}}))
        await recv_until(ws, of("ack", command="set_persona"))
        await ws.send(json.dumps({"type": "presence", "present": True}))
        got = await recv_until(ws, lambda m: m["type"] == "subtitle" and "Robin" in m["text"])
        assert {"type": "ack", "command": "presence", "id": None} in got
        await ws.send(json.dumps({"type": "presence", "present": False}))
        await recv_until(ws, of("ack", command="presence"))

        await ws.send(json.dumps({"type": "set_avatar", "avatar": "sample"}))
        await recv_until(ws, of("ack", command="set_avatar"))

        await ws.send(json.dumps({"type": "bye"}))
        assert (await recv_until(ws, of("bye")))[-1] == {"type": "bye"}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1000


async def test_bad_messages_get_error_frames_and_the_connection_survives(server):
    async with connect(url(server)) as ws:
        # Out of order: audio and commands before hello.
        await ws.send(b"\x00\x00\x00\x00")
        assert (await recv_until(ws, of("error")))[-1]["code"] == "not_ready"
        await ws.send(json.dumps({"type": "say", "text": "hi"}))
        assert (await recv_until(ws, of("error")))[-1]["code"] == "not_ready"
        await ws.send("{not json")
        err = (await recv_until(ws, of("error")))[-1]
        assert err["code"] == "bad_json" and err["fatal"] is False
        await ws.send("[1, 2]")
        assert (await recv_until(ws, of("error")))[-1]["code"] == "bad_message"
        await ws.send(json.dumps({"type": "dance"}))
        err = (await recv_until(ws, of("error")))[-1]
        assert err["code"] == "unknown_type" and "dance" in err["message"]
        bad_hello = {"type": "hello", "version": 1, "media": "hologram"}
        await ws.send(json.dumps(bad_hello))
        assert (await recv_until(ws, of("error")))[-1]["code"] == "bad_message"

        assert (await hello(ws))["type"] == "welcome"
        for msg, code in [
            ({"type": "hello", "version": 1}, "out_of_order"),
            ({"type": "say"}, "bad_message"),
            ({"type": "say", "text": "   "}, "bad_message"),
            ({"type": "ask", "text": 5}, "bad_message"),
            ({"type": "presence"}, "bad_message"),
            ({"type": "presence", "present": "yes"}, "bad_message"),
            ({"type": "set_persona", "persona": {"colour": "red"}}, "bad_message"),
            ({"type": "set_avatar", "avatar": "nobody"}, "avatar"),
            ({"type": "ptt_start"}, "out_of_order"),
            ({"type": "say", "text": "x" * 5000}, "too_big"),
            ({"type": "say", "text": "x" * 2500}, "bad_message"),
        ]:
            await ws.send(json.dumps(msg))
            err = (await recv_until(ws, of("error")))[-1]
            assert err["code"] == code, (msg, err)
            assert err["message"] and err["fatal"] is False
        await ws.send(b"\x01\x02\x03")  # not whole s16le samples
        assert (await recv_until(ws, of("error")))[-1]["code"] == "bad_audio"
        await ws.send(b"\x00" * (LIMIT + 2))
        assert (await recv_until(ws, of("error")))[-1]["code"] == "too_big"
        # Still alive and answering.
        await ws.send(json.dumps({"type": "say", "text": "Still here."}))
        assert (await recv_until(ws, of("subtitle")))[-1]["text"] == "Still here."
        # Far beyond the limit: the transport closes with 1009 (message too big).
        await ws.send("y" * (LIMIT * 5))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1009


async def test_unsupported_version_closes(server):
    async with connect(url(server)) as ws:
        err = await hello(ws, version=99)
        assert err["code"] == "version" and err["fatal"] is True
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd.code == 1008


async def test_busy_when_every_slot_is_taken(server, engine):
    async with connect(url(server)) as a, connect(url(server)) as b:
        assert (await hello(a))["type"] == "welcome"
        assert (await hello(b))["type"] == "welcome"
        async with connect(url(server)) as c:
            err = await hello(c)
            assert err["code"] == "busy" and err["fatal"] is True
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(c.recv(), 10)
            assert closed.value.rcvd.code == 1013
        await a.send(json.dumps({"type": "bye"}))
        await recv_until(a, of("bye"))
    async with connect(url(server)) as d:  # a slot is free again once they left
        for _ in range(50):
            if len(engine.sessions) == 0:
                break
            await asyncio.sleep(0.05)
        assert (await hello(d))["type"] == "welcome"


async def test_params_mode_sends_audio_with_header_and_face_params(server):
    async with connect(url(server)) as ws:
        welcome = await hello(ws, media="params")
        rate = welcome["output"]["audio"]["rate"]
        await ws.send(json.dumps({"type": "say", "text": "Hello, how are you?"}))
        got = await recv_until(ws, of("state", state="listening"), timeout=60)
        got = (
            await recv_until(ws, of("state", state="listening"), timeout=60)
            if not any(m["type"] == "subtitle" for m in got)
            else got
        )
        audio = [m for m in got if m["type"] == "media"]
        faces = [m for m in got if m["type"] == "face"]
        assert audio and all(m["kind"] == KIND_AUDIO for m in audio)
        pts = [m["pts"] for m in audio]
        sizes = [len(m["payload"]) // 2 for m in audio]
        assert all(b == a + n for a, b, n in zip(pts, pts[1:], sizes, strict=False))
        assert abs(sizes[0] - rate / welcome["output"]["fps"]) <= 1
        speech_pcm = np.concatenate(
            [np.frombuffer(m["payload"], "<i2") for m in audio if m["flags"] & 1]
        )
        assert np.abs(speech_pcm).max() > 1000
        assert max(f["jaw_open"] for f in faces) > 0.2
        assert {"blink", "head_yaw", "head_pitch", "head_roll", "speaking", "emotion"} <= set(
            faces[0]
        )


async def test_video_mode_streams_jpeg_and_mic_speech_gets_an_answer(server, engine):
    async with connect(url(server)) as ws:
        welcome = await hello(
            ws, media="video", audio={"format": "s16le", "rate": 16000, "channels": 1}
        )
        assert welcome["output"]["video"] == {"codec": "jpeg", "width": 128, "height": 128}
        got = await recv_until(ws, lambda m: m["type"] == "media" and m["kind"] == KIND_VIDEO)
        image = cv2.imdecode(np.frombuffer(got[-1]["payload"], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (128, 128, 3)
        pcm = speech(engine, "Where can I park my car?", tail=1.5)
        mic = (resample(pcm, engine.voice.sample_rate) * 32767).astype("<i2")
        for i in range(0, len(mic), 1600):  # 100 ms messages, as a microphone sends them
            await ws.send(mic[i : i + 1600].tobytes())
        got = await recv_until(ws, lambda m: m["type"] == "transcript" and m["final"])
        assert "park" in got[-1]["text"].lower()
        got = await recv_until(ws, of("subtitle"))
        assert "car park" in got[-1]["text"].lower()


async def test_push_to_talk_commands(server):
    async with connect(url(server)) as ws:
        await hello(ws, listening="ptt")
        assert (await recv_until(ws, of("state")))[-1]["state"] == "idle"
        await ws.send(json.dumps({"type": "ptt_start"}))
        await both(ws, of("ack", command="ptt_start"), of("state", state="listening"))
        await ws.send(json.dumps({"type": "ptt_stop"}))
        await both(ws, of("ack", command="ptt_stop"), of("state", state="idle"))


async def both(ws, first, second):
    """Receive until both predicates have matched (acks and events travel separately)."""
    seen = [False, False]

    def done(m):
        seen[0] = seen[0] or first(m)
        seen[1] = seen[1] or second(m)
        return all(seen)

    return await recv_until(ws, done)


async def test_token_is_required_when_configured(engine):
    from pydantic import SecretStr

    from anima.protocol import ProtocolServer

    engine.settings.server.token_secret = SecretStr("s3cret")
    try:
        async with ProtocolServer(engine, "127.0.0.1", 0) as srv:
            async with connect(url(srv)) as ws:
                err = await hello(ws, token="wrong")
                assert err["code"] == "unauthorized"
            async with connect(url(srv)) as ws:
                assert (await hello(ws, token="s3cret"))["type"] == "welcome"
    finally:
        engine.settings.server.token_secret = None


def test_media_header_layout():
    from anima.protocol.messages import pack_media, unpack_media

    data = pack_media(KIND_AUDIO, 3, 441, b"\x01\x00", speaking=True)
    assert len(data) == HEADER.size + 2 == 18
    assert unpack_media(data) == (KIND_AUDIO, 1, 3, 441, b"\x01\x00")
    assert decode(data)["pts"] == 441
