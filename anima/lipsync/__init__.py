"""Lip-sync: speech -> one mouth shape per video frame, on the audio clock.

:class:`PhonemeLipSync` drives the mouth from the voice's phoneme timings (visemes blended
with coarticulation). The pipeline stage lives in :mod:`anima.lipsync.stage`.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from anima.frames import MediaClock, MouthShape, SpeechChunk
from anima.lipsync.coarticulation import loudness_envelope, mouth_track, tongue_track


class LipSync(Protocol):
    """Turns a speech chunk placed on the audio clock into mouth shapes for its video frames."""

    def shapes(
        self, chunk: SpeechChunk, start_sample: int, clock: MediaClock
    ) -> list[tuple[int, MouthShape, bool]]:
        """``(frame index, shape, speaking)`` for every video frame whose time falls in the chunk."""
        ...


class PhonemeLipSync:
    """Visemes from phoneme timings, with coarticulation and a little loudness on the jaw."""

    def shapes(
        self, chunk: SpeechChunk, start_sample: int, clock: MediaClock
    ) -> list[tuple[int, MouthShape, bool]]:
        """Mouth shapes for the frames in ``[start_sample, start_sample + len(chunk.pcm))``."""
        if chunk.sample_rate != clock.sample_rate:
            raise ValueError(f"speech at {chunk.sample_rate} Hz on a {clock.sample_rate} Hz clock")
        first = clock.frames_for_samples(start_sample)
        last = clock.frames_for_samples(start_sample + len(chunk.pcm))
        if last <= first:
            return []
        indices = np.arange(first, last)
        times = (indices * clock.sample_rate / clock.fps - start_sample) / clock.sample_rate
        loud = loudness_envelope(chunk.pcm, chunk.sample_rate, times, window=2.0 / clock.fps)
        params, speaking = mouth_track(chunk.phonemes, times, loud)
        params = np.hstack([params, tongue_track(chunk.phonemes, times)])
        return [
            (int(i), MouthShape(*map(float, p)), bool(s))
            for i, p, s in zip(indices, params, speaking, strict=True)
        ]
