"""Incoming audio checked and brought to what the listener works on: 16 kHz mono float32.

Clients send whatever their device gives (44.1/48 kHz, stereo, int16 or float). Bad input is
refused with :class:`AudioError` and a one-line message instead of being guessed at: a NaN or
a wrong dtype deep inside the VAD would give silence, not an error.
"""

from __future__ import annotations

import av
import numpy as np

RATE = 16_000  # Silero VAD and Whisper both work at 16 kHz
MIN_RATE = 8_000
MAX_RATE = 192_000
MAX_CHANNELS = 8


class AudioError(ValueError):
    """Audio the listener cannot use; the message says why in one line."""


def check_pcm(pcm: object, sample_rate: int, channels: int = 1) -> np.ndarray:
    """``pcm`` validated and shaped (samples, channels); int16 or float32 in -1..1.

    Accepts 1-D interleaved samples or a 2-D (samples, channels) array.
    """
    if not isinstance(pcm, np.ndarray):
        raise AudioError(f"audio must be a numpy array, not {type(pcm).__name__}")
    if not isinstance(sample_rate, int | np.integer) or not MIN_RATE <= sample_rate <= MAX_RATE:
        raise AudioError(f"sample rate {sample_rate!r} is outside {MIN_RATE}..{MAX_RATE} Hz")
    _check_channels(channels)
    if pcm.dtype == np.int16:
        data = pcm
    elif pcm.dtype in (np.float32, np.float64):
        if not np.isfinite(pcm).all():
            raise AudioError("audio contains NaN or infinite samples")
        data = pcm.astype(np.float32, copy=False)
    else:
        raise AudioError(f"audio dtype {pcm.dtype} is not supported; send int16 or float32 PCM")
    if data.ndim == 1:
        if len(data) % channels:
            raise AudioError(f"{len(data)} samples do not divide into {channels} channels")
        return data.reshape(-1, channels)
    if data.ndim == 2 and data.shape[1] == channels:
        return data
    raise AudioError(f"audio shape {pcm.shape} does not match {channels} channel(s)")


def _check_channels(channels: object) -> None:
    # Checked before any arithmetic with it: 0 channels divided by zero (found by tests/fuzz).
    if not isinstance(channels, int | np.integer) or not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(f"{channels!r} channels; 1..{MAX_CHANNELS} are supported")


def pcm_from_bytes(data: bytes, sample_rate: int, channels: int = 1) -> np.ndarray:
    """Little-endian int16 PCM bytes (what WebSocket clients send) as a checked array."""
    _check_channels(channels)
    if len(data) % (2 * channels):
        raise AudioError(
            f"{len(data)} bytes is not a whole number of 16-bit {channels}-channel samples"
        )
    return check_pcm(np.frombuffer(data, dtype="<i2").astype(np.int16), sample_rate, channels)


def to_float(pcm: np.ndarray) -> np.ndarray:
    """int16 or float PCM (any shape) as float32 in -1..1, clipped."""
    if pcm.dtype == np.int16:
        return pcm.astype(np.float32) / 32768.0
    return np.clip(pcm.astype(np.float32, copy=False), -1.0, 1.0)


class Resampler:
    """Streaming conversion of any rate and channel count to 16 kHz mono float32.

    Keeps the filter state between calls (PyAV/FFmpeg swresample), so chunk boundaries leave
    no clicks. 16 kHz mono input passes through without copying through FFmpeg.
    """

    def __init__(self) -> None:
        self._key: tuple[int, int] | None = None
        self._swr: av.AudioResampler | None = None

    def __call__(self, pcm: object, sample_rate: int, channels: int = 1) -> np.ndarray:
        """Check ``pcm`` and return its 16 kHz mono float32 version (may be empty)."""
        data = check_pcm(pcm, sample_rate, channels)
        if sample_rate == RATE:
            return (
                to_float(data).mean(axis=1, dtype=np.float32)
                if channels > 1
                else to_float(data[:, 0])
            )
        key = (int(sample_rate), channels)
        if key != self._key:
            # A client switching format mid-stream restarts the filter rather than mixing rates.
            self._key = key
            self._swr = av.AudioResampler(format="flt", layout="mono", rate=RATE)
        assert self._swr is not None
        if not len(data):
            return np.zeros(0, np.float32)
        # Down-mix in numpy (the mean of the channels) so any channel count works the same way.
        mono = np.ascontiguousarray(to_float(data).mean(axis=1, dtype=np.float32))
        frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = int(sample_rate)
        return self._collect(self._swr.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter at the end of a stream."""
        if self._swr is None:
            return np.zeros(0, np.float32)
        out = self._collect(self._swr.resample(None))
        self._key, self._swr = None, None
        return out

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def resample(pcm: np.ndarray, sample_rate: int, channels: int = 1) -> np.ndarray:
    """A whole clip as 16 kHz mono float32."""
    r = Resampler()
    head = r(pcm, sample_rate, channels)
    return np.concatenate([head, r.flush()])
