"""Drive mode over the kiosk WebSocket: the client's microphone speaks through the avatar.

The client streams speech (the project's voice, at 16 kHz) in real time, 20 ms a message, as
a microphone would; what comes back is checked for content, never for timing.
"""

from __future__ import annotations

import asyncio
import json

import av
import numpy as np
from conftest import hello, of, recv_until, url
from scipy.signal import correlate
from websockets.asyncio.client import connect

from anima.protocol.messages import KIND_AUDIO, KIND_VIDEO

RATE = 16_000


def resample(pcm: np.ndarray, to: int, rate: int = RATE) -> np.ndarray:
    """A whole int16 mono clip resampled by FFmpeg in one go."""
    r = av.AudioResampler(format="s16", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray().reshape(-1) for f in [*r.resample(frame), *r.resample(None)]]
    return np.concatenate(out).astype(np.int16)


def at_16k(voice, text: str) -> np.ndarray:
    """``text`` in the project's voice at 16 kHz, between 0.4 s pauses."""
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
    pause = np.zeros(int(0.4 * RATE), np.int16)
    return np.concatenate([pause, resample(pcm, RATE, voice.sample_rate), pause])


async def stream(ws, pcm: np.ndarray) -> None:
    """Send ``pcm`` in 20 ms messages, paced like a live microphone."""
    n = RATE // 50
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(0, len(pcm), n):
        await asyncio.sleep(max(0.0, t0 + i / RATE - loop.time()))
        await ws.send(pcm[i : i + n].astype("<i2").tobytes())


async def drive(ws, pcm: np.ndarray) -> list[dict]:
    """Stream ``pcm`` and collect what comes back until the avatar has spoken and rested."""
    sender = asyncio.create_task(stream(ws, pcm))
    got = await recv_until(ws, of("state", state="speaking"), timeout=30)
    got += await recv_until(ws, of("state", state="idle"), timeout=30)
    await sender
    return got


async def test_drive_session_in_params_mode_mirrors_the_voice_and_moves_the_lips(server, voice):
    async with connect(url(server)) as ws:
        for bad in ({"drive": "yes"}, {"drive": True, "listening": "ptt"}):
            err = await hello(ws, media="params", **bad)
            assert err["type"] == "error" and err["code"] == "bad_message" and not err["fatal"]
        welcome = await hello(ws, media="params", drive=True, greet=True)
        assert welcome["type"] == "welcome" and welcome["drive"] is True
        rate = welcome["output"]["audio"]["rate"]
        await recv_until(ws, of("state", state="idle"))
        # One breath with no comma: the fixed rendition pauses 0.3 s at a comma, and under load
        # the drive session may end the utterance there, so the echo would not be one piece.
        pcm = at_16k(voice, "Hello there and welcome to the museum.")
        got = await drive(ws, pcm)
        faces = [m for m in got if m["type"] == "face"]
        audio = [m for m in got if m["type"] == "media" and m["kind"] == KIND_AUDIO]
        # Continuous audio: one block per frame, pts without gaps.
        assert all(
            b["pts"] == a["pts"] + len(a["payload"]) // 2
            for a, b in zip(audio, audio[1:], strict=False)
        )
        spoke = [f for f in faces if f["speaking"]]
        assert spoke and max(f["jaw_open"] for f in spoke) > 0.25
        assert all(f["jaw_open"] < 0.06 for f in faces[:5])  # idle before the driver spoke
        assert any(a["flags"] & 1 and a["turn"] for a in audio)
        # The audio that came back is the voice that went in (resampled to the output rate).
        out = np.concatenate([np.frombuffer(a["payload"], "<i2") for a in audio]).astype(float)
        ref = resample(pcm, rate).astype(float)
        voiced = np.flatnonzero(np.abs(ref) > 300)
        ref = ref[voiced[0] : voiced[-1]]  # the spoken part, which plays without a break
        best = correlate(out, ref, mode="valid").max()
        assert best / (np.linalg.norm(ref) ** 2) > 0.98
        # Speech commands are refused; harmless ones are accepted.
        await ws.send(json.dumps({"type": "say", "text": "hi"}))
        err = (await recv_until(ws, of("error")))[-1]
        assert err["code"] == "out_of_order" and "drive" in err["message"]
        await ws.send(json.dumps({"type": "interrupt", "id": 3}))
        await recv_until(ws, of("ack", command="interrupt", id=3))


async def test_drive_session_in_video_and_events_modes(server, voice):
    pcm = at_16k(voice, "Good morning.")
    async with connect(url(server)) as ws:
        welcome = await hello(ws, media="video", drive=True)
        assert welcome["drive"] is True and welcome["output"]["video"]["codec"] == "jpeg"
        got = await drive(ws, pcm)
        media = [m for m in got if m["type"] == "media"]
        video = [m for m in media if m["kind"] == KIND_VIDEO]
        assert video and all(m["payload"][:2] == b"\xff\xd8" for m in video)  # JPEG pictures
        loud = [
            m for m in media if m["kind"] == KIND_AUDIO and np.frombuffer(m["payload"], "<i2").any()
        ]
        assert loud
    async with connect(url(server)) as ws:
        welcome = await hello(ws, media="events", drive=True)
        assert welcome["drive"] is True and welcome["output"]["audio"] is None
        got = await drive(ws, pcm)
        assert not [m for m in got if m["type"] == "media"]
        assert [m["state"] for m in got if m["type"] == "state"][-2:] == ["speaking", "idle"]
