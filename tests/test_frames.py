"""Frames and the media clock's integer arithmetic."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from anima.frames import (
    AudioFrame,
    Interrupt,
    MediaClock,
    MouthFrame,
    MouthShape,
    PhonemeTiming,
    SpeechChunk,
    TextChunk,
)

RATES = [8000, 16000, 22050, 24000, 44100, 48000]
FPS = [24, 25, 30, 60]


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("fps", FPS)
def test_frame_k_starts_exactly_at_its_sample(sample_rate: int, fps: int) -> None:
    clock = MediaClock(sample_rate, fps)
    ks = list(range(0, 2000)) + [fps * 3600 * 10 + d for d in range(-3, 4)]
    for k in ks:
        s = clock.sample_of_frame(k)
        # Frame k is counted once its first sample is included, and not before.
        assert clock.frames_for_samples(s + 1) == k + 1, (k, s)
        assert clock.frames_for_samples(s) == k, (k, s)


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("fps", FPS)
def test_frames_for_samples_is_monotonic_and_steps_by_at_most_one(
    sample_rate: int, fps: int
) -> None:
    clock = MediaClock(sample_rate, fps)
    n = np.array([clock.frames_for_samples(s) for s in range(0, 3 * sample_rate + 1, 7)])
    steps = np.diff(n)
    assert n[0] == 0
    assert steps.min() >= 0
    assert steps.max() <= 1
    assert clock.frames_for_samples(3 * sample_rate) == 3 * fps


@pytest.mark.parametrize("sample_rate", RATES)
@pytest.mark.parametrize("fps", FPS)
def test_no_drift_over_ten_hours(sample_rate: int, fps: int) -> None:
    clock = MediaClock(sample_rate, fps)
    seconds = 10 * 3600
    assert clock.frames_for_samples(sample_rate * seconds) == fps * seconds
    assert clock.sample_of_frame(fps * seconds) == sample_rate * seconds
    assert clock.frame_time(fps * seconds) == seconds


def test_sample_of_frame_at_non_integer_samples_per_frame() -> None:
    clock = MediaClock(22050, 25)  # 882 samples per frame
    assert [clock.sample_of_frame(k) for k in range(4)] == [0, 882, 1764, 2646]
    clock = MediaClock(44100, 30)  # 1470
    assert clock.sample_of_frame(1) == 1470
    clock = MediaClock(22050, 30)  # 735
    assert [clock.sample_of_frame(k) for k in range(3)] == [0, 735, 1470]
    clock = MediaClock(16000, 24)  # 666.67: floors
    assert [clock.sample_of_frame(k) for k in range(4)] == [0, 666, 1333, 2000]
    assert clock.frames_for_samples(667) == 2
    assert clock.frames_for_samples(666) == 1


def test_durations() -> None:
    pcm = np.zeros(11025, dtype=np.int16)
    assert AudioFrame(turn=0, pcm=pcm, sample_rate=22050).duration == pytest.approx(0.5)
    assert SpeechChunk(turn=0, pcm=pcm, sample_rate=22050, text="x").duration == pytest.approx(0.5)
    assert AudioFrame(turn=0, pcm=pcm[:0], sample_rate=16000).duration == 0.0


def test_defaults() -> None:
    pcm = np.zeros(4, dtype=np.int16)
    assert AudioFrame(turn=3, pcm=pcm, sample_rate=16000).pts == 0
    assert SpeechChunk(turn=0, pcm=pcm, sample_rate=16000, text="").phonemes == ()
    assert Interrupt(turn=2).reason == "interrupted"
    assert MouthFrame(turn=0, index=0, shape=MouthShape()).speaking is True
    assert MouthShape(0.1, 0.2, 0.3, 0.4).as_array().tolist() == [0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize(
    ("frame", "attr", "value"),
    [
        (TextChunk(turn=0, text="hi"), "text", "bye"),
        (TextChunk(turn=0, text="hi"), "turn", 1),
        (AudioFrame(turn=0, pcm=np.zeros(2, np.int16), sample_rate=16000), "pts", 5),
        (MouthShape(), "jaw_open", 1.0),
        (PhonemeTiming("a", 0.0, 0.1), "end", 0.2),
        (MediaClock(16000, 25), "fps", 30),
    ],
)
def test_frames_are_immutable(frame: object, attr: str, value: object) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(frame, attr, value)
