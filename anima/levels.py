"""Signal levels of PCM: the RMS of a chunk and of consecutive frames, in the samples' units.

One place for a computation the listener's end-of-speech (10 ms frames over a noise floor),
the WebRTC sender's "first audible chunk" and the benches all make. Sums run in float64, so an
int16 chunk does not overflow and a float32 one is not rounded along the way.
"""

from __future__ import annotations

import numpy as np

INT16_FULL_SCALE = 32768.0


def rms(x: np.ndarray) -> float:
    """Root mean square of ``x`` (0.0 when empty), in ``x``'s units."""
    if not len(x):
        return 0.0
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def frame_rms(x: np.ndarray, size: int) -> np.ndarray:
    """RMS of each whole frame of ``size`` samples of ``x``; a shorter tail is left out."""
    n = len(x) // size
    frames = np.asarray(x[: n * size], dtype=np.float64).reshape(n, size)
    return np.sqrt(np.mean(np.square(frames), axis=1))
