"""Bare audio for the lip-sync stage: read a speech file and cut it into speech chunks.

``anima say --audio speech.wav`` has no phoneme timings; the audio goes through the same
:class:`~anima.lipsync.stage.LipSyncStage` as synthesised speech, with
:class:`~anima.lipsync.neural.NeuralLipSync` in place of the phoneme lip-sync. Files of any
format and rate FFmpeg reads are decoded by PyAV to 16 kHz mono, the network's own rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from anima.frames import SpeechChunk
from anima.lipsync.neural import SAMPLE_RATE


class AudioFileError(ValueError):
    """The speech file cannot be used (missing, not audio, damaged, silent or too long)."""


@dataclass(frozen=True)
class AudioLimits:
    """Limits on an untrusted speech file: checked on the file and its header before decoding,
    and again while decoding (a header may lie), with a wall-clock budget for the decode."""

    max_seconds: float = 600.0
    max_bytes: int = 200 * 1024 * 1024
    max_rate: int = 192_000
    max_channels: int = 6  # 5.1 passes; 7.1 and beyond is not speech for a face
    timeout: float = 60.0  # seconds of decoding before it is stopped


def load_speech(
    path: Path,
    max_seconds: float | None = None,
    *,
    limits: AudioLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> np.ndarray:
    """The first audio stream of ``path`` as 16 kHz mono int16, checked for use as speech.

    ``max_seconds`` overrides ``limits.max_seconds``; ``clock`` is injectable for tests.
    """
    lim = limits or AudioLimits()
    max_seconds = lim.max_seconds if max_seconds is None else max_seconds
    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"no such audio file: {path}")
    if (size := path.stat().st_size) > lim.max_bytes:
        raise AudioFileError(
            f"{path} is {size / 1e6:.1f} MB; the limit is {lim.max_bytes / 1e6:.1f} MB"
        )
    started = clock()
    try:
        container = av.open(str(path), timeout=lim.timeout)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioFileError(f"cannot read {path}: not an audio file FFmpeg understands") from exc
    limit = int(max_seconds * SAMPLE_RATE)
    blocks: list[np.ndarray] = []
    total = 0
    with container:
        if not container.streams.audio:
            raise AudioFileError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        _check_header(path, stream, container, lim, max_seconds)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                if (
                    frame.sample_rate > lim.max_rate
                    or len(frame.layout.channels) > lim.max_channels
                ):
                    raise AudioFileError(f"{path} changes to an unsupported rate or channel count")
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1))
                    total += blocks[-1].size
                if total > limit:
                    raise AudioFileError(
                        f"{path} is longer than the {max_seconds:.0f} s limit for one clip"
                    )
                if clock() - started > lim.timeout:
                    raise AudioFileError(
                        f"decoding {path} took longer than {lim.timeout:g} s; stopped"
                    )
            for out in resampler.resample(None):
                blocks.append(out.to_ndarray().reshape(-1))
        except (av.error.FFmpegError, ValueError) as exc:
            if isinstance(exc, AudioFileError):
                raise
            raise AudioFileError(f"{path} is damaged: {' '.join(str(exc).split())}") from exc
    pcm = np.concatenate(blocks).astype(np.int16) if blocks else np.zeros(0, np.int16)
    if pcm.size < SAMPLE_RATE // 10:
        raise AudioFileError(f"{path} holds less than 0.1 s of audio")
    if np.abs(pcm).max() < 33:  # below -60 dBFS everywhere: nothing to lip-sync
        raise AudioFileError(f"{path} is silent")
    return pcm


def _check_header(
    path: Path, stream: av.audio.stream.AudioStream, container, lim: AudioLimits, max_s: float
) -> None:
    """Refuse what the header declares beyond the limits, before any sample is decoded."""
    ctx = stream.codec_context
    if ctx is None:  # an unknown codec id: FFmpeg opened the file but has no decoder (fuzz)
        raise AudioFileError(f"{path} uses an audio codec FFmpeg cannot decode")
    rate, channels = ctx.sample_rate or 0, len(ctx.layout.channels) if ctx.layout else 0
    if rate > lim.max_rate:
        raise AudioFileError(f"{path} has a sample rate of {rate} Hz; the limit is {lim.max_rate}")
    if channels > lim.max_channels:
        raise AudioFileError(f"{path} has {channels} channels; the limit is {lim.max_channels}")
    seconds = container.duration / 1e6 if container.duration else 0.0  # AV_TIME_BASE units
    if seconds > max_s * 1.01:  # small slack: container durations round up
        raise AudioFileError(f"{path} is longer than the {max_s:.0f} s limit for one clip")


def speech_chunks(
    pcm: np.ndarray, turn: int, sample_rate: int = SAMPLE_RATE, seconds: float = 1.0
) -> Iterator[SpeechChunk]:
    """``pcm`` as consecutive chunks of ``seconds`` without phoneme timings."""
    step = max(1, int(seconds * sample_rate))
    for start in range(0, len(pcm), step):
        yield SpeechChunk(
            turn=turn, pcm=pcm[start : start + step], sample_rate=sample_rate, text=""
        )
