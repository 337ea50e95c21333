"""Drive mode over WebRTC: the browser's microphone is the avatar's voice (real aiortc client)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
import pytest_asyncio

from anima.engine import Engine
from anima.server.app import create_app
from anima.server.client import RtcClient

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def url(tmp_path_factory, make_settings, serve):
    engine = Engine.from_config(make_settings(tmp_path_factory.mktemp("drv")))
    await engine.load()
    async with serve(create_app(engine.settings, engine, host="127.0.0.1")) as base:
        yield base, engine
    await engine.aclose()


async def until(predicate, within: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.mark.slow
async def test_the_microphone_drives_the_avatar_over_webrtc(url, voice):
    base, engine = url
    client = RtcClient(base, drive=True, greet=True)
    try:
        await client.connect()
        session = engine.sessions[0]
        assert session.drive and not session.greet
        await until(lambda: client.audio_frames >= 25, what="idle media")
        assert client.sound_frames == 0  # idle: silence, and no greeting
        pcm = np.concatenate([c.pcm for c in voice.synthesize("Hello, can you hear me?")])
        client.mic.speak(pcm, voice.sample_rate)
        await client.wait_event("state", state="speaking")
        # The voice comes back as the avatar's (about a second of loud 20 ms frames).
        await until(lambda: client.sound_frames >= 20, what="the voice coming back")
        await client.wait_event("state", state="idle")
        assert not [e for e in client.events if e["type"] in ("subtitle", "transcript")]
    finally:
        await client.close()
    await until(lambda: not engine.sessions, what="teardown")
