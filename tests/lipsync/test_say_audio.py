"""End to end: ``anima say --audio speech.wav`` -> MP4, lips driven by the network."""

from __future__ import annotations

import av
import numpy as np
import pytest

from anima.cli import main

pytestmark = pytest.mark.slow


def _wav(path, pcm: np.ndarray, rate: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm[None], format="s16", layout="mono")
        frame.sample_rate = rate
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


@pytest.fixture(scope="module")
def speech(voice, tmp_path_factory):
    chunks = list(voice.synthesize("Hello there, nice to meet you."))
    pcm = np.concatenate([c.pcm for c in chunks])
    path = tmp_path_factory.mktemp("audio") / "speech.wav"
    _wav(path, pcm, voice.sample_rate)
    return path, len(pcm) / voice.sample_rate


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "anima.toml"
    path.write_text("[render]\nsize = 256\nseed = 1\nhead_motion = 0.0\n")
    return path


def test_say_audio_renders_moving_lips(speech, config, tmp_path, capsys):
    wav, seconds = speech
    out = tmp_path / "out.mp4"
    code = main(
        [
            "--config",
            str(config),
            "--data-dir",
            str(tmp_path / "d"),
            "say",
            "--audio",
            str(wav),
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(out)) as c:
        a = c.streams.audio[0]
        audio_seconds = float(a.duration * a.time_base)
    total = 0.4 + seconds + 0.5  # lead-in, speech, lead-out
    assert abs(len(frames) / 25 - total) < 0.1
    assert abs(audio_seconds - len(frames) / 25) <= 0.06
    # The mouth area changes while speaking and stays still in the silent lead-in.
    mouth = [f[150:200, 90:166].astype(np.float32) for f in frames]
    change = np.array([np.abs(m - mouth[0]).mean() for m in mouth])
    lead = change[2:8]
    talk = change[12 : 10 + int(seconds * 25)]
    assert talk.max() > 5 * max(lead.max(), 0.5)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not audio" * 100, "not an audio file"), (None, "no such audio file")],
)
def test_bad_audio_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    wav = tmp_path / "bad.wav"
    if content is not None:
        wav.write_bytes(content)
    code = main(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "say",
            "--audio",
            str(wav),
            "-o",
            str(tmp_path / "o.mp4"),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "o.mp4").exists()


def test_text_and_audio_together_are_refused(tmp_path, capsys, speech):
    code = main(["--data-dir", str(tmp_path / "d"), "say", "hello", "--audio", str(speech[0])])
    assert code == 2
    assert "either" in capsys.readouterr().err
