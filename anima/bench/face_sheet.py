"""One renderer's half of ``anima bench face``: viseme sheets, a spoken clip, cost and mouth track.

Runnable as a script (``python face_sheet.py SPEECH.npz OUT TAG``) so that the same code can
drive another checkout's renderer (git main's, for the "before" sheets): it uses only APIs that
renderer already had (the sample avatar, :class:`FaceAnimator`, :class:`Mp4Writer`, and the
landmark re-detection of ``anima bench quality``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

# The viseme classes of the sheet and their mouth targets (jaw, width, round, closure), as
# anima.lipsync.visemes defines them.
VISEMES = {
    "rest": (0.0, 0.3, 0.0, 0.2),
    "a/aa": (0.95, 0.45, 0.05, 0.0),
    "e": (0.55, 0.6, 0.0, 0.0),
    "i": (0.25, 0.85, 0.0, 0.0),
    "o": (0.65, 0.3, 0.7, 0.0),
    "u": (0.25, 0.1, 0.95, 0.0),
    "m/b/p": (0.02, 0.35, 0.0, 1.0),
    "f/v": (0.1, 0.45, 0.0, 0.6),
    "th": (0.22, 0.45, 0.0, 0.0, 0.0, 1.0),  # tongue out between the teeth
    "l": (0.3, 0.45, 0.0, 0.0, 1.0, 0.0),  # tongue tip at the upper teeth
}


def _label(img: np.ndarray, text: str) -> np.ndarray:
    import cv2

    out = img.copy()
    cv2.putText(out, text, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def _shape(cls: type, values) -> object:
    """A MouthShape from values in field order, dropping those an older renderer lacks."""
    from dataclasses import fields

    return cls(*list(values)[: len(fields(cls))])


def sheets(out: Path, tag: str, avatar, size: int) -> None:
    """``face_<tag>.png`` (each viseme at full size) and ``face_<tag>_mouth.png`` (2x crops)."""
    from PIL import Image

    from anima.frames import MouthShape
    from anima.render.animator import FaceAnimator

    shift = (avatar.work_size - size) / 2
    lm = avatar.landmarks
    s = float(np.linalg.norm(lm[291] - lm[61]))
    c = (lm[61] + lm[291]) / 2 - shift
    half = int(round(0.75 * s))
    cx, cy = int(c[0]), int(c[1] + 0.25 * s)
    full, crops = [], []
    for name, target in VISEMES.items():
        anim = FaceAnimator(avatar, size=size, seed=1, head_motion=0.0)
        img = anim.render(0, _shape(MouthShape, target), False)
        full.append(_label(img, name))
        crop = img[cy - half : cy + half, cx - half : cx + half]
        big = np.array(Image.fromarray(crop).resize((4 * half, 4 * half), Image.LANCZOS))
        crops.append(_label(big, name))
    grid = np.vstack([np.hstack(full[:5]), np.hstack(full[5:])])
    Image.fromarray(grid).save(out / f"face_{tag}.png")
    Image.fromarray(np.vstack([np.hstack(crops[:5]), np.hstack(crops[5:])])).save(
        out / f"face_{tag}_mouth.png"
    )


def clip(out: Path, tag: str, avatar, size: int, speech: dict) -> dict:
    """Render the speech's mouth track on one pinned core; MP4, cost and re-detected mouth."""
    import cv2

    from anima.bench.quality import mouth_series
    from anima.frames import AudioFrame, MouthShape, VideoFrame
    from anima.media import Mp4Writer
    from anima.render.animator import FaceAnimator

    fps = int(speech["fps"])
    anim = FaceAnimator(avatar, size=size, fps=fps, seed=1)
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    cv2.setNumThreads(1)
    frames, times, cpu = [], [], []
    # Tongue, pitch and question per frame (tongue_up, tongue_out, pitch, question), when given.
    cues = speech.get("cues", np.zeros((len(speech["params"]), 0)))
    for i, (p, sp) in enumerate(zip(speech["params"], speech["speaking"], strict=True)):
        t0, c0 = time.perf_counter(), time.process_time()
        shape = _shape(MouthShape, [*map(float, p), *map(float, cues[i])])
        frames.append(anim.render(i, shape, bool(sp)))
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    if affinity:
        os.sched_setaffinity(0, affinity)
    writer = Mp4Writer(out / f"face_{tag}.mp4", size, fps)
    writer.write_audio(AudioFrame(turn=0, pcm=speech["pcm"], sample_rate=int(speech["rate"])))
    for i, img in enumerate(frames):
        writer.write_video(VideoFrame(turn=0, image=img, index=i))
    writer.close()
    mouth = mouth_series(frames)
    return {
        "frames": len(frames),
        # Wall time per frame, and the CPU time the process spent on it: on a shared machine
        # the second is the steadier figure of what a frame costs.
        "frame_ms": _stats(times[5:]),
        "frame_cpu_ms": _stats(cpu[5:]),
        "mouth": [None if not np.isfinite(v) else float(v) for v in mouth],
    }


def _stats(values: list[float]) -> dict[str, float]:
    v = np.array(values)
    return {"mean": float(v.mean()), "p50": float(np.median(v)), "p95": float(np.percentile(v, 95))}


def main(speech_path: str, out_dir: str, tag: str) -> None:
    """Write both sheets, the clip and ``face_<tag>.json`` for the renderer on ``sys.path``."""
    from anima.config import Settings
    from anima.render.avatar import prepare_avatar, sample_portrait

    out = Path(out_dir)
    r = Settings().render
    avatar = prepare_avatar(sample_portrait(), "sample", size=r.size, margin=r.face_margin)
    sheets(out, tag, avatar, r.size)
    data = np.load(speech_path)
    result = clip(out, tag, avatar, r.size, {k: data[k] for k in data.files})
    (out / f"face_{tag}.json").write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
