"""Mandarin end to end over the kiosk WebSocket: spoken question -> Chinese answer with audio
and mouth motion; ``auto`` answering each turn in the language it was spoken in.

The questions are fixed renditions (``fixtures/*.wav``, made by ``make_fixtures.py`` with the
zh-baker and Piper voices), so what the recogniser hears is the same on every run; the answers
are spoken by the engine's own voice for the language (espeak-ng Mandarin by default).
"""

from __future__ import annotations

import asyncio
import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from anima.engine import Engine
from anima.protocol import ProtocolServer
from anima.protocol.messages import KIND_AUDIO, unpack_media

pytestmark = pytest.mark.slow

KNOWLEDGE = Path(__file__).parent / "knowledge_zh"
FIXTURES = Path(__file__).parent / "fixtures"
HAN = re.compile(r"[\u4e00-\u9fff]")


def engine_for(data_dir: Path, language: str) -> Engine:
    return Engine.from_config(
        None,
        data_dir=data_dir,
        persona={"language": language},
        brain={"backend": "kb"},
        knowledge={"dir": KNOWLEDGE},
        render={"size": 128, "seed": 7},
        memory={"audit": False},
    )


def decode(msg: str | bytes) -> dict:
    if isinstance(msg, bytes):
        kind, flags, turn, pts, payload = unpack_media(msg)
        return {"type": "media", "kind": kind, "flags": flags, "payload": payload}
    return json.loads(msg)


async def until(ws, pred, timeout: float = 90.0) -> list[dict]:  # noqa: ASYNC109
    out: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            out.append(decode(await ws.recv()))
            if pred(out[-1]):
                return out


async def speak_into(ws, name: str) -> None:
    """The fixture ``name`` as 100 ms microphone messages at 16 kHz, with silence around it."""
    with wave.open(str(FIXTURES / f"{name}.wav")) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    mic = np.concatenate([np.zeros(4800, "<i2"), pcm, np.zeros(24000, "<i2")])
    for i in range(0, len(mic), 1600):
        await ws.send(mic[i : i + 1600].tobytes())


def final(m: dict) -> bool:
    return m["type"] == "transcript" and m["final"]


def done(m: dict) -> bool:
    return m["type"] == "state" and m["state"] == "listening"


async def reply(ws) -> list[dict]:
    """Messages up to the end of the reply (the avatar listens again after speaking)."""
    got = await until(ws, lambda m: m["type"] == "subtitle")
    return got + await until(ws, done)


async def test_mandarin_question_gets_a_chinese_answer_with_audio_and_lips(tmp_path):
    engine = engine_for(tmp_path, "zh")
    await engine.load()
    server = ProtocolServer(engine, "127.0.0.1", 0)
    await server.start()
    try:
        async with connect(f"ws://127.0.0.1:{server.port}", max_size=None) as ws:
            hello = {"type": "hello", "version": 1, "media": "params", "greet": False}
            await ws.send(json.dumps({**hello, "audio": {"format": "s16le", "rate": 16000}}))
            await until(ws, lambda m: m["type"] == "welcome")
            await speak_into(ws, "zh_card")
            heard = (await until(ws, final))[-1]
            assert heard["language"] == "zh" and "社保卡" in heard["text"]
            got = await reply(ws)
            said = " ".join(m["text"] for m in got if m["type"] == "subtitle")
            assert "二楼三号窗口" in said  # the passage from the Chinese knowledge, verbatim
            audio = [m for m in got if m["type"] == "media" and m["kind"] == KIND_AUDIO]
            pcm = np.concatenate([np.frombuffer(m["payload"], "<i2") for m in audio])
            assert np.abs(pcm).max() > 1000
            jaw = [m["jaw_open"] for m in got if m["type"] == "face"]
            assert max(jaw) > 0.3 and np.std(jaw) > 0.05  # the lips move, not just open

            # Bad input: 10,000 Chinese characters, then mixed scripts with emoji and numbers.
            await ws.send(json.dumps({"type": "ask", "text": "社保" * 5000}))
            got = await until(ws, lambda m: m["type"] in ("error", "subtitle"))
            if got[-1]["type"] == "error":
                assert "\n" not in got[-1]["message"]  # a clear one-line error
            else:
                await until(ws, done)
            await ws.send(json.dumps({"type": "say", "text": "Hello 你好😀，电话13812345678！"}))
            said = " ".join(m["text"] for m in await reply(ws) if m["type"] == "subtitle")
            assert "你好" in said and "Hello" in said
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            await until(ws, lambda m: m["type"] == "pong")  # the session goes on
    finally:
        await server.aclose()
        await engine.aclose()


async def test_auto_answers_each_turn_in_the_language_it_was_spoken_in(tmp_path):
    engine = engine_for(tmp_path, "auto")
    await engine.load()
    server = ProtocolServer(engine, "127.0.0.1", 0)
    await server.start()
    try:
        async with connect(f"ws://127.0.0.1:{server.port}", max_size=None) as ws:
            hello = {"type": "hello", "version": 1, "media": "events", "greet": False}
            await ws.send(json.dumps({**hello, "audio": {"format": "s16le", "rate": 16000}}))
            await until(ws, lambda m: m["type"] == "welcome")

            await speak_into(ws, "zh_card")
            heard = (await until(ws, final))[-1]
            assert heard["language"] == "zh" and "社保卡" in heard["text"], heard
            said = " ".join(m["text"] for m in await reply(ws) if m["type"] == "subtitle")
            assert "二楼三号窗口" in said

            await speak_into(ws, "en_park")
            heard = (await until(ws, final))[-1]
            assert heard["language"] == "en" and "park" in heard["text"].lower()
            said = " ".join(m["text"] for m in await reply(ws) if m["type"] == "subtitle")
            assert said and not HAN.search(said)  # English fixed lines for an English turn
    finally:
        await server.aclose()
        await engine.aclose()
