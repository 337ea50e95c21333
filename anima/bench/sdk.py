"""``anima bench sdk``: how many SDK sessions one CPU core carries, and how fast a session answers.

Three measurements, all in-process through the public Engine/Session API:

1. **Sessions per core**, per media mode ("params": face parameters + audio; "video": 512 px
   frames + audio) and per load ("idle": the avatar waits; "speaking": it talks all the time).
   ``--sessions`` sessions run paced on the wall clock for ``--seconds``; a consumer per session
   does what the protocol server does with each item (JPEG-encodes video frames, serialises
   face parameters to JSON). The process CPU time (all threads) over the run gives
   ``sessions_per_core = frames delivered / fps / cpu_seconds`` (session-seconds of output per
   CPU-second; sessions x seconds / cpu_seconds when real time is kept); ``frames_ratio`` and
   ``dropped`` show whether the run kept real time.
2. **First-frame latency**: ``session.start()`` to the first picture/face item, with models
   loaded (what a kiosk client waits for after connecting).
3. **Reply latency**: questions spoken by the project's voice are streamed as a microphone
   would (20 ms chunks at real-time pace, silence between); the session's TurnLatency events
   give endpoint, asr, first_phrase, tts_first_chunk, first_frame and total per turn.

JSON in ``<out>/sdk.json``. CPU time, not wall time, is the load figure, so other work on the
machine inflates it less; the frame counts say whether real time was kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import stats, write_result
from anima.config import Settings

SPEECH = (
    "Welcome to the library. The reading rooms are on the first floor, the children's corner "
    "is on the ground floor, and the café opens at ten. Ask me anything about the building."
)
QUESTIONS = [
    "Is there free wifi?",
    "Where are the toilets?",
    "Can I bring my dog?",
    "Where can I park my car?",
    "Is the building accessible for wheelchair users?",
]
_KB = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"


def bench_sdk(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    seconds: float = 8.0,
    sessions: int = 2,
    turns: int = 5,
) -> int:
    """Run the SDK benchmark and write ``sdk.json``."""
    return asyncio.run(_bench(out, settings, err, seconds, sessions, turns))


async def _bench(
    out: Path, settings: Settings, err: Console, seconds: float, sessions: int, turns: int
) -> int:
    from anima.engine import Engine

    overrides: dict[str, Any] = {"server": {"max_sessions": max(sessions, 2) + 1}}
    if settings.knowledge.dir is None and _KB.is_dir():
        overrides["knowledge"] = {"dir": _KB}  # kiosk questions need kiosk knowledge
    engine = Engine.from_config(settings, **overrides)
    try:
        t0 = time.perf_counter()
        await engine.load(lambda step: err.log(f"loading {step}"))
        await engine.avatar(None)  # the sample portrait, prepared once per engine
        load_seconds = time.perf_counter() - t0
        result: dict[str, Any] = {
            "brain": engine.settings.brain.backend,
            "render_size": engine.settings.render.size,
            "fps": engine.settings.render.fps,
            "load_seconds": load_seconds,
            "first_frame": {},
            "load": {},
        }
        for media in ("params", "video"):
            samples = [await _first_frame(engine, media) for _ in range(5)]
            result["first_frame"][media] = stats(samples)
            err.log(f"first frame ({media}): p50 {stats(samples)['p50'] * 1000:.0f} ms")
        for media in ("params", "video"):
            for load in ("idle", "speaking"):
                run = await _load_run(engine, media, load, sessions, seconds)
                result["load"][f"{media}_{load}"] = run
                err.log(
                    f"{media:6s} {load:8s}: {run['sessions_per_core']:.1f} sessions/core "
                    f"({run['frames_ratio']:.0%} of frames in time, {run['dropped']} dropped)"
                )
        result["reply_latency"] = await _reply_latency(engine, turns, err)
    finally:
        await engine.aclose()
    path = write_result(out, "sdk", result)
    err.print(f"wrote {path}")
    return 0


async def _first_frame(engine: Any, media: str) -> float:
    from anima.events import FaceParams
    from anima.frames import VideoFrame

    s = engine.session(media=media, greet=False)
    t0 = time.perf_counter()
    await s.start()
    try:
        async with asyncio.timeout(30):
            async for item in s.frames():
                if isinstance(item, VideoFrame | FaceParams):
                    return time.perf_counter() - t0
    finally:
        await s.aclose()
    raise RuntimeError("no frame")


async def _consume(session: Any, counts: dict[str, int], quality: int) -> None:
    from anima.events import FaceParams
    from anima.frames import AudioFrame, VideoFrame
    from anima.pipeline import run_blocking
    from anima.protocol.server import encode_jpeg

    async for item in session.frames():
        if isinstance(item, VideoFrame):
            await run_blocking(encode_jpeg, item.image, quality)
            counts["frames"] += 1
        elif isinstance(item, FaceParams):
            json.dumps(item.to_json())
            counts["frames"] += 1
        elif isinstance(item, AudioFrame):
            item.pcm.tobytes()


async def _load_run(engine: Any, media: str, load: str, n: int, seconds: float) -> dict[str, Any]:
    sessions = [engine.session(media=media, greet=False) for _ in range(n)]
    counts = [{"frames": 0} for _ in sessions]
    consumers = []
    try:
        for s, c in zip(sessions, counts, strict=True):
            await s.start()
            consumers.append(
                asyncio.create_task(_consume(s, c, engine.settings.server.jpeg_quality))
            )
        if load == "speaking":
            for s in sessions:
                for _ in range(3):  # ~30 s of speech queued: talking for the whole run
                    await s.say(SPEECH)
        await asyncio.sleep(1.5)  # warm-up: first synthesis, caches
        start_frames = sum(c["frames"] for c in counts)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        wall = time.perf_counter() - wall0
        frames = sum(c["frames"] for c in counts) - start_frames
        dropped = sum(s.dropped_frames for s in sessions)
        late = max(s._air.stats.max_late for s in sessions)  # noqa: SLF001 - bench looks inside
    finally:
        for s in sessions:
            await s.aclose()
        for task in consumers:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    fps = engine.settings.render.fps
    expected = n * wall * fps
    # Session-seconds of output per CPU-second: equal to sessions x wall / cpu when real time
    # is kept, and still a fair cost figure when a starved machine delivers fewer frames.
    served = frames / fps
    return {
        "sessions": n,
        "seconds": wall,
        "cpu_seconds": cpu,
        "cpu_ms_per_frame": 1000 * cpu / frames if frames else None,
        "sessions_per_core": served / cpu if cpu > 0 else None,
        "frames": frames,
        "frames_ratio": frames / expected if expected else 0.0,
        "dropped": dropped,
        "max_late_seconds": late,
    }


async def _reply_latency(engine: Any, turns: int, err: Console) -> dict[str, Any]:
    from anima.events import StateChanged, TurnLatency

    voice = engine.voice
    rate = voice.sample_rate
    chunk = rate // 50
    s = engine.session(media="params", greet=False)
    await s.start()
    parts: dict[str, list[float]] = {}
    latencies: asyncio.Queue[Any] = asyncio.Queue()

    async def watch() -> None:
        async for item in s.frames():
            if isinstance(item, TurnLatency | StateChanged):
                latencies.put_nowait(item)

    watcher = asyncio.create_task(watch())
    silence = np.zeros(chunk, np.int16)
    try:
        for i in range(turns):
            q = QUESTIONS[i % len(QUESTIONS)]
            pcm = np.concatenate([c.pcm for c in voice.synthesize(q)])
            pcm = np.concatenate([pcm, np.zeros(rate * 2, np.int16)])
            got: TurnLatency | None = None
            t0 = time.perf_counter()
            for k in range(0, len(pcm), chunk):
                s.push_audio(pcm[k : k + chunk], rate)
                await asyncio.sleep(max(0.0, t0 + (k + chunk) / rate - time.perf_counter()))
            # Keep the microphone open (silence) until the answer ends, as a kiosk does.
            deadline = time.perf_counter() + 30
            done = False
            while not done and time.perf_counter() < deadline:
                s.push_audio(silence, rate)
                await asyncio.sleep(0.02)
                while not latencies.empty():
                    ev = latencies.get_nowait()
                    if isinstance(ev, TurnLatency):
                        got = ev
                    elif got is not None and ev.state == "listening":
                        done = True
            if got is None:
                err.log(f"turn {i}: no answer")
                continue
            for k, v in got.parts.items():
                parts.setdefault(k, []).append(v)
            err.log(f"turn {i}: { {k: round(v * 1000) for k, v in got.parts.items()} }")
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await s.aclose()
    return {k: stats(v) for k, v in parts.items()}
