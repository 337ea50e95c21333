"""Photo decoding under a wall-clock budget (issue 9): a slow decode is abandoned, not awaited."""

from __future__ import annotations

import asyncio
import threading
from io import BytesIO

import numpy as np
import pytest
from PIL import Image

from anima.render.avatar import (
    AvatarError,
    PhotoLimits,
    decode_photo,
    read_photo,
    read_photo_async,
)


def png_bytes(size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    buf = BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class SlowDecoder:
    """The real decoder, held back until released (a pathological file, made to order)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    def __call__(self, data: bytes, limits: PhotoLimits) -> np.ndarray:
        self.started.set()
        self.release.wait(10)
        try:
            return decode_photo(data, limits)
        finally:
            self.finished.set()


def test_slow_decode_is_abandoned_after_the_budget():
    slow = SlowDecoder()
    try:
        with pytest.raises(AvatarError, match=r"took over 0\.2 s"):
            read_photo(png_bytes(), PhotoLimits(decode_timeout=0.2), decode=slow)
        assert slow.started.is_set() and not slow.finished.is_set()  # given up, still stuck
    finally:
        slow.release.set()
    assert slow.finished.wait(5)  # the abandoned thread ends on its own


def test_decode_within_budget_returns_pixels_and_errors_pass_through():
    data = png_bytes(48)
    rgb = read_photo(data, PhotoLimits(decode_timeout=30))
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.uint8
    with pytest.raises(AvatarError, match="not an image"):
        read_photo(b"not an image at all" * 10, PhotoLimits(decode_timeout=30))
    # The byte limit is still checked first, in the caller's thread, before any decode.
    calls = []
    with pytest.raises(AvatarError, match="limit"):
        read_photo(data, PhotoLimits(max_bytes=100), decode=lambda d, lim: calls.append(d) or rgb)
    assert calls == []


async def test_async_decode_keeps_the_event_loop_running():
    slow = SlowDecoder()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        with pytest.raises(AvatarError, match="took over 0.3 s"):
            await read_photo_async(png_bytes(), PhotoLimits(decode_timeout=0.3), decode=slow)
        assert ticks >= 3  # the loop ran while the decode hung
    finally:
        slow.release.set()
        task.cancel()
    rgb = await read_photo_async(png_bytes(40), PhotoLimits(decode_timeout=30))
    assert rgb.shape == (40, 40, 3)
