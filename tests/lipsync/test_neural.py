"""The shipped audio-to-mouth network: streaming, causality, accuracy on fresh held-out speech."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

from anima.frames import MediaClock, PhonemeTiming, SpeechChunk
from anima.lipsync import PhonemeLipSync
from anima.lipsync import neural as N
from anima.lipsync.coarticulation import loudness_envelope


@pytest.fixture(scope="module")
def model() -> N.Audio2MouthModel:
    return N.Audio2MouthModel()


@pytest.fixture(scope="module")
def held_out(voice) -> tuple[np.ndarray, int, tuple[PhonemeTiming, ...]]:
    """A sentence the training grammar never produces, spoken by the project's own voice."""
    chunks = list(voice.synthesize("Please bring the map back before five, my friend."))
    assert len(chunks) == 1
    return chunks[0].pcm, chunks[0].sample_rate, chunks[0].phonemes


def _truth(pcm: np.ndarray, sr: int, phonemes) -> np.ndarray:
    chunk = SpeechChunk(turn=0, pcm=pcm, sample_rate=sr, text="", phonemes=tuple(phonemes))
    rows = PhonemeLipSync().shapes(chunk, 0, MediaClock(sr, 25))
    return np.array([s.as_array() for _, s, _ in rows])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_model_is_shipped_small_and_packaged():
    assert N.MODEL_PATH.is_file()
    assert N.MODEL_PATH.stat().st_size < 5_000_000
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["anima.lipsync"]
    assert any(N.MODEL_PATH.match(f"*/{pattern}") for pattern in data)


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(N.NeuralLipSyncError, match="not found"):
        N.Audio2MouthModel(tmp_path / "nope.onnx")


def test_log_mel_from_a_prefix_equals_the_whole_clip():
    x = np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.1
    whole = N.log_mel(x, 0, 40)
    part = N.log_mel(x[: 20 * N.HOP + N.WIN // 2], 0, 21)
    np.testing.assert_allclose(part, whole[:21], atol=1e-5)
    # Before the start is silence.
    np.testing.assert_allclose(N.log_mel(x, -30, 2), np.stack([N.silence_mel()] * 2))


def test_stream_in_any_blocks_equals_the_whole_clip(model, held_out):
    pcm, sr, _ = held_out
    x = N.to_16k(pcm, sr)
    whole = N.mouth_from_audio(x, model)
    assert whole.shape == (N.frames_for(len(x)), 4)
    assert whole.min() >= 0 and whole.max() <= 1
    rng = np.random.default_rng(1)
    stream = N.NeuralMouth(model)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 3000))
        parts.append(stream.push(x[i : i + n]))
        i += n
    parts.append(stream.flush())
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5)


def test_output_at_frame_t_ignores_audio_after_frame_t_plus_one(model, held_out):
    pcm, sr, _ = held_out
    x = N.to_16k(pcm, sr)
    base = N.mouth_from_audio(x, model)
    t = 20
    changed = x.copy()
    cut = (t + 1) * N.SAMPLE_RATE // N.FPS  # the start of frame t + 1
    changed[cut:] = np.random.default_rng(2).standard_normal(len(x) - cut) * 0.3
    out = N.mouth_from_audio(changed, model)
    np.testing.assert_array_equal(out[: t + 1], base[: t + 1])
    assert np.abs(out[t + 2 :] - base[t + 2 :]).max() > 0.05  # the change is seen later


def test_streaming_emits_each_frame_once_with_one_frame_delay(model, held_out):
    pcm, sr, _ = held_out
    x = N.to_16k(pcm, sr)
    stream = N.NeuralMouth(model)
    block = N.SAMPLE_RATE // N.FPS
    emitted = 0
    for k in range(10):
        emitted += len(stream.push(x[k * block : (k + 1) * block]))
        # After k + 1 frames of audio, all frames up to k - 1 are out (one frame look-ahead).
        assert emitted >= k


def test_tracks_fresh_speech_better_than_loudness(model, held_out):
    pcm, sr, phonemes = held_out
    truth = _truth(pcm, sr, phonemes)
    pred = N.mouth_from_audio(N.to_16k(pcm, sr), model)[: len(truth)]
    jaw = _corr(pred[:, 0], truth[:, 0])
    # Measured 0.89 / 0.67 / 0.83 (jaw / closure / rounding) against loudness 0.70 on the jaw.
    assert jaw > 0.75
    assert _corr(pred[:, 3], truth[:, 3]) > 0.4  # lip closure (p, b, m, f, v)
    assert _corr(pred[:, 2], truth[:, 2]) > 0.5  # rounding (oo, w, r)
    loud = loudness_envelope(pcm, sr, np.arange(len(truth)) / 25, 2 / 25)
    assert jaw > _corr(loud, truth[:, 0]) + 0.05
    # Lag within one frame.
    lags = range(-3, 4)
    best = max(lags, key=lambda lag: _corr(np.roll(pred[:, 0], -lag)[5:-5], truth[5:-5, 0]))
    assert abs(best) <= 1


def test_held_out_espeak_speaker(model):
    pytest.importorskip("espeakng_loader")
    from anima.tts.espeak import Espeak

    u = Espeak().speak("The ship was torn apart on the sharp reef.", "en-gb-x-rp+m7", 165, 45)
    truth = _truth(u.pcm, u.sample_rate, u.timings)
    pred = N.mouth_from_audio(N.to_16k(u.pcm, u.sample_rate), model)[: len(truth)]
    assert _corr(pred[:, 0], truth[:, 0]) > 0.6


def test_lipsync_protocol_over_chunks(model, held_out):
    """As a LipSync: chunked 22 kHz speech on the clock, every frame once, in order."""
    pcm, sr, phonemes = held_out
    clock = MediaClock(sr, 25)
    lipsync = N.NeuralLipSync(model)
    lead = 3000  # not on a frame boundary
    audio = np.concatenate([np.zeros(lead, np.int16), pcm])
    rows, start = [], 0
    for size in (5000, 7000, 12345, len(audio)):
        part = audio[start : start + size]
        if not len(part):
            break
        chunk = SpeechChunk(turn=0, pcm=part, sample_rate=sr, text="")
        rows += lipsync.shapes(chunk, start, clock)
        start += len(part)
    indices = [i for i, _, _ in rows]
    assert indices == list(range(clock.frames_for_samples(len(audio))))
    params = np.array([s.as_array() for _, s, _ in rows])
    truth = _truth(
        audio,
        sr,
        [PhonemeTiming("_", 0, lead / sr)]
        + [PhonemeTiming(p.phoneme, p.start + lead / sr, p.end + lead / sr) for p in phonemes],
    )
    n = min(len(truth), len(params))
    assert _corr(params[:n, 0], truth[:n, 0]) > 0.6
    speaking = np.array([s for _, _, s in rows])
    assert speaking.any() and not speaking[:2].any()  # silent lead-in is not speech


def test_pause_bridge_keeps_the_lips_moving_through_a_short_pause():
    from anima.lipsync.neural import PauseBridge, is_speaking

    fps = 25
    # 1 s of speech (jaw moving), a 0.7 s pause (network at rest), 1 s of speech.
    t = np.arange(int(2.7 * fps)) / fps
    params = np.zeros((len(t), 4), np.float32)
    talk = (t < 1.0) | (t >= 1.7)
    params[talk, 0] = 0.3 + 0.25 * np.sin(2 * np.pi * 4 * t[talk])
    params[:, 1] = 0.4
    speaking = is_speaking(params)
    pause = (t >= 1.0) & (t < 1.7)
    assert not speaking[pause].any()
    voiced = speaking.copy()
    bridged = PauseBridge(fps).apply(params.copy(), speaking)
    # Inside the pause the mouth still moves and mostly counts as speaking...
    assert bridged[pause, 0].std() > 0.02
    assert bridged[pause, 0].min() > 0.02
    assert speaking[pause].mean() > 0.6
    # ...and speaking frames are untouched.
    np.testing.assert_array_equal(bridged[voiced], params[voiced])
    # A long silence still ends at rest.
    rest = np.zeros((3 * fps, 4), np.float32)
    flags = np.zeros(len(rest), bool)
    out = PauseBridge(fps).apply(rest, flags)
    assert not flags[-fps:].any() and np.abs(out[-fps:, 0]).max() < 1e-6
