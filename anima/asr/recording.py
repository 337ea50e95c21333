"""The live listener run over a recording (``anima transcribe``), to check recognition.

A file is decoded with PyAV (anything FFmpeg reads) and fed to the same streaming
:class:`~anima.asr.listener.Listener` a live session uses, in 20 ms chunks as fast as the CPU
allows, so what comes out is what a session would have heard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from anima.asr.audio import RATE, AudioError
from anima.asr.listener import Final, Listener

CHUNK = RATE // 50  # 20 ms, the usual size of a live audio frame


def decode_file(path: Path) -> Iterator[np.ndarray]:
    """16 kHz mono int16 blocks of the first audio stream of ``path``."""
    if not path.is_file():
        raise AudioError(f"no such file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioError(f"cannot read {path}: not an audio file FFmpeg understands") from exc
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as exc:
            raise AudioError(f"{path} is damaged: {exc}") from exc


async def transcribe_file(path: Path, listener: Listener) -> list[Final]:
    """Every final utterance of ``path``, in order."""
    finals: list[Final] = []
    pending = np.zeros(0, np.int16)
    for block in decode_file(path):
        pending = np.concatenate([pending, block])
        n = len(pending) // CHUNK * CHUNK
        for i in range(0, n, CHUNK):
            events = await listener.feed(pending[i : i + CHUNK], RATE)
            if listener.deciding:
                # Faster than real time, the pause would be over before its decode is: wait
                # for it, so endpoints fall as on a live stream (and do not depend on CPU speed).
                events += await listener.drain()
            finals.extend(e for e in events if isinstance(e, Final))
        pending = pending[n:]
    if len(pending):
        events = await listener.feed(pending, RATE)
        finals.extend(e for e in events if isinstance(e, Final))
    finals.extend(e for e in await listener.flush() if isinstance(e, Final))
    return finals
