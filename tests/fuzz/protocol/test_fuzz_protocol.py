"""Kiosk WebSocket protocol under hostile input: only ProtocolError, never a crash or a hang.

The bulk runs at message-parser level (``parse_text``, ``parse_hello``, field readers, the
binary audio decoder); a few cases go through a real server over loopback with the
``websockets`` client, checking the connection survives every bad message (ping → pong).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "engine"))
from engine_helpers import make_engine  # noqa: E402
from fuzz_helpers import fuzz, regression_files  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from anima.protocol import ProtocolServer  # noqa: E402
from anima.protocol.messages import (  # noqa: E402
    AUDIO_FORMATS,
    COMMANDS,
    AudioFormat,
    ProtocolError,
    bool_field,
    parse_hello,
    parse_text,
    text_field,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["type", "version", "media", "audio", "format", "rate", "channels", "listening", "greet",
     "avatar", "user_id", "token", "text", "emotion", "id", "on", "reason"]
)  # fmt: skip
messages = st.builds(
    lambda kind, fields: {**fields, "type": kind},
    st.sampled_from(COMMANDS) | st.text(max_size=10) | json_values,
    st.dictionaries(field_names, json_values | st.sampled_from([1, 16000, "s16le", "f32le", True])),
)


def check_text(data: str) -> None:
    """Any text frame: parsed into a known command or refused with ProtocolError."""
    try:
        msg = parse_text(data)
    except ProtocolError as exc:
        assert exc.code in {"bad_json", "bad_message", "unknown_type"}
        return
    assert msg["type"] in COMMANDS


def check_message(msg: dict) -> None:
    """A decoded JSON message through every field reader the server uses."""
    try:
        msg = parse_text(json.dumps(msg))
    except ProtocolError:
        return
    for read in (parse_hello, text_field, lambda m: text_field(m, "avatar"),
                 lambda m: bool_field(m, "on")):  # fmt: skip
        try:
            read(msg)
        except ProtocolError as exc:
            assert exc.message and "\n" not in exc.message


def check_audio(fmt: str, channels: int, data: bytes) -> None:
    """Binary mic frames: whole finite samples are accepted, anything else is ProtocolError."""
    try:
        pcm = AudioFormat(fmt, 16_000, channels).decode(data)
    except ProtocolError as exc:
        assert exc.code == "bad_audio"
        return
    assert pcm.dtype in (np.int16, np.float32) and pcm.size * pcm.itemsize == len(data)


_text_cases = [(b.decode("utf-8", "replace"),) for b in regression_files("protocol")]
test_parse_text, test_parse_text_slow = fuzz(
    check_text, st.text(max_size=300) | st.builds(json.dumps, json_values), examples=300,
    cases=_text_cases,
)  # fmt: skip
test_messages, test_messages_slow = fuzz(check_message, messages, examples=300)
test_audio, test_audio_slow = fuzz(
    check_audio,
    st.sampled_from(sorted(AUDIO_FORMATS)),
    st.sampled_from([1, 2]),
    st.binary(max_size=256) | st.builds(lambda a: a.tobytes(), st.just(np.array([np.nan], "<f4"))),
    examples=200,
)


# -- over loopback ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    eng = make_engine(
        tmp_path_factory.mktemp("fuzzproto"),
        server={"max_sessions": 2, "ws_max_message_bytes": 4096, "idle_timeout": 30},
    )
    asyncio.run(eng.load())
    yield eng
    asyncio.run(eng.aclose())


async def _survives(engine, frames: list[str | bytes]) -> None:
    async with ProtocolServer(engine, "127.0.0.1", 0) as srv:
        async with connect(f"ws://127.0.0.1:{srv.port}", max_size=None) as ws:
            hello = {"type": "hello", "version": 1, "media": "events", "greet": False}
            await ws.send(json.dumps(hello))
            for frame in frames:
                await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "id": "alive"}))
            async with asyncio.timeout(20):
                while True:
                    msg = await ws.recv()
                    if isinstance(msg, str) and json.loads(msg).get("type") == "pong":
                        break


loopback_frames = st.lists(
    st.text(max_size=200)
    | st.builds(json.dumps, messages.filter(lambda m: m["type"] not in ("bye", "hello")))
    | st.binary(max_size=300),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=8, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip
@given(frames=loopback_frames)
def test_loopback_connection_survives(engine, frames):
    """Bad frames get error frames; the connection still answers a ping afterwards."""
    asyncio.run(_survives(engine, frames))
