"""``anima drive``: a recording (or stdin) as a live microphone, written to a playable MP4."""

from __future__ import annotations

import io
import sys
import wave

import av
import numpy as np
import pytest

from anima.cli import main


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ANIMA_RENDER__SIZE", "128")  # small frames: the test is about timing
    return tmp_path


@pytest.fixture(scope="module")
def speech(voice) -> tuple[np.ndarray, int]:
    pcm = np.concatenate([c.pcm for c in voice.synthesize("Welcome to the museum.")])
    return np.concatenate([np.zeros(4000, np.int16), pcm]), voice.sample_rate


def write_wav(path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def probe(path) -> tuple[float, int, np.ndarray]:
    """(duration s, video frames, mono audio at 16 kHz) of an MP4, decoded back."""
    with av.open(str(path)) as c:
        kinds = {s.type for s in c.streams}
        assert kinds == {"video", "audio"}
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        r = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        audio = [f.to_ndarray().reshape(-1) for fr in c.decode(audio=0) for f in r.resample(fr)]
        duration = c.duration / 1e6
    return duration, frames, np.concatenate(audio)


@pytest.mark.slow
def test_drive_writes_a_playable_mp4_as_long_as_the_input(env, speech, capsys):
    pcm, rate = speech
    wav, out = env / "in.wav", env / "out.mp4"
    write_wav(wav, pcm, rate)
    assert main(["drive", str(wav), "-o", str(out), "--fast"]) == 0
    assert "wrote" in capsys.readouterr().err
    seconds = len(pcm) / rate
    duration, frames, audio = probe(out)
    assert abs(duration - seconds) < 0.1 and abs(frames - seconds * 25) <= 2
    # The voice in the file is the voice that went in (AAC keeps the loud parts loud).
    loud = np.abs(audio.astype(float))
    assert loud[: 16_000 * 4000 // rate - 800].max() < 500 < loud.max()


@pytest.mark.slow
def test_drive_from_stdin_in_real_time(env, speech, capsys, monkeypatch):
    pcm, rate = speech
    clip = pcm[: int(rate * 0.8)]  # 0.8 s, played in real time, as 16 kHz s16le on stdin
    t = np.arange(int(len(clip) * 16_000 / rate)) * rate / 16_000
    raw = np.interp(t, np.arange(len(clip)), clip)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw.astype("<i2").tobytes())))
    out = env / "live.mp4"
    assert main(["drive", "-", "-o", str(out)]) == 0
    duration, frames, _ = probe(out)
    # Live: the file also holds the idle frames before the first block arrived (about one).
    assert 0.8 - 0.05 < duration < 0.8 + 0.2 and frames >= 20


def test_bad_input_gives_one_clear_line(env, capsys, monkeypatch):
    text = env / "notes.wav"
    text.write_text("this is not audio")
    cases = [
        (["drive", str(text)], "not an audio file"),
        (["drive", str(env / "missing.wav")], "no such audio file"),
        (["drive", "-", "--rate", "4000"], "4000 Hz"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    for data, message in [(b"\x01\x02\x03", "inside a sample"), (b"", "no audio")]:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
        assert main(["drive", "-", "-o", str(env / "x.mp4"), "--fast"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
