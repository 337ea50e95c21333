"""Reading speech files for ``say --audio``: formats, rates, and clear errors for bad input."""

from __future__ import annotations

import av
import numpy as np
import pytest

from anima.lipsync.audio_stage import AudioFileError, load_speech, speech_chunks


def _write(path, pcm: np.ndarray, rate: int, channels: int = 1, codec: str = "pcm_s16le"):
    with av.open(str(path), "w") as c:
        layout = "stereo" if channels == 2 else "mono"
        s = c.add_stream(codec, rate=rate, layout=layout)
        data = np.repeat(pcm[None], channels, 0).reshape(1, -1) if channels == 2 else pcm[None]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="s16", layout=layout)
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def _tone(rate: int, seconds: float) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)


def test_stereo_44k_wav_becomes_16k_mono(tmp_path):
    path = tmp_path / "a.wav"
    _write(path, _tone(44_100, 1.0), 44_100, channels=2)
    pcm = load_speech(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 16_000) < 400
    assert np.abs(pcm).max() > 4000


def test_compressed_format(tmp_path):
    path = tmp_path / "a.mp3"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libmp3lame", rate=22_050, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            (_tone(22_050, 1.0).astype(np.float32) / 32768)[None], format="fltp", layout="mono"
        )
        frame.sample_rate = 22_050
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    assert abs(len(load_speech(path)) - 16_000) < 1600


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such audio file"),
        (lambda p: p.write_bytes(b"this is not audio at all" * 50), "not an audio file"),
        (lambda p: _write(p, np.zeros(16_000, np.int16), 16_000), "silent"),
        (lambda p: _write(p, _tone(16_000, 0.05), 16_000), "less than 0.1 s"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioFileError, match=message) as info:
        load_speech(path)
    assert "\n" not in str(info.value)


def test_too_long_is_refused(tmp_path):
    path = tmp_path / "long.wav"
    _write(path, _tone(16_000, 3.0), 16_000)
    with pytest.raises(AudioFileError, match="longer than"):
        load_speech(path, max_seconds=1.0)


def test_chunks_cover_the_audio():
    pcm = np.arange(40_000, dtype=np.int16)
    chunks = list(speech_chunks(pcm, turn=3))
    assert [len(c.pcm) for c in chunks] == [16_000, 16_000, 8_000]
    assert all(c.turn == 3 and c.phonemes == () for c in chunks)
    np.testing.assert_array_equal(np.concatenate([c.pcm for c in chunks]), pcm)
