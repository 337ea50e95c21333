"""Phoneme timings -> one mouth shape per video frame, blended with coarticulation.

Each phoneme pulls every mouth parameter toward its viseme target with a dominance that peaks
at the phoneme's centre and decays exponentially away from it (Cohen & Massaro 1993). A frame's
shape is the dominance-weighted mean of all targets, so lips move continuously, anticipate the
next sound and never snap between shapes, while strong sounds (p/b/m closure, rounded vowels)
still reach their targets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from anima.frames import MouthShape, PhonemeTiming
from anima.lipsync.visemes import (
    LENGTH_MARKS,
    STRESS_MARKS,
    is_pause,
    tongue_targets,
    viseme_arrays,
)

# How far a phoneme's influence reaches, as a multiple of its own duration, and at least this.
_REACH = 0.55
_MIN_REACH_S = 0.035
_PAUSE_REACH_S = 0.06


def merge_marks(timings: Sequence[PhonemeTiming]) -> list[PhonemeTiming]:
    """Fold stress marks into the next phoneme and length marks into the previous one."""
    out: list[PhonemeTiming] = []
    pending_start: float | None = None
    for t in timings:
        if t.phoneme in STRESS_MARKS:
            pending_start = t.start if pending_start is None else pending_start
            continue
        if t.phoneme in LENGTH_MARKS and out:
            prev = out[-1]
            out[-1] = PhonemeTiming(prev.phoneme, prev.start, t.end)
            continue
        start = pending_start if pending_start is not None else t.start
        pending_start = None
        out.append(PhonemeTiming(t.phoneme, start, t.end))
    if pending_start is not None and out:
        prev = out[-1]
        out[-1] = PhonemeTiming(prev.phoneme, prev.start, timings[-1].end)
    return out


def mouth_track(
    timings: Sequence[PhonemeTiming], times: np.ndarray, loudness: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mouth parameters at each of ``times`` (seconds, relative to the timings' origin).

    Returns ``(params, speaking)``: params is (len(times), 4) in MouthShape order, speaking is
    a bool per time. ``loudness`` (0..1 per time), when given, scales the jaw a little, as a
    louder voice opens the mouth wider.
    """
    times = np.asarray(times, dtype=np.float64)
    merged = merge_marks(timings)
    if not merged or times.size == 0:
        return np.zeros((times.size, 4)), np.zeros(times.size, dtype=bool)
    targets, dominance = viseme_arrays([t.phoneme for t in merged])
    starts = np.array([t.start for t in merged])
    ends = np.array([t.end for t in merged])
    centres = (starts + ends) / 2
    pause = np.array([is_pause(t.phoneme) for t in merged])
    reach = np.maximum((ends - starts) * _REACH, _MIN_REACH_S)
    # A long pause must not reach far into the words around it: its pull is local.
    reach[pause] = np.minimum(reach[pause], _PAUSE_REACH_S)
    # Distance outside the phoneme's own span: full dominance inside it, decaying outside.
    dist = np.maximum(0.0, np.abs(times[:, None] - centres[None, :]) - (ends - starts)[None, :] / 2)
    weight = np.exp(-dist / reach[None, :])  # (frames, phonemes)
    dom = weight[:, :, None] * dominance[None, :, :]
    params = (dom * targets[None, :, :]).sum(axis=1) / np.maximum(dom.sum(axis=1), 1e-9)
    inside = (times[:, None] >= starts[None, :]) & (times[:, None] < ends[None, :])
    speaking = (inside & ~pause[None, :]).any(axis=1)
    if loudness is not None:
        params[:, 0] *= 0.65 + 0.35 * np.clip(loudness, 0.0, 1.0)
    return np.clip(params, 0.0, 1.0), speaking


def tongue_track(timings: Sequence[PhonemeTiming], times: np.ndarray) -> np.ndarray:
    """(len(times), 2) tongue tip (up, out) at each of ``times``: full during an /l/ /n/ /th/,
    easing in and out over its neighbours (the tongue moves a little ahead of the sound)."""
    times = np.asarray(times, dtype=np.float64)
    merged = merge_marks(timings)
    if not merged or times.size == 0:
        return np.zeros((times.size, 2))
    tips = tongue_targets([t.phoneme for t in merged])
    starts = np.array([t.start for t in merged])
    ends = np.array([t.end for t in merged])
    centres = (starts + ends) / 2
    dist = np.maximum(0.0, np.abs(times[:, None] - centres[None, :]) - (ends - starts)[None, :] / 2)
    weight = np.exp(-((dist / 0.05) ** 2))  # (frames, phonemes)
    return (weight[:, :, None] * tips[None, :, :]).max(axis=1)


def loudness_envelope(
    pcm: np.ndarray, sample_rate: int, times: np.ndarray, window: float
) -> np.ndarray:
    """RMS loudness of ``pcm`` around each of ``times``, normalised to 0..1 by its 95th percentile."""
    x = pcm.astype(np.float32) / 32768.0
    half = max(1, int(window * sample_rate / 2))
    centres = np.clip((np.asarray(times) * sample_rate).astype(np.int64), 0, max(0, len(x) - 1))
    csum = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    lo = np.clip(centres - half, 0, len(x))
    hi = np.clip(centres + half, 0, len(x))
    rms = np.sqrt((csum[hi] - csum[lo]) / np.maximum(hi - lo, 1))
    ref = np.percentile(rms, 95) if rms.size else 0.0
    return rms / ref if ref > 1e-6 else np.zeros_like(rms)


def to_shapes(params: np.ndarray) -> list[MouthShape]:
    """Rows of (jaw, width, round, closure) as MouthShape objects."""
    return [MouthShape(*map(float, row)) for row in params]
