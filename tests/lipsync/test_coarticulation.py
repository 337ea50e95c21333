"""Coarticulated mouth tracks from hand-made phoneme timings (no TTS)."""

from __future__ import annotations

import numpy as np
import pytest

from anima.frames import MediaClock, PhonemeTiming, SpeechChunk
from anima.lipsync import PhonemeLipSync
from anima.lipsync.coarticulation import loudness_envelope, merge_marks, mouth_track

JAW, WIDTH, ROUND, CLOSURE = range(4)


def seq(*spec: tuple[str, float], start: float = 0.0) -> list[PhonemeTiming]:
    """Back-to-back timings from (phoneme, duration) pairs."""
    out, t = [], start
    for phoneme, duration in spec:
        out.append(PhonemeTiming(phoneme, t, t + duration))
        t += duration
    return out


def centre(t: PhonemeTiming) -> float:
    return (t.start + t.end) / 2


def at(timings: list[PhonemeTiming], *times: float) -> tuple[np.ndarray, np.ndarray]:
    return mouth_track(timings, np.array(times))


def sine(seconds: float, sample_rate: int, amplitude: float = 0.8, hz: float = 220.0):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


# --- visemes through the track --------------------------------------------------------------


@pytest.mark.parametrize("m_duration", [0.05, 0.07, 0.09])
def test_bilabial_between_open_vowels_closes_lips(m_duration: float) -> None:
    a1, m, a2 = seq(("a", 0.2), ("m", m_duration), ("a", 0.2))
    params, speaking = at([a1, m, a2], centre(a1), centre(m), centre(a2))
    vowel1, mid, vowel2 = params
    assert mid[CLOSURE] > 0.7
    assert vowel1[CLOSURE] < 0.5 and vowel2[CLOSURE] < 0.5
    # The jaw comes well up for the closure (~0.4 here) from ~0.8-0.9 on the vowels.
    assert mid[JAW] < 0.5
    assert mid[JAW] < min(vowel1[JAW], vowel2[JAW]) - 0.3
    assert speaking.all()


def test_bilabial_closure_peaks_inside_the_consonant() -> None:
    timings = seq(("a", 0.2), ("p", 0.06), ("a", 0.2))
    times = np.arange(0.0, 0.46, 0.005)
    params, _ = mouth_track(timings, times)
    peak = times[params[:, CLOSURE].argmax()]
    assert timings[1].start <= peak <= timings[1].end
    assert params[:, CLOSURE].max() > 0.7


def test_open_vowel_opens_jaw() -> None:
    (a,) = seq(("a", 0.15), start=0.1)
    params, speaking = at([a], centre(a))
    assert params[0, JAW] > 0.6
    assert speaking[0]
    # Also between consonants of modest dominance.
    s, a, t = seq(("s", 0.08), ("a", 0.15), ("t", 0.08))
    params, _ = at([s, a, t], centre(a))
    assert params[0, JAW] > 0.6


def test_rounded_and_spread_vowels() -> None:
    u, i = seq(("u", 0.2), ("i", 0.2))
    params, _ = at([u, i], centre(u), centre(i))
    assert params[0, ROUND] > 0.7
    assert params[1, WIDTH] > 0.55
    assert params[0, ROUND] > params[1, ROUND] + 0.3
    assert params[1, WIDTH] > params[0, WIDTH] + 0.3


def test_values_stay_in_unit_range() -> None:
    rng = np.random.default_rng(1)
    symbols = list("pbmfvθszʃkhɹwjlaæeiəɚoux") + ["_", ".", "^", " "]
    timings = seq(*[(str(rng.choice(symbols)), float(rng.uniform(0.02, 0.2))) for _ in range(60)])
    times = np.arange(-0.2, timings[-1].end + 0.2, 0.01)
    params, speaking = mouth_track(timings, times, loudness=rng.uniform(0, 1.5, times.size))
    assert params.shape == (times.size, 4)
    assert speaking.shape == (times.size,)
    assert params.min() >= 0.0
    assert params.max() <= 1.0
    assert np.isfinite(params).all()


def test_empty_inputs() -> None:
    params, speaking = mouth_track([], np.arange(5) / 25)
    assert params.shape == (5, 4) and not params.any()
    assert not speaking.any()
    params, speaking = mouth_track(seq(("a", 0.1)), np.array([]))
    assert params.shape == (0, 4) and speaking.shape == (0,)


# --- pauses ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pause", ["_", ".", "^"])
def test_pauses_are_not_speaking(pause: str) -> None:
    a1, p, a2 = seq(("a", 0.2), (pause, 0.5), ("a", 0.2))
    times = np.arange(p.start, p.end, 0.01)
    _, speaking = mouth_track([a1, p, a2], times)
    assert not speaking.any()
    _, speaking = at([a1, p, a2], centre(a1), centre(a2))
    assert speaking.all()


@pytest.mark.parametrize("pause", ["_", ".", "^"])
def test_long_pause_at_an_edge_closes_the_jaw(pause: str) -> None:
    # A long pause before or after speech: the jaw is nearly closed once well away from it.
    lead, a = seq((pause, 0.5), ("a", 0.2))
    params, _ = at([lead, a], lead.start + 0.05)
    assert params[0, JAW] < 0.1
    a, tail = seq(("a", 0.2), (pause, 0.5))
    params, _ = at([a, tail], tail.end - 0.05)
    assert params[0, JAW] < 0.1


@pytest.mark.parametrize("pause", ["_", ".", "^"])
def test_jaw_closes_during_long_pause_relative_to_vowels(pause: str) -> None:
    a1, p, a2 = seq(("a", 0.2), (pause, 0.5), ("a", 0.2))
    params, _ = at([a1, p, a2], centre(a1), centre(p), centre(a2))
    assert params[0, JAW] > 0.6 and params[2, JAW] > 0.6
    assert params[1, JAW] < 0.5 * min(params[0, JAW], params[2, JAW])


@pytest.mark.parametrize("pause", ["_", ".", "^"])
def test_long_pause_between_vowels_nearly_closes_the_jaw(pause: str) -> None:
    a1, p, a2 = seq(("a", 0.2), (pause, 0.5), ("a", 0.2))
    params, speaking = at([a1, p, a2], centre(p))
    assert not speaking[0]
    assert params[0, JAW] < 0.1


# --- smoothness -----------------------------------------------------------------------------


FAST = [
    [("p", 0.05), ("a", 0.05)] * 10,
    [("m", 0.04), ("a", 0.04), ("u", 0.04), ("i", 0.04)] * 6,
    [("a", 0.06), ("p", 0.04), ("u", 0.06), ("m", 0.04), ("i", 0.05)] * 5,
    [("^", 0.1), ("h", 0.05), ("ə", 0.05), ("l", 0.05), ("o", 0.08), ("_", 0.1), ("w", 0.05)]
    + [("ɚ", 0.08), ("l", 0.05), ("d", 0.05), ("$", 0.1)],
]


@pytest.mark.parametrize("spec", FAST, ids=["pa", "maui", "apumi", "hello-world"])
@pytest.mark.parametrize("offset", [0.0, 0.013, 0.027])
def test_track_is_smooth_at_25fps(spec: list[tuple[str, float]], offset: float) -> None:
    timings = seq(*spec)
    times = np.arange(offset, timings[-1].end, 1 / 25)
    params, _ = mouth_track(timings, times)
    step = np.abs(np.diff(params, axis=0)).max()
    assert step < 0.35, step
    # ... and yet it moves: a smooth track is not a frozen one.
    assert np.ptp(params, axis=0).max() > 0.3


# --- marks ----------------------------------------------------------------------------------


def test_merge_marks_folds_stress_forward_and_length_back() -> None:
    timings = [
        PhonemeTiming("h", 0.0, 0.05),
        PhonemeTiming("ˈ", 0.05, 0.07),
        PhonemeTiming("a", 0.07, 0.15),
        PhonemeTiming("ː", 0.15, 0.22),
        PhonemeTiming("ˌ", 0.22, 0.23),
        PhonemeTiming("i", 0.23, 0.3),
        PhonemeTiming("ˑ", 0.3, 0.32),
    ]
    assert merge_marks(timings) == [
        PhonemeTiming("h", 0.0, 0.05),
        PhonemeTiming("a", 0.05, 0.22),
        PhonemeTiming("i", 0.22, 0.32),
    ]


def test_merge_marks_keeps_plain_timings_and_trailing_stress() -> None:
    plain = [PhonemeTiming("k", 0.0, 0.05), PhonemeTiming("æ", 0.05, 0.15)]
    plain.append(PhonemeTiming("t", 0.15, 0.2))
    assert merge_marks(plain) == plain
    trailing = [*plain, PhonemeTiming("ˈ", 0.2, 0.25)]
    assert merge_marks(trailing) == [*plain[:2], PhonemeTiming("t", 0.15, 0.25)]
    assert merge_marks([]) == []


def test_stress_mark_does_not_change_the_shape() -> None:
    plain = seq(("m", 0.08), ("a", 0.2))
    stressed = [PhonemeTiming("m", 0.0, 0.08), PhonemeTiming("ˈ", 0.08, 0.08)]
    stressed += [PhonemeTiming("a", 0.08, 0.28)]
    times = np.arange(0, 0.28, 0.01)
    np.testing.assert_allclose(mouth_track(stressed, times)[0], mouth_track(plain, times)[0])


# --- loudness -------------------------------------------------------------------------------


def test_loudness_is_zero_on_silence() -> None:
    times = np.arange(0, 1.0, 0.04)
    env = loudness_envelope(np.zeros(22050, np.int16), 22050, times, window=0.08)
    assert env.shape == times.shape
    assert np.all(env == 0.0)


def test_loudness_is_one_on_a_steady_sine() -> None:
    times = np.arange(0, 1.0, 0.04)
    env = loudness_envelope(sine(1.0, 22050), 22050, times, window=0.08)
    np.testing.assert_allclose(env, 1.0, atol=0.05)


def test_loudness_follows_the_signal() -> None:
    sr = 16000
    pcm = np.concatenate([np.zeros(sr // 2, np.int16), sine(0.5, sr)])
    env = loudness_envelope(pcm, sr, np.array([0.1, 0.2, 0.8, 0.9]), window=0.08)
    assert env[:2].max() < 0.05
    assert env[2:].min() > 0.9


def test_loudness_opens_the_jaw_a_little() -> None:
    (a,) = seq(("a", 0.2))
    t = np.array([centre(a)])
    quiet, _ = mouth_track([a], t, loudness=np.array([0.0]))
    loud, _ = mouth_track([a], t, loudness=np.array([1.0]))
    plain, _ = mouth_track([a], t)
    assert loud[0, JAW] == pytest.approx(plain[0, JAW])
    assert quiet[0, JAW] == pytest.approx(0.65 * plain[0, JAW])
    np.testing.assert_allclose(loud[0, 1:], quiet[0, 1:])


# --- PhonemeLipSync on the audio clock ------------------------------------------------------


SR = 22050
CLOCK = MediaClock(SR, 25)  # 882 samples per frame


def chunk(samples: int, sample_rate: int = SR) -> SpeechChunk:
    seconds = samples / sample_rate
    phonemes = seq(("^", seconds * 0.2), ("m", seconds * 0.2), ("a", seconds * 0.5))
    phonemes.append(PhonemeTiming("$", phonemes[-1].end, seconds))
    pcm = sine(seconds, sample_rate)
    pcm = np.pad(pcm, (0, samples - len(pcm)))
    return SpeechChunk(
        turn=0, pcm=pcm, sample_rate=sample_rate, text="ma", phonemes=tuple(phonemes)
    )


def frames_in(start: int, n: int, clock: MediaClock = CLOCK) -> list[int]:
    """Frame indices whose first sample lies in [start, start + n), by brute force."""
    top = clock.frames_for_samples(start + n) + 2
    return [k for k in range(top) if start <= clock.sample_of_frame(k) < start + n]


@pytest.mark.parametrize(
    ("start", "n"), [(1000, 5000), (0, 882), (881, 2), (882, 1), (1000, 500), (1765, 8820)]
)
def test_shapes_cover_exactly_the_frames_in_the_chunk(start: int, n: int) -> None:
    shapes = PhonemeLipSync().shapes(chunk(n), start, CLOCK)
    assert [i for i, _, _ in shapes] == frames_in(start, n)


def test_shapes_for_a_chunk_starting_mid_frame() -> None:
    # Sample 1000 is inside frame 1 (882..1763): frame 1 belongs to the previous chunk.
    shapes = PhonemeLipSync().shapes(chunk(5000), 1000, CLOCK)
    assert [i for i, _, _ in shapes] == [2, 3, 4, 5, 6]
    # Frame 2 (sample 1764) is 764 samples (15%) into the chunk: inside the leading pause
    # (0-20%); frame 3 is 1646 samples (33%) in: inside the /m/ (20-40%).
    assert shapes[0][2] is False
    assert shapes[1][2] is True
    assert shapes[1][1].lip_closure > 0.7
    # The open vowel dominates the middle of the chunk.
    assert any(shape.jaw_open > 0.4 and speaking for _, shape, speaking in shapes)


def test_chunk_shorter_than_a_frame_gap_has_no_frames() -> None:
    assert PhonemeLipSync().shapes(chunk(100), 900, CLOCK) == []


@pytest.mark.parametrize("sample_rate", [16000, 22050, 44100, 48000])
@pytest.mark.parametrize("fps", [25, 30])
def test_consecutive_chunks_tile_the_frame_indices(sample_rate: int, fps: int) -> None:
    clock = MediaClock(sample_rate, fps)
    lipsync = PhonemeLipSync()
    lengths = [5000, 3001, 7777, 1, 441, 12345, 999]
    indices: list[int] = []
    start = 0
    for n in lengths:
        got = [i for i, _, _ in lipsync.shapes(chunk(n, sample_rate), start, clock)]
        assert got == frames_in(start, n, clock)
        indices += got
        start += n
    assert indices == list(range(clock.frames_for_samples(start)))


def test_sample_rate_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="16000"):
        PhonemeLipSync().shapes(chunk(1000, 16000), 0, CLOCK)
