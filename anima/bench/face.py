"""``anima bench face``: the speaking face before (git main's renderer) and after (this one).

For each renderer (see :mod:`anima.bench.face_sheet`): a sheet of the sample portrait on each
viseme class at full size (``face_<tag>.png``) and cropped 2x on the mouth
(``face_<tag>_mouth.png``), a 10 s MP4 of it saying the render benchmark's text
(``face_<tag>.mp4``), render cost per frame on one pinned core, and the lip-sync measured from
the output: the mouth opening re-detected on every frame (MediaPipe face mesh) against the
speech envelope, correlation and offset as ``anima bench quality`` computes them.

"before" is rendered by the same script from a ``git archive`` of ``main`` (or
``ANIMA_BENCH_FACE_BEFORE``) in a child process; without git it is skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np
from rich.console import Console

from anima.bench.common import write_result
from anima.bench.quality import av_offset, speech_envelope
from anima.config import Settings

_SCRIPT = Path(__file__).with_name("face_sheet.py")
_ROOT = Path(__file__).resolve().parents[2]


def _speech(settings: Settings, path: Path) -> dict[str, object]:
    """Synthesise the ten-second text and save its audio and mouth track to ``path``."""
    from anima.bench.render import TEN_SECONDS
    from anima.frames import MediaClock
    from anima.lipsync import PhonemeLipSync
    from anima.lipsync.pitch import pitch_cues
    from anima.tts import load_voice

    voice = load_voice(settings.voice.backend, model=settings.voice.model)
    fps = settings.render.fps
    rows, pcm, start, clock, cues = [], [], 0, None, []
    for chunk in voice.synthesize(TEN_SECONDS):
        clock = clock or MediaClock(chunk.sample_rate, fps)
        got = PhonemeLipSync().shapes(chunk, start, clock)
        rows += got
        # As the lip-sync stage does: the voice's pitch and a question's end, per frame.
        times = (
            np.array([i for i, _, _ in got]) * clock.sample_rate / fps - start
        ) / clock.sample_rate
        pitch, asks = pitch_cues(chunk.pcm, chunk.sample_rate, times, chunk.text)
        cues += [
            (s.tongue_up, s.tongue_out, p, q)
            for (_, s, _), p, q in zip(got, pitch, asks, strict=True)
        ]
        pcm.append(chunk.pcm)
        start += len(chunk.pcm)
    audio = np.concatenate(pcm).astype(np.int16)
    np.savez(
        path,
        params=np.array([s.as_array() for _, s, _ in rows], np.float32),
        speaking=np.array([sp for _, _, sp in rows]),
        cues=np.array(cues, np.float32).reshape(-1, 4),
        pcm=audio,
        rate=clock.sample_rate if clock else 22050,
        fps=fps,
    )
    return {"text": TEN_SECONDS, "seconds": len(audio) / (clock.sample_rate if clock else 1)}


def _checkout(ref: str, into: Path) -> bool:
    """Extract ``anima/`` of git ``ref`` into ``into``; False when git or the ref is missing."""
    try:
        tar = subprocess.run(
            ["git", "-C", str(_ROOT), "archive", ref, "anima"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    with tarfile.open(fileobj=BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    return True


def _run(code_root: Path, speech: Path, out: Path, tag: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    subprocess.run([sys.executable, str(_SCRIPT), str(speech), str(out), tag], env=env, check=True)
    return json.loads((out / f"face_{tag}.json").read_text(encoding="utf-8"))


def _lipsync(mouth: list[float | None], speech: dict[str, np.ndarray]) -> dict[str, float]:
    m = np.array([np.nan if v is None else v for v in mouth], np.float64)
    rate, fps = int(speech["rate"]), int(speech["fps"])
    env = speech_envelope(speech["pcm"], len(m), rate / fps)
    return av_offset(m, env, fps)


def bench_face(out: Path, settings: Settings, err: Console) -> int:
    """Sheets, clips, cost and lip-sync for main's renderer and this one; ``face.json``."""
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, object] = {
        "benchmark": "face",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    ref = os.environ.get("ANIMA_BENCH_FACE_BEFORE", "main")
    with tempfile.TemporaryDirectory() as tmp:
        speech_path = Path(tmp) / "speech.npz"
        with err.status("synthesising the sample speech"):
            result["speech"] = _speech(settings, speech_path)
        data = np.load(speech_path)
        speech = {k: data[k] for k in data.files}
        runs = {"after": _ROOT}
        before = Path(tmp) / "before"
        if _checkout(ref, before):
            runs = {"before": before, **runs}
        else:
            err.print(f"no git checkout of {ref!r}: the 'before' sheet is skipped")
        for tag, root in runs.items():
            with err.status(f"rendering {tag} ({root})"):
                r = _run(root, speech_path, out, tag)
            r["lipsync"] = _lipsync(r.pop("mouth"), speech)
            r["ref"] = ref if tag == "before" else "working tree"
            result[tag] = r
    path = write_result(out, "face", result)
    for tag in runs:
        r = result[tag]
        ls = r["lipsync"]
        err.print(
            f"{tag:6s} {r['frame_ms']['mean']:.1f} ms/frame wall (p95 {r['frame_ms']['p95']:.1f}), "
            f"{r['frame_cpu_ms']['mean']:.1f} ms CPU; "
            f"lip-sync r={ls.get('correlation', float('nan')):.3f} "
            f"lag {ls.get('offset_ms', float('nan')):.0f} ms; "
            f"face_{tag}.png, face_{tag}_mouth.png, face_{tag}.mp4"
        )
    err.print(f"wrote {path}")
    return 0
