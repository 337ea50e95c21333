"""The two baselines of ``anima bench e2e``, built from the engine's own components.

Both use the same recogniser, brain, voice, lip-sync and face animator as the engine under test,
in process, one turn at a time, on the same recorded questions, while an idle video session of
the same engine streams alongside (its pictures JPEG-encoded, as the server does), so the
background load matches our run; ``transport`` (the median the WebSocket run measured) is added
to their totals so they compare with the client's figure.

- **cascade** (what sequential open-source stacks do): fixed 500 ms VAD silence and no
  speculative decode; the whole transcript, then the whole reply (every phrase), then TTS of
  the whole reply, then lip-sync and rendering of every frame, then the first audio goes out.
- **fixed500_sentence**: the same endpointing, then the reply up to its first complete sentence
  (phrases joined until one ends in ``. ! ? …``), TTS of that whole sentence, its lip-sync and
  the first rendered frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import stats
from anima.tts.cache import CachedVoice

_CHUNK_S = 0.02  # listener input, as the microphone sends it
_SENTENCE_END = (".", "!", "?", "…")


def summarise(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """p50/p95/max of every numeric part over the turns that have it."""
    keys: list[str] = []
    for t in turns:
        keys += [k for k, v in t.items() if isinstance(v, float) and k not in keys]
    summary: dict[str, Any] = {k: stats([t[k] for t in turns if k in t]) for k in keys}
    summary["answered"] = sum(1 for t in turns if "client_audio" in t or "total" in t)
    return summary


# -- baselines --------------------------------------------------------------------------------


async def run_baselines(
    engine: Any, spoken: list[tuple[np.ndarray, int]], err: Console, transport: float
) -> dict[str, Any]:
    """Both baselines on the recorded questions, with ``transport`` seconds added to each."""
    from anima.asr import listener_config

    s = engine.settings
    fixed = s.listen.model_copy(
        update={
            "silence": 0.5,
            "silence_complete": 0.5,
            "silence_incomplete": 0.5,
            "speculative": False,
            "partial_interval": 0.0,
        }
    )
    cfg = listener_config(fixed)
    animator = await engine.animator(None)
    # The avatar streams while a baseline thinks, as it does for ours: one idle video session
    # with a consumer that JPEG-encodes its pictures keeps the background load the same.
    idle = engine.session(media="video", greet=False)
    await idle.start()
    streamer = asyncio.create_task(_stream(idle, s.server.jpeg_quality))
    try:
        a_turns, b_turns = await _turns(engine, spoken, err, transport, cfg, animator)
    finally:
        streamer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await streamer
        await idle.aclose()
    return {
        "how": "in process, same engine components, an idle video session streaming "
        "(JPEG-encoded) alongside, transport p50 from our run added",
        "transport_added_s": transport,
        "listen": fixed.model_dump(
            include={"silence", "silence_complete", "silence_incomplete", "speculative"}
        ),
        "cascade": {"turns": a_turns, "summary": summarise(a_turns)},
        "fixed500_sentence": {"turns": b_turns, "summary": summarise(b_turns)},
    }


async def _stream(session: Any, quality: int) -> None:
    """Consume a session's output the way the WebSocket server does (JPEG per picture)."""
    from anima.frames import VideoFrame
    from anima.pipeline import run_blocking
    from anima.protocol.server import encode_jpeg

    async for item in session.frames():
        if isinstance(item, VideoFrame):
            await run_blocking(encode_jpeg, item.image, quality)


async def _turns(
    engine: Any,
    spoken: list[tuple[np.ndarray, int]],
    err: Console,
    transport: float,
    cfg: Any,
    animator: Any,
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    from anima.asr.listener import Final, Listener
    from anima.frames import MediaClock
    from anima.lipsync import PhonemeLipSync
    from anima.pipeline import run_blocking

    s = engine.settings
    # The stacks these stand for synthesise every reply: bypass the engine's phrase cache.
    voice = engine.voice
    if isinstance(voice, CachedVoice):
        voice = voice.voice
    rate = voice.sample_rate
    fps = s.render.fps
    agent = engine.new_agent("bench-baseline")
    a_turns: list[dict[str, float]] = []
    b_turns: list[dict[str, float]] = []
    chunk = int(rate * _CHUNK_S)
    for i, (pcm, _end) in enumerate(spoken):
        listener = Listener(engine.recognizer, cfg)
        padded = np.concatenate([pcm, np.zeros(int(1.5 * rate), np.int16)])
        final: Final | None = None
        for k in range(0, len(padded), chunk):
            for ev in await listener.feed(padded[k : k + chunk], rate):
                final = ev if isinstance(ev, Final) else final
        for ev in await listener.flush():
            final = ev if isinstance(ev, Final) and final is None else final
        await listener.aclose()
        if final is None or not final.transcript.text.strip():
            err.log(f"baseline turn {i + 1}: nothing recognised")
            continue
        endpoint, asr = final.metrics.endpoint_delay, final.metrics.asr_latency
        # The brain: every phrase, noting when the first whole sentence is complete.
        t0 = time.perf_counter()
        phrases: list[str] = []
        sentence_at: float | None = None
        sentence_n = 0
        async with contextlib.aclosing(agent.respond(final.transcript.text)) as stream:
            async for ev in stream:
                text = getattr(ev, "text", None)
                if not isinstance(text, str) or not text.strip() or not hasattr(ev, "emotion"):
                    continue
                phrases.append(text.strip())
                if sentence_at is None and text.strip().endswith(_SENTENCE_END):
                    sentence_at, sentence_n = time.perf_counter() - t0, len(phrases)
        reply_s = time.perf_counter() - t0
        if not phrases:
            err.log(f"baseline turn {i + 1}: no reply")
            continue
        if sentence_at is None:
            sentence_at, sentence_n = reply_s, len(phrases)
        whole, sentence = " ".join(phrases), " ".join(phrases[:sentence_n])

        def tts_all(text: str) -> tuple[float, list[Any]]:
            t = time.perf_counter()
            chunks = list(voice.synthesize(text))
            return time.perf_counter() - t, chunks

        def lipsync_render(chunks: list[Any], frames: int | None) -> tuple[float, int]:
            """Mouth shapes of ``chunks`` then ``frames`` rendered frames (None: all)."""
            t = time.perf_counter()
            clock = MediaClock(rate, fps)
            shapes, start = [], 0
            for c in chunks:
                shapes += PhonemeLipSync().shapes(c, start, clock)
                start += len(c.pcm)
                if frames is not None and len(shapes) >= frames:
                    break
            todo = shapes if frames is None else shapes[:frames]
            for k, shape, speaking in todo:
                animator.render(k, shape, speaking)
            return time.perf_counter() - t, len(todo)

        tts_a, chunks_a = await run_blocking(tts_all, whole)
        render_a, n_frames = await run_blocking(lipsync_render, chunks_a, None)
        tts_b, chunks_b = await run_blocking(tts_all, sentence)
        render_b, _ = await run_blocking(lipsync_render, chunks_b, 1)
        a = {
            "endpoint": endpoint,
            "asr": asr,
            "reply": reply_s,
            "tts": tts_a,
            "render": render_a,
            "frames": float(n_frames),
            "transport": transport,
        }
        a["total"] = endpoint + asr + reply_s + tts_a + render_a + transport
        b = {
            "endpoint": endpoint,
            "asr": asr,
            "first_sentence": sentence_at,
            "tts": tts_b,
            "render": render_b,
            "transport": transport,
        }
        b["total"] = endpoint + asr + sentence_at + tts_b + render_b + transport
        a_turns.append(a)
        b_turns.append(b)
        err.log(
            f"baseline turn {i + 1}: cascade {a['total'] * 1000:.0f} ms, "
            f"500ms+sentence {b['total'] * 1000:.0f} ms"
        )
    return a_turns, b_turns
