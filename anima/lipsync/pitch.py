"""The voice's pitch (F0) per video frame, and whether a phrase ends as a question.

A cheap autocorrelation tracker (numpy only): each frame's 40 ms window is correlated with
itself through one batched FFT; the first lag whose normalised correlation comes within 10 %
of the best one is the period (taking the first such peak avoids octave-down errors), refined
by a parabola through its neighbours. Windows that are quiet or not periodic are unvoiced (0).
"""

from __future__ import annotations

import numpy as np

FMIN, FMAX = 70.0, 400.0
_VOICED = 0.5  # normalised correlation a voiced window reaches
QUESTION_MARKS = frozenset("?？")
_RISE_ST = 2.0  # semitones above the phrase's median at the end: a rising (question) end
_END_S = 0.8  # the end of a phrase that a question's raise covers


def f0_track(
    pcm: np.ndarray, sample_rate: int, times: np.ndarray, window: float = 0.04
) -> np.ndarray:
    """F0 in Hz of ``pcm`` around each of ``times`` (seconds); 0 where unvoiced or silent."""
    times = np.asarray(times, dtype=np.float64)
    pcm = np.asarray(pcm)
    x = pcm.astype(np.float32) / (32768.0 if pcm.dtype.kind in "iu" else 1.0)
    w = max(16, int(window * sample_rate))
    lo_lag = max(2, int(sample_rate / FMAX))
    hi_lag = min(w - 2, int(np.ceil(sample_rate / FMIN)))
    out = np.zeros(times.size)
    if times.size == 0 or len(x) < w or hi_lag <= lo_lag + 2:
        return out
    starts = np.clip((times * sample_rate).astype(np.int64) - w // 2, 0, len(x) - w)
    seg = x[starts[:, None] + np.arange(w)[None, :]]
    seg = seg - seg.mean(axis=1, keepdims=True)
    energy = (seg**2).mean(axis=1)
    spec = np.fft.rfft(seg, n=2 * w, axis=1)
    r = np.fft.irfft(spec * np.conj(spec), axis=1)[:, :w]
    lags = np.arange(w)
    # Unbiased and normalised: a periodic window scores ~1 at each multiple of its period.
    rn = r / np.maximum(r[:, :1], 1e-12) * (w / np.maximum(w - lags, 1))[None, :]
    band = rn[:, lo_lag : hi_lag + 1]
    best = band.max(axis=1)
    peak = (band[:, 1:-1] >= band[:, :-2]) & (band[:, 1:-1] >= band[:, 2:])
    good = peak & (band[:, 1:-1] >= 0.9 * best[:, None])
    for i in np.flatnonzero((best > _VOICED) & (energy > 1e-6) & good.any(axis=1)):
        k = int(np.argmax(good[i])) + 1  # index into band
        a, b, c = band[i, k - 1], band[i, k], band[i, k + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if abs(den) > 1e-9 else 0.0
        out[i] = sample_rate / (lo_lag + k + float(np.clip(shift, -0.5, 0.5)))
    return out


def pitch_cues(
    pcm: np.ndarray, sample_rate: int, times: np.ndarray, text: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """``(pitch, question)`` per time: semitones above the phrase's median F0 (0 unvoiced),
    and 0..1 rising over the phrase's last ``_END_S`` seconds when it is a question.

    A question is a '?' ending ``text`` or, without one, a voice that ends well above its
    median pitch.
    """
    times = np.asarray(times, dtype=np.float64)
    f0 = f0_track(pcm, sample_rate, times)
    voiced = f0 > 0
    pitch = np.zeros(times.size)
    question = np.zeros(times.size)
    if voiced.sum() < 3:
        return pitch, question
    pitch[voiced] = 12.0 * np.log2(f0[voiced] / np.median(f0[voiced]))
    end = float(times[voiced][-1])
    tail = voiced & (times >= end - 0.3)
    asks = text.rstrip().endswith(tuple(QUESTION_MARKS)) or (
        bool(tail.any()) and float(np.median(pitch[tail])) > _RISE_ST
    )
    if asks:
        question = np.clip((times - (end - _END_S)) / _END_S, 0.0, 1.0)
    return pitch, question
