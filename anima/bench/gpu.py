"""``anima bench gpu``: the GPU path's numbers on whatever device the settings resolve to.

One command for a machine with a GPU (``anima bench gpu --config gpu.toml`` with ``device =
"cuda"``); on a CPU it runs the same code at small sizes and records ``device: cpu``, so the
path stays exercised (a test runs ``--quick``). Measured:

- **ASR**: decode latency and real-time factor of the configured Whisper model
  (``listen.model``, ``listen.device``, compute type float16 on CUDA) on speech made by the
  project's voice;
- **renderer**: neural mouth frames/s for 1, 4 and 16 concurrent sessions through one
  :class:`~anima.render.batching.BatchScheduler` with random weights (compute cost only,
  including the batching), and the mean batch each run made;
- **encode**: ms per video frame for libx264 and, where it opens, h264_nvenc.

JSON in ``<out>/gpu.json``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import stats, write_result
from anima.config import Settings

_TEXT = "Good morning, and welcome. How can I help you today?"


def bench_gpu(out: Path, settings: Settings, err: Console, *, quick: bool = False) -> int:
    """Measure ASR, the batched neural renderer and video encode; write ``gpu.json``."""
    result: dict[str, Any] = {
        "benchmark": "gpu",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": quick,
        "device": settings.device,
        "asr": _asr(settings, err, reps=2 if quick else 10),
        "renderer": _renderer(settings, err, quick=quick),
        "encode": _encode(settings, err, frames=10 if quick else 100, quick=quick),
        "notes": [
            "renderer: Wav2Lip-class generator (96 px faces, 80x16 mel), random weights, batched "
            "by one BatchScheduler across N concurrent sessions; frames/s is all sessions "
            "together, from submit to result (batch assembly, host<->device copies included).",
            "asr: our short-window decode (listen.encoder_window) of a Piper sentence; latency "
            "is compute time per utterance, rtf = compute / audio seconds.",
        ],
    }
    path = write_result(out, "gpu", result)
    err.print(f"wrote {path}")
    return 0


def _speech(settings: Settings) -> np.ndarray:
    """A sentence from the project's voice as 16 kHz float32."""
    from anima.render.neural_mouth import to_16k
    from anima.tts import load_voice

    voice = load_voice("piper", model=settings.voice.model)
    chunks = list(voice.synthesize(_TEXT))
    pcm = np.concatenate([c.pcm for c in chunks])
    return to_16k(pcm, voice.sample_rate)


def _asr(settings: Settings, err: Console, reps: int) -> dict[str, Any]:
    from anima.asr import load_recognizer

    rec = load_recognizer(settings.listen, settings.data_dir)
    audio = _speech(settings)
    rec.transcribe(audio)  # warm-up: CUDA kernels, allocator
    runs = [rec.transcribe(audio) for _ in range(reps)]
    latency = [r.compute_seconds for r in runs]
    out = {
        "model": settings.listen.model,
        "device": rec.device,
        "compute_type": rec.compute_type,
        "audio_seconds": runs[0].audio_seconds,
        "latency_s": stats(latency),
        "rtf": stats([t / runs[0].audio_seconds for t in latency]),
        "text": runs[0].text,
    }
    err.log(
        f"ASR on {rec.device} ({rec.compute_type}): {out['latency_s']['p50'] * 1000:.0f} ms for "
        f"{runs[0].audio_seconds:.1f} s, RTF {out['rtf']['p50']:.3f}"
    )
    return out


def _renderer(settings: Settings, err: Console, *, quick: bool) -> dict[str, Any]:
    if importlib.util.find_spec("torch") is None:
        return {"skipped": "torch is not installed (pip install 'anima[gpu]')"}
    from anima.device import resolve_device
    from anima.render.neural_mouth_net import MouthBatcher, load_generator

    dev = resolve_device(settings.render.device, "torch", what="neural mouth renderer")
    device = str(dev)
    net = load_generator(None, device, random_init=True)
    batcher = MouthBatcher(net, device, half=dev.cuda)
    sessions = (1, 4) if quick and not dev.cuda else (1, 4, 16)
    frames = 2 if quick else (50 if dev.cuda else 5)
    rng = np.random.default_rng(0)
    request = (
        rng.random((96, 96, 6), dtype=np.float32),
        rng.standard_normal((80, 16)).astype(np.float32),
    )
    batcher([request] * max(sessions))  # warm-up at the largest batch
    runs: dict[str, Any] = {}
    for n in sessions:
        runs[str(n)] = asyncio.run(_sessions(batcher, request, n, frames, settings))
        err.log(
            f"neural mouth on {device}, {n} session(s): {runs[str(n)]['frames_per_s']:.1f} "
            f"frames/s in all, mean batch {runs[str(n)]['mean_batch']:.1f}"
        )
    return {
        "device": device,
        "half": batcher.half,
        "face_px": 96,
        "frames_per_session": frames,
        "sessions": runs,
    }


async def _sessions(
    batcher: Any, request: Any, n: int, frames: int, settings: Settings
) -> dict[str, float]:
    """``n`` sessions each asking for ``frames`` frames one after another, sharing one batch."""
    from anima.render.batching import BatchScheduler

    sched = BatchScheduler(
        batcher, max_batch=max(n, 1), max_wait=settings.render.batch_wait_ms / 1000
    )

    async def session() -> None:
        for _ in range(frames):
            face = await sched.submit(request)
            assert face.shape == (96, 96, 3)

    t0 = time.perf_counter()
    await asyncio.gather(*(session() for _ in range(n)))
    wall = time.perf_counter() - t0
    await sched.aclose()
    return {
        "frames_per_s": n * frames / wall,
        "per_session_fps": frames / wall,
        "batches": sched.stats.batches,
        "mean_batch": sched.stats.items / max(1, sched.stats.batches),
        "wall_s": wall,
    }


def _encode(settings: Settings, err: Console, *, frames: int, quick: bool) -> dict[str, Any]:
    from anima.frames import VideoFrame
    from anima.media import NVENC, SOFTWARE, Mp4Writer, codec_opens

    size = 128 if quick else settings.render.size
    fps = settings.render.fps
    yy, xx = np.mgrid[0:size, 0:size]
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"size": size, "frames": frames}
    for codec in (SOFTWARE, NVENC):
        why = codec_opens(codec)
        if why:
            out[codec] = {"unavailable": why}
            continue
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            writer = Mp4Writer(Path(tmp) / "enc.mp4", size, fps, watermark=False, codec=codec)
            for k in range(frames):
                # Moving gradient plus noise: something an encoder must work for.
                image = np.stack([(xx + 3 * k) % 256, (yy + k) % 256, (xx + yy) % 256], -1)
                image = (image + rng.integers(0, 16, image.shape)).clip(0, 255).astype(np.uint8)
                t = time.perf_counter()
                writer.write_video(VideoFrame(turn=0, image=image, index=k))
                times.append(time.perf_counter() - t)
            writer.close()
        out[codec] = {"ms_per_frame": stats([t * 1000 for t in times])}
        err.log(f"{codec}: {out[codec]['ms_per_frame']['p50']:.2f} ms/frame at {size} px")
    return out
