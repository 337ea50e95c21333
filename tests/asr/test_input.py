"""Bad and unusual input: other rates, stereo, clipping, silence, NaN, garbage bytes."""

from __future__ import annotations

import numpy as np
import pytest
from asr_helpers import feed_all, to_int16, with_silence

from anima.asr import AudioError, Final, Listener
from anima.asr.audio import RATE, Resampler, check_pcm, pcm_from_bytes, resample
from anima.asr.wer import wer
from anima.pipeline import VirtualClock

TEXT = "Could you tell me where the museum entrance is?"


def test_resampler_streams_any_rate_to_16k_without_losing_samples():
    rng = np.random.default_rng(0)
    for rate in (8000, 22050, 44100, 48000):
        x = rng.normal(0, 0.1, rate).astype(np.float32)  # 1 s
        r = Resampler()
        parts = [r(x[i : i + rate // 50], rate) for i in range(0, rate, rate // 50)]
        total = sum(len(p) for p in parts) + len(r.flush())
        assert abs(total - RATE) <= 2, (rate, total)


def test_resampled_tone_keeps_its_pitch():
    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(np.stack([tone, tone], 1).reshape(-1), 44100, channels=2)
    spectrum = np.abs(np.fft.rfft(out[1000:15000]))
    peak_hz = np.argmax(spectrum) * RATE / len(out[1000:15000])
    assert abs(peak_hz - 440) < 3


@pytest.mark.parametrize(
    ("pcm", "rate", "channels", "message"),
    [
        (np.zeros(100, np.int16), 4000, 1, "sample rate"),
        (np.zeros(100, np.int16), 400_000, 1, "sample rate"),
        (np.zeros(100, np.int32), 16000, 1, "dtype int32"),
        (np.array([0.1, np.nan], np.float32), 16000, 1, "NaN"),
        (np.array([0.1, np.inf], np.float32), 16000, 1, "NaN or infinite"),
        (np.zeros(101, np.int16), 16000, 2, "do not divide"),
        (np.zeros((10, 3), np.int16), 16000, 2, "shape"),
        ([0, 1, 2], 16000, 1, "numpy array"),
        (np.zeros(10, np.int16), 16000, 12, "channels"),
    ],
)
def test_unusable_audio_is_refused_with_a_clear_message(pcm, rate, channels, message):
    with pytest.raises(AudioError, match=message):
        check_pcm(pcm, rate, channels)


def test_garbage_bytes():
    with pytest.raises(AudioError, match="whole number"):
        pcm_from_bytes(b"\x01\x02\x03", 16000)
    noise = pcm_from_bytes(np.random.default_rng(1).bytes(3200), 16000)
    assert noise.shape == (1600, 1) and noise.dtype == np.int16


async def test_stereo_44k_speech_is_heard(recognizer, sentence):
    # Back to 44.1 kHz stereo int16, as a desktop client would send it.
    t = np.arange(int(len(sentence) * 44100 / RATE)) / 44100
    up = np.interp(t, np.arange(len(sentence)) / RATE, sentence).astype(np.float32)
    stereo = np.stack([up, 0.8 * up], 1).reshape(-1)
    listener = Listener(recognizer, clock=VirtualClock())
    events = []
    pcm = to_int16(np.concatenate([np.zeros(2 * 13230, np.float32), stereo, np.zeros(88200)]))
    for i in range(0, len(pcm), 1764):  # 20 ms of stereo
        events += await listener.feed(pcm[i : i + 1764], 44100, channels=2)
    events += await listener.flush()
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and wer(TEXT, finals[0].transcript.text) <= 0.2


async def test_clipped_speech_is_still_understood(recognizer, sentence):
    clipped = np.clip(sentence * 8, -0.5, 0.5)  # hard clipping, 18 dB overdriven
    assert np.mean(np.abs(clipped) >= 0.5) > 0.1
    events = await feed_all(Listener(recognizer, clock=VirtualClock()), to_int16(clipped))
    text = " ".join(e.transcript.text for e in events if isinstance(e, Final))
    assert wer(TEXT, text) <= 0.3, text


async def test_silence_and_noise_give_no_utterances(recognizer):
    rng = np.random.default_rng(2)
    silence = np.zeros(5 * RATE, np.float32)
    hiss = rng.normal(0, 0.01, 5 * RATE).astype(np.float32)
    for audio in (silence, hiss):
        events = await feed_all(Listener(recognizer, clock=VirtualClock()), to_int16(audio))
        assert events == []


async def test_garbage_pcm_does_not_hang_and_the_stream_recovers(recognizer, sentence):
    listener = Listener(recognizer, clock=VirtualClock())
    garbage = pcm_from_bytes(np.random.default_rng(5).bytes(2 * RATE * 2), RATE)
    for i in range(0, len(garbage), 320):
        await listener.feed(garbage[i : i + 320], RATE)
    with pytest.raises(AudioError):
        await listener.feed(np.array([np.nan], np.float32), RATE)
    with pytest.raises(AudioError):
        await listener.feed(np.zeros(10, np.int16), 2000)
    # The same stream still works after refusing bad input.
    events = await feed_all(listener, to_int16(with_silence(1.0, sentence, 1.0)))
    finals = [e.transcript.text for e in events if isinstance(e, Final)]
    assert any("museum" in t.lower() for t in finals), finals
