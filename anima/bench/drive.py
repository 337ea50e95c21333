"""Drive mode figures for ``anima bench lipsync``: added delay and per-frame cost.

- ``cost``: CPU time of the drive path per 40 ms frame (check, two streaming resamplers, the
  mel features and the network, then taking the frame), mic blocks of 20 ms at 22.05 kHz
  (pass-through) and at 48 kHz (a browser microphone), on one thread.
- ``latency``: a live drive session on the wall clock fed 20 ms blocks of speech in real
  time. For every frame that carries driver audio: the time ``frames()`` yields it minus the
  time its first sample was captured (the block's start). One frame (40 ms) of that is the
  buffering a frame needs; waiting for the next frame slot adds 0–40 ms more. The mouth and
  the audio of a frame are yielded together, so the A/V offset is zero by construction.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np

from anima.bench.common import stats
from anima.config import Settings

BLOCK = 0.02


def _speech(settings: Settings) -> tuple[np.ndarray, int]:
    from anima.tts import load_voice

    voice = load_voice(settings.voice.backend, model=settings.voice.model)
    text = "Welcome to the museum. The new exhibition opens on the second floor at ten."
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
    pause = np.zeros(voice.sample_rate // 2, np.int16)
    return np.concatenate([pause, pcm, pause]), voice.sample_rate


def drive_cost(pcm: np.ndarray, rate: int) -> dict[str, Any]:
    """Milliseconds of CPU per output frame for the drive path, at two input rates."""
    import av

    from anima.engine.drive import DriveFeed
    from anima.frames import MediaClock
    from anima.lipsync.neural import Audio2MouthModel

    model = Audio2MouthModel(threads=1)
    r = av.AudioResampler(format="s16", layout="mono", rate=48_000)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    at48 = np.concatenate([f.to_ndarray().reshape(-1) for f in r.resample(frame)])
    out: dict[str, Any] = {}
    for name, x, xr in (("in_22050", pcm, rate), ("in_48000", at48, 48_000)):
        media = MediaClock(rate, 25)
        n = rate // 25
        per_frame: list[float] = []
        step = int(xr * BLOCK)
        for rep in range(3):  # the first pass warms caches and onnxruntime
            feed = DriveFeed(media, model, realtime=False)
            times: list[float] = []
            t = time.perf_counter()
            for i in range(0, len(x), step):
                feed.push(x[i : i + step], xr)
                while feed.take(n) is not None:
                    now = time.perf_counter()
                    times.append(now - t)
                    t = now
            if rep:
                per_frame += times
        out[name] = stats([s * 1000 for s in per_frame])
    out["frame_budget_ms"] = 40.0
    return out


async def _live(settings: Settings, pcm: np.ndarray, rate: int, media: str) -> dict[str, Any]:
    from anima.engine import Engine
    from anima.frames import AudioFrame

    engine = Engine.from_config(settings)
    try:
        session = engine.session(media=media, drive=True)  # type: ignore[arg-type]
        await session.start()
        n = session.sample_rate // session.fps
        arrivals: list[tuple[float, AudioFrame]] = []

        async def read() -> None:
            async for item in session.frames():
                if isinstance(item, AudioFrame):
                    arrivals.append((time.perf_counter(), item))

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.5)  # idle first, as a real session would be
        step = int(rate * BLOCK)
        t0 = time.perf_counter()
        for i in range(0, len(pcm), step):
            await asyncio.sleep(max(0.0, t0 + (i + step) / rate - time.perf_counter()))
            session.push_audio(pcm[i : i + step], rate)
        await asyncio.sleep(0.3)
        session.end_audio()
        async with asyncio.timeout(10):
            await reader
        dropped = session.dropped_audio
        await session.aclose()
    finally:
        await engine.aclose()
    delays, problem = capture_delays(pcm, rate, t0, arrivals, dropped)
    return {
        "media": media,
        "block_ms": BLOCK * 1000,
        "capture_to_frame_ms": stats(delays),
        "buffering_floor_ms": 1000 / 25,
        "dropped_samples": dropped,
        "frames": len(delays),
        "samples_per_frame": n,
        **({"problem": problem} if problem else {}),
    }


def capture_delays(
    pcm: np.ndarray, rate: int, t0: float, arrivals: list[tuple[float, Any]], dropped: int
) -> tuple[list[float], str]:
    """Per-frame capture-to-yield delays (ms) and, when there are none, why not.

    The driver's first sound is found again in the output to align the two; a loaded machine
    once dropped it all, and the bench then fails with an ``IndexError`` instead of saying so.
    """
    if dropped:
        return [], f"{dropped} driver samples were dropped: the delay is not measured"
    out = np.concatenate([a.pcm for _, a in arrivals]) if arrivals else np.zeros(0, np.int16)
    heard, sent = np.flatnonzero(out), np.flatnonzero(pcm)
    if not len(heard) or not len(sent):
        return [], f"no driver audio came out ({len(arrivals)} frames, all silent)"
    start = int(heard[0]) - int(sent[0])  # output index of driver sample 0
    delays = []
    for when, frame in arrivals:
        j = frame.pts - start  # the driver sample this frame starts with
        if 0 <= j < len(pcm):
            delays.append((when - (t0 + j / rate)) * 1000)
    return delays, ""


def bench_drive(settings: Settings) -> dict[str, Any]:
    """The drive-mode figures (see the module docstring)."""
    pcm, rate = _speech(settings)
    result: dict[str, Any] = {"cost_ms_per_frame": drive_cost(pcm, rate)}
    result["latency"] = [asyncio.run(_live(settings, pcm, rate, m)) for m in ("params", "video")]
    return result


__all__ = ["bench_drive", "capture_delays", "drive_cost"]
