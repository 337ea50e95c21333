"""Helpers of the engine and protocol tests: the test engine, speech as mic audio, collecting."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from anima.engine import Engine

KB = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"


def make_engine(data_dir: Path, **overrides: Any) -> Engine:
    """The test engine: kb brain, example knowledge, small frames, no audit log."""
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "brain": {"backend": "kb"},
        "knowledge": {"dir": KB},
        "render": {"size": 128, "seed": 7},
        "memory": {"audit": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Engine.from_config(None, **base)


def speech(engine: Engine, text: str, tail: float = 1.2) -> np.ndarray:
    """``text`` in the engine's voice at its own rate, int16, with ``tail`` s of silence."""
    voice = engine.voice
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
    return np.concatenate(
        [
            np.zeros(int(0.3 * voice.sample_rate), np.int16),
            pcm,
            np.zeros(int(tail * voice.sample_rate), np.int16),
        ]
    )


async def collect(
    session,
    until: Callable[[Any, list[Any]], bool],
    timeout: float = 60.0,  # noqa: ASYNC109
) -> list[Any]:
    """Items from ``session.frames()`` up to and including the one where ``until`` is true."""
    items: list[Any] = []
    async with asyncio.timeout(timeout):
        async with contextlib.aclosing(session.frames()) as frames:
            async for item in frames:
                items.append(item)
                if until(item, items):
                    return items
    return items


def push_chunks(session, pcm: np.ndarray, rate: int, seconds: float = 0.1) -> None:
    """Push ``pcm`` as mic audio in chunks, the way a client streams it."""
    n = max(1, int(rate * seconds))
    for i in range(0, len(pcm), n):
        session.push_audio(pcm[i : i + n], rate)
