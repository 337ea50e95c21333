"""``anima bench load``: how many talking sessions this machine serves, and how it says no.

The real kiosk WebSocket server (:class:`~anima.protocol.ProtocolServer`, "video" media: JPEG
frames + PCM) runs in this process on loopback; clients are plain WebSocket connections in
the same process (they only count bytes, so they cost little next to the server).

1. **Sweep**: N = 1, 2, 3 … clients talk at once. Each streams a question spoken by the
   project's voice into the mic (20 ms chunks at real-time pace, silence between), waits for
   the answer to end, pauses and asks the next. Per N over ``--seconds`` (after a warm-up):
   the video frame rate each client received, and the reply latency (end of the question's
   speech to the first audio of the answer, at the client). N is *sustained* when every
   client got at least 90 % of the configured fps and the median reply latency is within
   2 s plus twice the single-session median. The sweep stops at the first N that is not.
2. **Refusal**: ``server.max_sessions`` is set to the largest sustained N; that many clients
   talk while extra clients try to join every two seconds. Every extra gets ``busy`` (close
   code 1013) and the running ones keep their frame rate and latency.

The brain is the knowledge base of ``examples/kiosk_knowledge`` when present (no LLM: this
measures the media pipeline, not a language model sharing the same cores). Results:
``<out>/load.json`` and ``<out>/load.png``.
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

QUESTIONS = (
    "What are your opening hours?",
    "Where can I park my car?",
    "Can I pay by card?",
    "Do you have a lost and found?",
)
KIOSK = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"
FPS_OK = 0.90
CHUNK = 0.02  # seconds of mic audio per message


class Talker:
    """One kiosk client that keeps asking spoken questions and counts what comes back."""

    def __init__(self, url: str, questions: list[np.ndarray], rate: int, seed: int) -> None:
        self.url, self.questions, self.rate = url, questions, rate
        self.seed = seed
        self.video: list[float] = []  # arrival times of video frames
        self.latencies: list[tuple[float, float]] = []  # (time, seconds)
        self.refused: str | None = None
        self._speech_end: float | None = None
        self._turn = 0
        self._idle = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Talk until ``stop`` is set (or the server refuses the session)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        from anima.protocol.messages import KIND_AUDIO, KIND_VIDEO, unpack_media

        async with connect(self.url, max_size=None) as ws:
            hello = {
                "type": "hello",
                "version": 1,
                "media": "video",
                "greet": False,
                "audio": {"format": "s16le", "rate": self.rate, "channels": 1},
            }
            await ws.send(json.dumps(hello))

            async def receive() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for msg in ws:
                        now = time.monotonic()
                        if isinstance(msg, bytes):
                            kind, _flags, turn, _pts, _payload = unpack_media(msg)
                            if kind == KIND_VIDEO:
                                self.video.append(now)
                            elif kind == KIND_AUDIO and turn > self._turn:
                                self._turn = turn
                                if self._speech_end is not None:
                                    self.latencies.append((now, now - self._speech_end))
                                    self._speech_end = None
                            continue
                        event = json.loads(msg)
                        if event["type"] == "error" and event.get("fatal"):
                            self.refused = event.get("code")
                        elif event["type"] == "state" and event["state"] == "listening":
                            self._idle.set()

            reader = asyncio.create_task(receive())
            try:
                await self._talk(ws, stop, reader)
            except ConnectionClosed:
                # The server closed (a refusal: an error, then the close). A send can fail
                # before the reader has taken that error; let it drain what arrived first.
                await asyncio.wait({reader}, timeout=2.0)
            finally:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _talk(self, ws: Any, stop: asyncio.Event, reader: asyncio.Task) -> None:
        step = int(self.rate * CHUNK)
        silence = np.zeros(step, np.int16).tobytes()
        k = self.seed
        start = time.monotonic()
        sent = 0  # chunks sent, for real-time pacing
        while not stop.is_set() and not reader.done():
            pcm = self.questions[k % len(self.questions)]
            k += 1
            chunks = [pcm[i : i + step].tobytes() for i in range(0, len(pcm), step)]
            self._idle.clear()
            for chunk in chunks:
                await ws.send(chunk)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * CHUNK - time.monotonic()))
            self._speech_end = time.monotonic()
            # Silence until the answer is over (or 15 s), then a short pause.
            deadline = time.monotonic() + 15.0
            pause_left = int(1.0 / CHUNK)
            while not stop.is_set() and not reader.done():
                if self._idle.is_set() and self._speech_end is None:
                    pause_left -= 1
                    if pause_left <= 0:
                        break
                elif time.monotonic() > deadline:
                    self._speech_end = None  # no answer: not counted as a latency
                    break
                await ws.send(silence)
                sent += 1
                await asyncio.sleep(max(0.0, start + sent * CHUNK - time.monotonic()))


def _questions(voice: Any) -> list[np.ndarray]:
    out = []
    for text in QUESTIONS:
        pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
        lead = np.zeros(int(0.2 * voice.sample_rate), np.int16)
        out.append(np.concatenate([lead, pcm]).astype(np.int16))
    return out


def _window(talkers: list[Talker], t0: float, t1: float, fps: int) -> dict[str, Any]:
    seconds = t1 - t0
    rates = [sum(t0 <= t < t1 for t in c.video) / seconds for c in talkers]
    lat = [s for c in talkers for (t, s) in c.latencies if t0 <= t < t1]
    return {
        "fps_per_session": [round(r, 2) for r in rates],
        "fps_min": round(min(rates), 2) if rates else 0.0,
        "fps_ratio_min": round(min(rates) / fps, 3) if rates else 0.0,
        "reply_latency": stats(lat) if lat else None,
        "replies": len(lat),
    }


async def _run(
    url: str,
    n: int,
    questions: list[np.ndarray],
    rate: int,
    fps: int,
    seconds: float,
    warmup: float,
    extra: int = 0,
) -> dict[str, Any]:
    stop = asyncio.Event()
    talkers = [Talker(url, questions, rate, seed=i) for i in range(n)]
    tasks = [asyncio.create_task(t.run(stop)) for t in talkers]
    await asyncio.sleep(warmup)
    t0 = time.monotonic()
    attempts: list[str | None] = []
    if extra:
        # Extra clients try to join while the others talk; each should be refused at once.
        for _ in range(extra):
            late = Talker(url, questions, rate, seed=99)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(late.run(stop), 10)
            attempts.append(late.refused)
            await asyncio.sleep(max(0.0, seconds / extra - 0.1))
        left = seconds - (time.monotonic() - t0)
        await asyncio.sleep(max(0.0, left))
    else:
        await asyncio.sleep(seconds)
    t1 = time.monotonic()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = _window(talkers, t0, t1, fps)
    result["n"] = n
    refused_running = [t.refused for t in talkers if t.refused]
    if refused_running:
        result["running_refused"] = refused_running
    if extra:
        result["extra_attempts"] = attempts
    return result


def bench_load(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    max_sessions: int = 6,
    seconds: float = 20.0,
    extra: int = 3,
) -> int:
    """Run the sweep and the refusal check; write ``load.json`` and ``load.png``."""
    from anima.engine import Engine
    from anima.protocol import ProtocolServer

    overrides: dict[str, Any] = {
        "brain": {"backend": "kb"},
        "memory": {"enabled": False, "audit": False},
        "server": {
            "max_sessions": max_sessions,
            "max_sessions_per_client": max_sessions + extra,
            "messages_per_second": 200.0,
            "message_burst": 400,
        },
    }
    if settings.knowledge.dir is None and KIOSK.is_dir():
        overrides["knowledge"] = {"dir": KIOSK}

    async def main() -> dict[str, Any]:
        engine = Engine.from_config(settings, **overrides)
        err.print("loading models…")
        await engine.load()
        await engine.avatar(None)
        voice = engine.voice
        questions = _questions(voice)
        fps = engine.settings.render.fps
        sweep: list[dict[str, Any]] = []
        single: float | None = None
        async with ProtocolServer(engine, "127.0.0.1", 0) as server:
            url = f"ws://127.0.0.1:{server.port}"
            for n in range(1, max_sessions + 1):
                r = await _run(url, n, questions, voice.sample_rate, fps, seconds, 4.0)
                p50 = r["reply_latency"]["p50"] if r["reply_latency"] else None
                if n == 1:
                    single = p50
                ok_latency = p50 is not None and single is not None and p50 <= 2.0 + 2 * single
                r["sustained"] = bool(r["fps_ratio_min"] >= FPS_OK and ok_latency)
                sweep.append(r)
                err.print(
                    f"N={n}: fps min {r['fps_min']:.1f}/{fps}, reply p50 "
                    f"{'-' if p50 is None else f'{p50 * 1000:.0f} ms'}, "
                    f"{'sustained' if r['sustained'] else 'DEGRADED'}"
                )
                if not r["sustained"]:
                    break
                await asyncio.sleep(1.0)
            ok = [r["n"] for r in sweep if r["sustained"]]
            limit = max(ok) if ok else 1
            engine.settings.server.max_sessions = limit  # what the operator would configure
            # The sweep's last sessions close a moment after their clients: wait, or one of
            # them still holds a slot, a refusal-run talker is refused and an extra gets in.
            for _ in range(200):
                if not engine.sessions:
                    break
                await asyncio.sleep(0.05)
            err.print(f"refusal check: max_sessions = {limit}, {extra} extra clients")
            refusal = await _run(url, limit, questions, voice.sample_rate, fps, seconds, 4.0, extra)
            refusal["max_sessions"] = limit
            refusal["all_extra_refused_busy"] = all(a == "busy" for a in refusal["extra_attempts"])
        await engine.aclose()
        degraded = next((r["n"] for r in sweep if not r["sustained"]), None)
        return {
            "fps": fps,
            "render_size": engine.settings.render.size,
            "seconds_per_step": seconds,
            "criteria": {
                "fps_ratio_min": FPS_OK,
                "reply_p50_max": "2 s + 2 x the single-session p50",
            },
            "sweep": sweep,
            "max_sustained": max(ok) if ok else 0,
            "degrades_at": degraded,
            "refusal": refusal,
        }

    result = asyncio.run(main())
    path = write_result(out, "load", result)
    _plot(result, out / "load.png")
    err.print(f"wrote {path} and {out / 'load.png'}")
    return 0


def _plot(result: dict[str, Any], path: Path) -> None:
    """Frame rate (lowest session) and reply latency per N; the refusal run marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = result["sweep"]
    ns = [r["n"] for r in sweep]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    a.plot(ns, [r["fps_min"] for r in sweep], "o-", label="lowest session")
    a.axhline(result["fps"] * FPS_OK, color="grey", ls="--", label=f"{FPS_OK:.0%} of fps")
    ref = result["refusal"]
    a.plot([ref["n"]], [ref["fps_min"]], "r*", ms=12, label="at max_sessions, extras refused")
    a.set_xlabel("talking sessions")
    a.set_ylabel("video frames/s received")
    a.legend(fontsize=7)
    p50 = [r["reply_latency"]["p50"] * 1000 if r["reply_latency"] else np.nan for r in sweep]
    p90 = [r["reply_latency"]["p95"] * 1000 if r["reply_latency"] else np.nan for r in sweep]
    b.plot(ns, p50, "o-", label="p50")
    b.plot(ns, p90, "s--", label="p95")
    b.set_xlabel("talking sessions")
    b.set_ylabel("reply latency (ms)")
    b.legend(fontsize=7)
    fig.suptitle("anima bench load (kiosk WebSocket, in-process)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
