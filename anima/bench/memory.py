"""``anima bench memory``: peak RSS with 1, 2 and 4 sessions, and RSS growth over a soak.

Each measurement runs in a fresh child process (``python -m anima.bench.memory ...``) so its
peak resident set (``ru_maxrss``) belongs to that run alone:

- **sessions N** (N = 1, 2, 4): one engine (configured brain, kiosk knowledge), N video
  sessions all talking for ``--seconds`` (each ``say`` queued back to back), each with a
  consumer that JPEG-encodes every picture as the WebSocket server does. Recorded: RSS after
  loading the models, the peak sampled every 0.1 s while talking (``running_peak_mb``), the
  process peak (``ru_maxrss``, which includes transients of model loading) and the RSS at the
  end; ``per_session_mb`` from the running peaks.
- **soak** (``--soak`` seconds, default 600; 0 skips it): one video session holding a
  conversation (typed questions through the brain, answers spoken and rendered, JPEG-encoded)
  for the whole time; RSS is sampled about 60 times. Growth = last sample - first sample after
  the warm-up (the first tenth), and the least-squares slope in MB per minute; the same over
  the second half tells a leak (still rising) from caches filling up and levelling off.

JSON in ``<out>/memory.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import write_result
from anima.config import Settings

SPEECH = (
    "Welcome to the library. The reading rooms are on the first floor, the children's corner "
    "is on the ground floor, and the café opens at ten."
)
QUESTIONS = [
    "Is there free wifi?",
    "Where can I park my car?",
    "When are you open?",
    "Can I bring my dog?",
    "What is the address?",
]
_KB = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_mb() -> float:
    """Current resident set size of this process in MB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def growth(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Growth (MB) and slope (MB/min) of (seconds, MB) samples after the first tenth."""
    if len(samples) < 3:
        raise ValueError("at least three samples are needed")
    t = np.array([s[0] for s in samples])
    m = np.array([s[1] for s in samples])
    keep = t >= t[0] + 0.1 * (t[-1] - t[0])
    t, m = t[keep], m[keep]
    slope = float(np.polyfit(t, m, 1)[0] * 60) if len(t) >= 2 and np.ptp(t) > 0 else 0.0
    # The second half tells a leak (still rising) from warm-up (caches filling, then flat).
    half = t >= t[0] + 0.5 * (t[-1] - t[0])
    th, mh = t[half], m[half]
    slope2 = float(np.polyfit(th, mh, 1)[0] * 60) if len(th) >= 2 and np.ptp(th) > 0 else 0.0
    return {
        "second_half_growth_mb": float(mh[-1] - mh[0]),
        "second_half_slope_mb_per_min": slope2,
        "start_mb": float(m[0]),
        "end_mb": float(m[-1]),
        "max_mb": float(m.max()),
        "growth_mb": float(m[-1] - m[0]),
        "slope_mb_per_min": slope,
        "window_s": float(t[-1] - t[0]),
    }


def _engine(settings: Settings, sessions: int) -> Any:
    from anima.engine import Engine

    overrides: dict[str, Any] = {"server": {"max_sessions": sessions + 1}}
    if settings.knowledge.dir is None and _KB.is_dir():
        overrides["knowledge"] = {"dir": _KB}
    return Engine.from_config(settings, **overrides)


async def _consume(session: Any, quality: int, counts: list[int]) -> None:
    from anima.frames import VideoFrame
    from anima.pipeline import run_blocking
    from anima.protocol.server import encode_jpeg

    async for item in session.frames():
        if isinstance(item, VideoFrame):
            await run_blocking(encode_jpeg, item.image, quality)
            counts[0] += 1


async def _sessions_run(settings: Settings, n: int, seconds: float) -> dict[str, Any]:
    engine = _engine(settings, n)
    try:
        await engine.load()
        await engine.avatar(None)
        loaded = rss_mb()
        sessions = [engine.session(media="video", greet=False) for _ in range(n)]
        counts = [0]
        tasks = []
        for s in sessions:
            await s.start()
            tasks.append(
                asyncio.create_task(_consume(s, engine.settings.server.jpeg_quality, counts))
            )
        t0 = time.perf_counter()
        running = loaded  # the peak while talking, without the transient of loading models
        while time.perf_counter() - t0 < seconds:
            for s in sessions:
                if s._jobs is not None and s._jobs.qsize() < 2:  # noqa: SLF001 - keep talking
                    await s.say(SPEECH)
            await asyncio.sleep(0.1)
            running = max(running, rss_mb())
        end = rss_mb()
        # No teardown: the child exits right after printing (closing four loaded sessions can
        # take minutes on a starved machine, and measures nothing).
        del tasks
    except BaseException:
        await engine.aclose()
        raise
    return {
        "sessions": n,
        "seconds": seconds,
        "rss_loaded_mb": loaded,
        "rss_end_mb": end,
        "running_peak_mb": running,
        "peak_rss_mb": peak_rss_mb(),
        "frames": counts[0],
        "frames_expected": int(n * seconds * engine.settings.render.fps),
    }


async def _soak_run(settings: Settings, seconds: float) -> dict[str, Any]:
    from anima.events import StateChanged

    engine = _engine(settings, 1)
    samples: list[tuple[float, float]] = []
    turns = 0
    try:
        await engine.load()
        session = engine.session(media="video", greet=False)
        await session.start()
        states: asyncio.Queue[str] = asyncio.Queue()
        counts = [0]

        async def consume() -> None:
            from anima.frames import VideoFrame
            from anima.pipeline import run_blocking
            from anima.protocol.server import encode_jpeg

            q = engine.settings.server.jpeg_quality
            async for item in session.frames():
                if isinstance(item, VideoFrame):
                    await run_blocking(encode_jpeg, item.image, q)
                    counts[0] += 1
                elif isinstance(item, StateChanged):
                    states.put_nowait(item.state)

        consumer = asyncio.create_task(consume())
        every = max(1.0, seconds / 60)
        t0 = time.perf_counter()
        next_sample = t0
        while (now := time.perf_counter()) - t0 < seconds:
            if now >= next_sample:
                samples.append((now - t0, rss_mb()))
                next_sample += every
            await session.ask(QUESTIONS[turns % len(QUESTIONS)])
            turns += 1
            # Wait for the answer to be spoken (or a bound), sampling on the way.
            deadline = time.perf_counter() + 30
            seen_speaking = False
            while time.perf_counter() < min(deadline, t0 + seconds):
                with contextlib.suppress(TimeoutError):
                    state = await asyncio.wait_for(states.get(), 0.5)
                    seen_speaking |= state == "speaking"
                    if seen_speaking and state != "speaking":
                        break
                if time.perf_counter() >= next_sample:
                    samples.append((time.perf_counter() - t0, rss_mb()))
                    next_sample += every
        samples.append((time.perf_counter() - t0, rss_mb()))
        del consumer  # no teardown: the child exits right after printing
    except BaseException:
        await engine.aclose()
        raise
    return {
        "seconds": seconds,
        "turns": turns,
        "frames": counts[0],
        "peak_rss_mb": peak_rss_mb(),
        "samples": [(round(t, 2), round(m, 2)) for t, m in samples],
        **growth(samples),
    }


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; its last stdout line is the JSON result."""
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "anima.bench.memory", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "GLOG_minloglevel": "2"},
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"memory child {' '.join(args)} took over {timeout:.0f} s") from exc
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"memory child {' '.join(args)} failed: {tail[0]}")
    return json.loads(lines[-1])


def bench_memory(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    seconds: float = 8.0,
    soak: float = 600.0,
    counts: tuple[int, ...] = (1, 2, 4),
) -> int:
    """Measure, write ``memory.json`` and print the figures."""
    result: dict[str, Any] = {
        "benchmark": "memory",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "brain": settings.brain.backend,
            "render_size": settings.render.size,
            "media": "video (JPEG-encoded by the consumer)",
            "seconds": seconds,
            "soak_seconds": soak,
        },
        "load_average_start": os.getloadavg(),
        "sessions": {},
    }
    for n in counts:
        try:
            run = _child(["sessions", str(n), str(seconds)], timeout=seconds + 180)
        except RuntimeError as exc:  # one failed run must not lose the others
            err.log(str(exc))
            result["sessions"][str(n)] = {"error": str(exc)}
            continue
        result["sessions"][str(n)] = run
        err.log(
            f"{n} session(s): RSS peak while talking {run['running_peak_mb']:.0f} MB, "
            f"process peak {run['peak_rss_mb']:.0f} MB (models loaded {run['rss_loaded_mb']:.0f} MB)"
        )
    if len(counts) > 1:
        ok = [n for n in counts if "error" not in result["sessions"][str(n)]]
        if len(ok) > 1:
            lo, hi = result["sessions"][str(ok[0])], result["sessions"][str(ok[-1])]
            span = ok[-1] - ok[0]
            result["per_session_mb"] = (hi["running_peak_mb"] - lo["running_peak_mb"]) / span
    if soak > 0:
        run = _child(["soak", str(soak)], timeout=soak + 240)
        result["soak"] = run
        err.log(
            f"soak {soak:.0f} s, {run['turns']} turns: RSS {run['start_mb']:.0f} -> "
            f"{run['end_mb']:.0f} MB ({run['growth_mb']:+.1f} MB, "
            f"{run['slope_mb_per_min']:+.2f} MB/min; second half "
            f"{run['second_half_growth_mb']:+.1f} MB)"
        )
    result["load_average_end"] = os.getloadavg()
    path = write_result(out, "memory", result)
    err.print(f"wrote {path}")
    return 0


def main(argv: list[str]) -> int:
    """Child entry point: ``sessions N SECONDS`` or ``soak SECONDS``; prints one JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    settings = Settings.load(None)
    if argv[0] == "sessions":
        res = asyncio.run(_sessions_run(settings, int(argv[1]), float(argv[2])))
    elif argv[0] == "soak":
        res = asyncio.run(_soak_run(settings, float(argv[1])))
    else:
        raise SystemExit(f"unknown memory run {argv[0]!r}")
    print(json.dumps(res), flush=True)
    os._exit(0)  # skip teardown of the loaded engine and sessions: nothing left to measure


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
