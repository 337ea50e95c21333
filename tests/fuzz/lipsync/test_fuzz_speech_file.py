"""Speech files under hostile input: ``load_speech`` decodes or raises AudioFileError only.

Mutated WAV / FLAC / MP3-in-MP4 bytes and random bytes; headers claiming 8 channels or
768 kHz refused before decoding; a decode past its time budget stopped (injected clock).
"""

from __future__ import annotations

import io
import struct
import sys
import tempfile
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz, regression_files  # noqa: E402

from anima.lipsync.audio_stage import AudioFileError, AudioLimits, load_speech  # noqa: E402

LIMITS = AudioLimits(max_seconds=5.0, max_bytes=256 * 1024, timeout=10.0)


def _tone(rate: int = 16_000, seconds: float = 0.3) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)


def wav_bytes(rate: int = 16_000, channels: int = 1, pcm: np.ndarray | None = None) -> bytes:
    """A PCM WAV file; ``pcm`` is mono and repeated on every channel."""
    pcm = _tone(rate) if pcm is None else pcm
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())
    return buf.getvalue()


def _encoded(fmt: str, codec: str) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        s = c.add_stream(codec, rate=16_000, layout="mono")
        frame = av.AudioFrame.from_ndarray(_tone().reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16_000
        for out in (*s.encode(frame), *s.encode(None)):
            c.mux(out)
    return buf.getvalue()


SEEDS = [wav_bytes(), wav_bytes(44_100, 2), _encoded("flac", "flac"), _encoded("mp4", "aac")]


def _mutate(seed_i: int, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(SEEDS[seed_i % len(SEEDS)])
    for pos, value in flips:
        data[pos % len(data)] = value
    return bytes(data[: max(1, len(data) - cut)])


speech = st.builds(
    _mutate,
    st.integers(0, len(SEEDS) - 1),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=6)
    | st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=6),
    st.integers(0, 2000) | st.just(0),
) | st.binary(max_size=200)


def check_speech(data: bytes) -> None:
    """Any bytes as a speech file: int16 16 kHz PCM within the limit, or AudioFileError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.bin"
        path.write_bytes(data)
        try:
            pcm = load_speech(path, limits=LIMITS)
        except AudioFileError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
    assert pcm.dtype == np.int16 and 0 < pcm.size <= int(LIMITS.max_seconds * 16_000) + 16_000


test_speech, test_speech_slow = fuzz(
    check_speech, speech, examples=150, cases=[(b,) for b in regression_files("speech")]
)


def _claiming(rate: int, channels: int) -> bytes:
    """A WAV whose header claims ``rate`` Hz and ``channels`` but holds a few bytes."""
    data = b"\x00\x00" * channels * 64
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data))
    return b"RIFF" + struct.pack("<I", len(body) + len(data)) + body + data


@pytest.mark.parametrize(
    ("rate", "channels", "what"),
    [(768_000, 1, "sample rate"), (16_000, 8, "channels"), (768_000, 8, "sample rate")],
)
def test_header_claims_refused_before_decoding(tmp_path, monkeypatch, rate, channels, what):
    """8 channels or 768 kHz in the header: refused before a single frame is decoded."""
    path = tmp_path / "claim.wav"
    path.write_bytes(_claiming(rate, channels))
    decoded = []
    real = av.AudioResampler
    # The resampler is made right before the first frame is decoded: if it is never made,
    # nothing was decoded.
    monkeypatch.setattr(av, "AudioResampler", lambda *a, **k: decoded.append(1) or real(*a, **k))
    with pytest.raises(AudioFileError, match=what):
        load_speech(path)
    assert decoded == []


def test_claimed_duration_refused_before_decoding(tmp_path):
    """A header saying the file is longer than the limit is refused up front."""
    path = tmp_path / "long.wav"
    path.write_bytes(wav_bytes(pcm=np.tile(_tone(), 40)))  # 12 s
    with pytest.raises(AudioFileError, match="longer than the 5 s limit"):
        load_speech(path, limits=AudioLimits(max_seconds=5.0))


def test_size_refused_before_opening(tmp_path):
    """Too many bytes: refused from the file size."""
    path = tmp_path / "big.wav"
    path.write_bytes(b"\x00" * (LIMITS.max_bytes + 1))
    with pytest.raises(AudioFileError, match="MB"):
        load_speech(path, limits=LIMITS)


def test_slow_decode_is_stopped(tmp_path):
    """A decode that runs past the time budget stops with an error (clock injected)."""
    path = tmp_path / "ok.wav"
    path.write_bytes(wav_bytes(pcm=np.tile(_tone(), 10)))  # 3 s in many frames
    ticks = iter(range(0, 10_000, 4))  # every look at the clock: 4 s later
    with pytest.raises(AudioFileError, match="took longer than 10 s"):
        load_speech(path, limits=LIMITS, clock=lambda: float(next(ticks)))
    # the same file within its budget decodes fine
    assert load_speech(path, limits=LIMITS).size > 16_000
