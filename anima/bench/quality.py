"""``anima bench quality``: lip-sync quality measured from the output video, as a client sees it.

A session of the engine (video media, not paced: as fast as it can) says a few sentences; every
picture it sends is JPEG-encoded at the protocol's quality and decoded again (what a kiosk
client receives), the project's face detector (:mod:`anima.render.face`, MediaPipe face mesh)
re-detects the landmarks on it, and :func:`~anima.render.face.mouth_opening` gives the mouth
opening per frame. The speech envelope is the RMS of the audio the session sent, in a one-frame
window centred on each frame's presentation time (frame ``k`` is shown while audio sample
``k * rate / fps`` plays).

Both series are standardised and cross-correlated over +-``max_lag`` frames. The lag of the
peak (refined with a parabola through its neighbours) is the **audio/video offset**: positive
means the mouth moves *after* the sound (video late), negative before. The **correlation** is
Pearson's r at that lag (and at lag 0). JSON in ``<out>/quality.json``, the two curves in
``<out>/quality_av.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import write_result
from anima.config import Settings
from anima.levels import rms

TEXT = (
    "Good morning, and welcome to the library. The reading rooms are on the first floor, and "
    "the children's corner is on the ground floor. Would you like me to show you the way?"
)


def speech_envelope(audio: np.ndarray, frames: int, spf: float) -> np.ndarray:
    """RMS of ``audio`` in a one-frame window centred on each of ``frames`` frame times."""
    a = audio.astype(np.float64)
    half = max(1, int(round(spf / 2)))
    out = np.zeros(frames)
    for k in range(frames):
        c = int(round(k * spf))
        seg = a[max(0, c - half) : c + half]
        out[k] = rms(seg)
    return out


def av_offset(
    mouth: np.ndarray, envelope: np.ndarray, fps: float, max_lag: int = 8
) -> dict[str, float]:
    """Offset (ms, + = video late) and correlation of ``mouth`` against ``envelope``.

    NaNs in ``mouth`` (no face found) are left out of every correlation.
    """
    if mouth.shape != envelope.shape:
        raise ValueError("mouth and envelope must have one value per frame each")
    n = len(mouth)
    if n < 2 * max_lag + 4:
        raise ValueError(f"{n} frames are too few for lags of +-{max_lag}")
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([_pearson_at(mouth, envelope, int(lag)) for lag in lags])
    i = int(np.nanargmax(corr))
    lag = float(lags[i])
    if 0 < i < len(lags) - 1 and np.all(np.isfinite(corr[i - 1 : i + 2])):
        y0, y1, y2 = corr[i - 1 : i + 2]
        denom = y0 - 2 * y1 + y2
        if denom < 0:  # a real peak: refine to a fraction of a frame
            lag += float(np.clip(0.5 * (y0 - y2) / denom, -0.5, 0.5))
    return {
        "offset_ms": lag * 1000.0 / fps,
        "offset_frames": lag,
        "correlation": float(corr[i]),
        "correlation_lag0": float(corr[max_lag]),
        "curve": [float(c) for c in corr],
    }


def _pearson_at(mouth: np.ndarray, env: np.ndarray, lag: int) -> float:
    """Pearson r of mouth[k] with env[k - lag]."""
    if lag >= 0:
        m, e = mouth[lag:], env[: len(env) - lag]
    else:
        m, e = mouth[:lag], env[-lag:]
    ok = np.isfinite(m) & np.isfinite(e)
    m, e = m[ok], e[ok]
    if m.size < 4 or m.std() == 0 or e.std() == 0:
        return float("nan")
    return float(np.corrcoef(m, e)[0, 1])


async def render_speech(
    settings: Settings, text: str = TEXT, err: Console | None = None
) -> tuple[list[np.ndarray], np.ndarray, int, int]:
    """(pictures, audio, sample rate, fps) of the engine saying ``text``, as the client gets them.

    Pictures are JPEG round-tripped at ``server.jpeg_quality``; audio is every sample sent from
    the first speaking frame to the last, aligned to the pictures (one frame of audio each).
    """
    import cv2

    from anima.engine import Engine
    from anima.events import StateChanged
    from anima.frames import AudioFrame, VideoFrame
    from anima.protocol.server import encode_jpeg

    engine = Engine.from_config(settings, brain={"backend": "kb"})
    pictures: list[np.ndarray] = []
    audio: list[np.ndarray] = []
    try:
        await engine.load()
        session = engine.session(media="video", realtime=False, greet=False)
        await session.start()
        quality = engine.settings.server.jpeg_quality
        rate, fps = session.sample_rate, session.fps
        await session.say(text)
        spoke = False
        pending: np.ndarray | None = None
        async with asyncio.timeout(120):
            async for item in session.frames():
                if isinstance(item, AudioFrame):
                    pending = item.pcm if item.turn else None
                elif isinstance(item, VideoFrame) and item.turn and pending is not None:
                    spoke = True
                    jpeg = encode_jpeg(item.image, quality)
                    img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                    pictures.append(img[:, :, ::-1])
                    audio.append(pending)
                elif isinstance(item, StateChanged) and spoke and item.state != "speaking":
                    break
                elif isinstance(item, VideoFrame) and spoke and not item.turn:
                    break
        await session.aclose()
    finally:
        await engine.aclose()
    if not pictures:
        raise RuntimeError("the session sent no speaking frames")
    if err is not None:
        err.log(f"{len(pictures)} speaking frames ({len(pictures) / fps:.1f} s)")
    return pictures, np.concatenate(audio), rate, fps


def mouth_series(pictures: list[np.ndarray]) -> np.ndarray:
    """Mouth opening re-detected on every picture (NaN where no face is found)."""
    from anima.render.face import mouth_opening, shared_detector

    detector = shared_detector()
    out = np.full(len(pictures), np.nan)
    for k, img in enumerate(pictures):
        faces = detector.detect(np.ascontiguousarray(img))
        if faces:
            out[k] = mouth_opening(faces[0])
    return out


def measure(pictures: list[np.ndarray], audio: np.ndarray, rate: int, fps: int) -> dict[str, Any]:
    """Offset and correlation of the mouth in ``pictures`` with the envelope of ``audio``."""
    mouth = mouth_series(pictures)
    env = speech_envelope(audio, len(pictures), rate / fps)
    result = av_offset(mouth, env, fps)
    result["frames"] = len(pictures)
    result["faces_found"] = int(np.isfinite(mouth).sum())
    result["mouth"] = [None if not np.isfinite(v) else round(float(v), 4) for v in mouth]
    result["envelope"] = [round(float(v), 2) for v in env]
    return result


def bench_quality(out: Path, settings: Settings, err: Console) -> int:
    """Render, re-detect, correlate; write ``quality.json`` and ``quality_av.png``."""
    t0 = time.perf_counter()
    pictures, audio, rate, fps = asyncio.run(render_speech(settings, TEXT, err))
    q = measure(pictures, audio, rate, fps)
    result = {
        "benchmark": "quality",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "text": TEXT,
            "fps": fps,
            "sample_rate": rate,
            "jpeg_quality": settings.server.jpeg_quality,
            "detector": "anima.render.face (MediaPipe face mesh)",
            "sign": "offset_ms > 0: the mouth moves after the sound (video late)",
        },
        "load_average": os.getloadavg(),
        "seconds": time.perf_counter() - t0,
        **q,
    }
    path = write_result(out, "quality", result)
    with contextlib.suppress(Exception):  # the plot is a convenience; the JSON is the result
        _plot(q, fps, out / "quality_av.png")
    err.print(
        f"A/V offset {q['offset_ms']:+.0f} ms, correlation {q['correlation']:.2f} "
        f"(lag 0: {q['correlation_lag0']:.2f}), faces on {q['faces_found']}/{q['frames']} frames"
    )
    err.print(f"wrote {path}")
    return 0


def _plot(q: dict[str, Any], fps: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mouth = np.array([np.nan if v is None else v for v in q["mouth"]], float)
    env = np.array(q["envelope"], float)
    t = np.arange(len(mouth)) / fps

    def z(a: np.ndarray) -> np.ndarray:
        return (a - np.nanmean(a)) / (np.nanstd(a) or 1.0)

    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(t, z(env), label="speech envelope (RMS)", lw=1)
    ax.plot(t, z(mouth), label="mouth opening (re-detected)", lw=1)
    ax.set_xlabel("seconds")
    ax.set_title(f"A/V offset {q['offset_ms']:+.0f} ms, r = {q['correlation']:.2f}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
