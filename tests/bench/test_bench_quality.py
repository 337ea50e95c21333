"""Lip-sync quality from video: the offset and correlation maths, and one real rendering."""

import numpy as np
import pytest

from anima.bench.quality import av_offset, measure, render_speech, speech_envelope


def _signal(n=300, seed=0):
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.random(n + 20), np.ones(5) / 5, "same")[10:-10]
    return x


@pytest.mark.parametrize("shift", [-3, -1, 0, 2, 4])
def test_av_offset_finds_a_known_shift(shift):
    env = _signal()
    mouth = np.roll(env, shift)  # the mouth moves `shift` frames after the sound
    r = av_offset(mouth[10:-10], env[10:-10], fps=25)
    assert r["offset_ms"] == pytest.approx(shift * 40, abs=8)
    assert r["correlation"] > 0.95


def test_av_offset_ignores_frames_without_a_face():
    env = _signal()
    mouth = np.roll(env, 2).copy()
    mouth[50:60] = np.nan
    r = av_offset(mouth[10:-10], env[10:-10], fps=25)
    assert r["offset_frames"] == pytest.approx(2, abs=0.3)


def test_av_offset_rejects_mismatched_or_short_series():
    with pytest.raises(ValueError, match="one value per frame"):
        av_offset(np.zeros(40), np.zeros(41), 25)
    with pytest.raises(ValueError, match="too few"):
        av_offset(np.zeros(10), np.zeros(10), 25)


def test_speech_envelope_follows_loudness():
    rate, fps = 16000, 25
    audio = np.zeros(rate, np.int16)
    audio[rate // 2 :] = (8000 * np.sin(np.arange(rate // 2) * 0.3)).astype(np.int16)
    env = speech_envelope(audio, 25, rate / fps)
    assert env[:12].max() == 0 and env[14:].min() > 5000


@pytest.mark.slow
def test_rendered_speech_is_in_sync(settings):
    pictures, audio, rate, fps = __import__("asyncio").run(
        render_speech(settings, "Good morning. The café opens at ten, and closes at six.")
    )
    assert len(pictures) > 2 * fps and pictures[0].shape == (512, 512, 3)
    q = measure(pictures, audio, rate, fps)
    assert q["faces_found"] == q["frames"]
    assert abs(q["offset_ms"]) <= 1000 / fps  # within one frame
    assert q["correlation"] > 0.3
