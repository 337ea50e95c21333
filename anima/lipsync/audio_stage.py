"""Bare audio for the lip-sync stage: read a speech file and cut it into speech chunks.

``anima say --audio speech.wav`` has no phoneme timings; the audio goes through the same
:class:`~anima.lipsync.stage.LipSyncStage` as synthesised speech, with
:class:`~anima.lipsync.neural.NeuralLipSync` in place of the phoneme lip-sync. Files of any
format and rate FFmpeg reads are decoded by PyAV to 16 kHz mono, the network's own rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from anima.frames import SpeechChunk
from anima.lipsync.neural import SAMPLE_RATE


class AudioFileError(ValueError):
    """The speech file cannot be used (missing, not audio, damaged, silent or too long)."""


def load_speech(path: Path, max_seconds: float = 600.0) -> np.ndarray:
    """The first audio stream of ``path`` as 16 kHz mono int16, checked for use as speech."""
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"no such audio file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioFileError(f"cannot read {path}: not an audio file FFmpeg understands") from exc
    limit = int(max_seconds * SAMPLE_RATE)
    blocks: list[np.ndarray] = []
    total = 0
    with container:
        if not container.streams.audio:
            raise AudioFileError(f"{path} has no audio stream")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1))
                    total += blocks[-1].size
                if total > limit:
                    raise AudioFileError(
                        f"{path} is longer than the {max_seconds:.0f} s limit for one clip"
                    )
            for out in resampler.resample(None):
                blocks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise AudioFileError(f"{path} is damaged: {exc}") from exc
    pcm = np.concatenate(blocks).astype(np.int16) if blocks else np.zeros(0, np.int16)
    if pcm.size < SAMPLE_RATE // 10:
        raise AudioFileError(f"{path} holds less than 0.1 s of audio")
    if np.abs(pcm).max() < 33:  # below -60 dBFS everywhere: nothing to lip-sync
        raise AudioFileError(f"{path} is silent")
    return pcm


def speech_chunks(
    pcm: np.ndarray, turn: int, sample_rate: int = SAMPLE_RATE, seconds: float = 1.0
) -> Iterator[SpeechChunk]:
    """``pcm`` as consecutive chunks of ``seconds`` without phoneme timings."""
    step = max(1, int(seconds * sample_rate))
    for start in range(0, len(pcm), step):
        yield SpeechChunk(
            turn=turn, pcm=pcm[start : start + step], sample_rate=sample_rate, text=""
        )
