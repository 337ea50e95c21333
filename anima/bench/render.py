"""``anima bench render``: renderer speed on one core, TTS speed, and memory of ``anima say``.

Results go to ``<out>/render.json`` with the raw samples, plus two PNG frames (mid-sentence and
closed mouth) to look at. Speed figures are for comparing runs on the same machine.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.progress import Progress

from anima.bench.common import machine, stats, versions
from anima.config import Settings
from anima.frames import MediaClock, MouthShape, VideoFrame
from anima.lipsync import PhonemeLipSync
from anima.media import Mp4Writer
from anima.render.animator import FaceAnimator
from anima.render.avatar import Avatar, prepare_avatar, sample_portrait
from anima.tts import Voice, load_voice

TEN_SECONDS = (
    "Welcome to the city museum. The west wing holds paintings from the last three centuries, "
    "and the east wing shows how the river shaped the town. Ask me anything you like."
)
TTS_TEXT = "Good morning, and welcome. How can I help you today?"
# (frame index, mouth shape, speaking) as the lip-sync produces them.
Shaped = tuple[int, MouthShape, bool]


def bench_render(out: Path, settings: Settings, err: Console, frames: int = 250) -> int:
    """Measure and write ``render.json`` and the two PNG frames into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    r = settings.render
    result: dict[str, object] = {
        "benchmark": "render",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "versions": versions(),
        "config": {"size": r.size, "fps": r.fps, "frames": frames},
    }
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("loading", total=5)
        voice = load_voice(settings.voice.backend, model=settings.voice.model)
        avatar = prepare_avatar(sample_portrait(), "sample", size=r.size, margin=r.face_margin)
        progress.update(task, advance=1, description="TTS")
        result["tts"] = _bench_tts(voice)
        progress.update(task, advance=1, description="render (1 core)")
        render, shapes = _bench_render(voice, avatar, r.size, r.fps, frames, out)
        result["render"] = render
        progress.update(task, advance=1, description="encode")
        result["encode"] = _bench_encode(avatar, shapes, r.size, r.fps)
        progress.update(task, advance=1, description="anima say (10 s)")
        result["say_10s"] = _bench_say_memory()
        progress.update(task, advance=1)
    path = out / "render.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    _plot_frame_times(result["render"], r.fps, out / "render_frame_times.png")
    _print_summary(result, err)
    err.print(f"results: {path}")
    return 0


def _bench_tts(voice: Voice) -> dict[str, object]:
    first, total, audio = [], [], []
    for _ in range(5):
        t0 = time.perf_counter()
        it = voice.synthesize(TTS_TEXT)
        chunk = next(it)
        first.append(time.perf_counter() - t0)
        seconds = chunk.duration + sum(c.duration for c in it)
        total.append(time.perf_counter() - t0)
        audio.append(seconds)
    rtf = [t / a for t, a in zip(total, audio, strict=True)]
    return {
        "text": TTS_TEXT,
        "first_chunk_s": stats(first),
        "rtf": stats(rtf),
        "audio_s": audio[0],
        "samples": {"first_chunk_s": first, "total_s": total},
    }


def _speech_shapes(voice: Voice, fps: int) -> tuple[list[Shaped], int]:
    """Mouth shapes of the whole ten-second text, sentence after sentence on one clock."""
    shapes, start, clock = [], 0, None
    for chunk in voice.synthesize(TEN_SECONDS):
        clock = clock or MediaClock(chunk.sample_rate, fps)
        shapes += PhonemeLipSync().shapes(chunk, start, clock)
        start += len(chunk.pcm)
    return shapes, clock.sample_rate if clock else 0


def _bench_render(
    voice: Voice, avatar: Avatar, size: int, fps: int, frames: int, out: Path
) -> tuple[dict[str, object], list[Shaped]]:
    shapes, _ = _speech_shapes(voice, fps)
    anim = FaceAnimator(avatar, size=size, fps=fps, seed=1)
    import cv2

    threads = cv2.getNumThreads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    times = []
    try:
        # One core for real: the process is pinned, and OpenCV runs single-threaded.
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        cv2.setNumThreads(1)
        for i in range(frames):
            _, shape, speaking = shapes[i % len(shapes)]
            t0 = time.perf_counter()
            anim.render(i, shape, speaking)
            times.append(time.perf_counter() - t0)
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)
    # The two frames to look at: widest-open in the middle third, and the closed rest pose.
    third = len(shapes) // 3
    mid = max(range(third, 2 * third), key=lambda k: shapes[k][1].jaw_open)
    fresh = FaceAnimator(avatar, size=size, fps=fps, seed=1)
    Image.fromarray(fresh.render(mid, shapes[mid][1], True)).save(out / "frame_speaking.png")
    Image.fromarray(fresh.render(0, MouthShape(), False)).save(out / "frame_closed.png")
    return {
        "cores": 1,
        "frame_ms": stats([t * 1000 for t in times]),
        "fps": frames / sum(times),
        "realtime_factor": (frames / sum(times)) / fps,
        "speaking_frame": {"index": mid, "jaw_open": shapes[mid][1].jaw_open},
        "samples_ms": [t * 1000 for t in times],
    }, shapes


def _bench_encode(avatar: Avatar, shapes: list[Shaped], size: int, fps: int) -> dict[str, object]:
    anim = FaceAnimator(avatar, size=size, fps=fps, seed=1)
    images = [anim.render(i, s, sp) for i, (_, s, sp) in enumerate(shapes[:100])]
    with tempfile.TemporaryDirectory() as tmp:
        writer = Mp4Writer(Path(tmp) / "enc.mp4", size, fps)
        t0 = time.perf_counter()
        for i, img in enumerate(images):
            writer.write_video(VideoFrame(turn=0, image=img, index=i))
        writer.close()
        elapsed = time.perf_counter() - t0
    return {
        "codec": "libx264 veryfast",
        "frames": len(images),
        "ms_per_frame": 1000 * elapsed / len(images),
    }


def _bench_say_memory() -> dict[str, object]:
    """Run ``anima say`` as a child process: its peak RSS is the largest of our children's."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "ten.mp4"
        cmd = [
            sys.executable,
            "-m",
            "anima.cli",
            "--data-dir",
            tmp,
            "say",
            TEN_SECONDS,
            "-o",
            str(target),
        ]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if proc.returncode != 0:
            raise RuntimeError(f"anima say failed: {proc.stderr.strip()[-500:]}")
        import av

        with av.open(str(target)) as c:
            duration = float(c.duration / 1e6) if c.duration else 0.0
    return {
        "text_chars": len(TEN_SECONDS),
        "video_s": duration,
        "wall_s": wall,
        "peak_rss_mb": peak_kb / 1024,
        "note": "whole process: imports, models, face detection, synthesis, render, encode",
    }


def _plot_frame_times(render: dict, fps: int, path: Path) -> None:
    """Per-frame render time over the run, against the real-time budget of one frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = np.asarray(render["samples_ms"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax1.plot(ms, lw=0.8)
    ax1.axhline(1000 / fps, color="r", ls="--", label=f"real-time budget ({1000 / fps:.0f} ms)")
    ax1.set(xlabel="frame", ylabel="render ms (1 core)", title="render time per frame")
    ax1.legend()
    ax2.hist(ms, bins=40)
    ax2.axvline(float(np.percentile(ms, 50)), color="k", label="p50")
    ax2.axvline(float(np.percentile(ms, 95)), color="orange", label="p95")
    ax2.set(xlabel="render ms", ylabel="frames", title=f"{render['fps']:.0f} fps on one core")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _print_summary(result: dict, err: Console) -> None:
    tts, render, enc, say = result["tts"], result["render"], result["encode"], result["say_10s"]
    err.print(
        f"render (1 core): {render['fps']:.0f} fps, p50 {render['frame_ms']['p50']:.1f} ms, "
        f"p95 {render['frame_ms']['p95']:.1f} ms ({render['realtime_factor']:.1f}x real time)\n"
        f"encode: {enc['ms_per_frame']:.1f} ms/frame (H.264)\n"
        f"TTS: first chunk p50 {tts['first_chunk_s']['p50'] * 1000:.0f} ms, RTF p50 {tts['rtf']['p50']:.3f}\n"
        f"anima say, {say['video_s']:.1f} s video: {say['wall_s']:.1f} s wall, peak RSS {say['peak_rss_mb']:.0f} MB"
    )
