"""Helpers for the listening tests (imported as a plain module: tests are not a package)."""

from __future__ import annotations

import numpy as np

from anima.asr.audio import RATE, resample


def synthesize(voice, text: str) -> np.ndarray:  # noqa: ANN001
    """The project's voice speaking ``text`` as 16 kHz float32."""
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
    return resample(pcm, voice.sample_rate)


def with_silence(*parts: np.ndarray | float) -> np.ndarray:
    """Concatenate audio arrays and silences given in seconds."""
    out = [np.zeros(int(p * RATE), np.float32) if isinstance(p, float) else p for p in parts]
    return np.concatenate(out).astype(np.float32)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """float -1..1 to int16 PCM, clipping."""
    return (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


async def feed_all(listener, audio, rate: int = RATE, chunk_s: float = 0.02, drain=False):  # noqa: ANN001
    """Feed ``audio`` in live-sized chunks; with ``drain`` wait for each decode (every partial).

    Either way, a pause waits for its decode (as ``anima transcribe`` does), so endpoints do
    not depend on how fast this CPU is: the tests are deterministic.
    """
    events = []
    step = int(chunk_s * rate)
    for i in range(0, len(audio), step):
        events += await listener.feed(audio[i : i + step], rate)
        if drain or listener.deciding:
            events += await listener.drain()
    events += await listener.flush()
    return events
