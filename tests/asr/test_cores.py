"""The synchronous cores: streaming VAD, segmenter, endpoint policy, repeat trimming, WER."""

from __future__ import annotations

import numpy as np
import pytest

from anima.asr.endpoint import EndpointPolicy
from anima.asr.segmenter import (
    Ended,
    PartialDue,
    Paused,
    Resumed,
    Segmenter,
    SegmenterConfig,
    Started,
)
from anima.asr.vad import WINDOW, VadStream
from anima.asr.wer import normalize, wer
from anima.asr.whisper import trim_repeats


def test_streaming_vad_matches_faster_whisper_batch(sentence):
    from faster_whisper.vad import get_vad_model

    audio = np.concatenate([np.zeros(8000, np.float32), sentence, np.zeros(8000, np.float32)])
    audio = audio[: len(audio) // WINDOW * WINDOW]
    batch = get_vad_model()(audio).reshape(-1)
    stream = VadStream()
    # Odd-sized pushes are windowed by the listener; here whole windows, two at a time.
    probs = np.concatenate(
        [stream(audio[i : i + 2 * WINDOW]) for i in range(0, len(audio), 2 * WINDOW)]
    )
    assert np.allclose(probs, batch, atol=1e-5)
    assert (probs > 0.5).mean() > 0.4 and probs[:10].max() < 0.2  # speech found, silence not


def _run(seg: Segmenter, probs: list[float]) -> list:
    events = []
    for p in probs:
        events += seg.step(np.full(WINDOW, p, np.float32), p)
    return events


def test_segmenter_needs_sustained_speech_and_ends_after_the_silence_window():
    seg = Segmenter(SegmenterConfig(min_speech=0.064, partial_interval=0))
    assert _run(seg, [0.9, 0.1, 0.9, 0.1]) == []  # single windows: clicks
    events = _run(seg, [0.9] * 20 + [0.0] * 6)
    assert [type(e) for e in events] == [Started, Paused]
    events = _run(seg, [0.0] * 2)  # 8 silent windows = 256 ms >= 0.22 s default
    assert [type(e) for e in events] == [Ended]
    (end,) = events
    assert end.reason == "silence" and end.end - end.speech_end == 7 * WINDOW


def test_speech_ends_at_the_last_sound_not_where_the_vad_lets_go():
    # Silero runs on a window or two after the last sound: the end of speech (and so the
    # endpoint delay a turn reports) is the last sample a listener would still hear.
    seg = Segmenter(SegmenterConfig(min_speech=0.064, partial_interval=0))
    events = []
    for k in range(30):
        prob = 0.9 if k < 20 else 0.0
        audio = np.zeros(WINDOW, np.float32)
        if k < 18:
            audio[:] = 0.3
        elif k == 18:
            audio[:100] = 0.3  # the sound stops 100 samples into window 18
        events += seg.step(audio, prob)
    (end,) = [e for e in events if isinstance(e, Ended)]
    assert end.speech_end == end.start + 18 * WINDOW + 100
    # In noise louder than speech's threshold the VAD's end stands.
    seg = Segmenter(SegmenterConfig(min_speech=0.064, partial_interval=0))
    events = []
    for k in range(30):
        events += seg.step(np.full(WINDOW, 0.05, np.float32), 0.9 if k < 20 else 0.0)
    (end,) = [e for e in events if isinstance(e, Ended)]
    assert end.speech_end == end.start + 20 * WINDOW


def test_in_steady_noise_speech_still_ends_at_its_last_sound():
    # A hall's hum (-34 dBFS, above the fixed level) runs before, under and after the voice:
    # measured against the utterance's own quiet frames, the VAD's tail is still noise.
    rng = np.random.default_rng(3)
    seg = Segmenter(SegmenterConfig(min_speech=0.064, partial_interval=0))
    events = []
    for k in range(40):
        audio = rng.normal(0, 0.02, WINDOW).astype(np.float32)
        if 10 <= k < 28:
            audio += np.float32(0.3) * np.sign(np.sin(np.arange(WINDOW) / 5.0)).astype(np.float32)
        events += seg.step(audio, 0.9 if 8 <= k < 31 else 0.0)
    (end,) = [e for e in events if isinstance(e, Ended)]
    assert abs(end.speech_end - 28 * WINDOW) < 10
    assert end.speech_end < 31 * WINDOW - WINDOW  # where the VAD let go


def test_hypothesis_changes_the_silence_needed():
    policy = EndpointPolicy(silence=0.22, complete=0.1, incomplete=0.7)
    for hypothesis, windows in [("Is it open today?", 4), ("I want tea and", 22), ("", 7)]:
        seg = Segmenter(SegmenterConfig(partial_interval=0, policy=policy))
        _run(seg, [0.9] * 10)
        seg.hypothesis, seg.hypothesis_end = hypothesis, seg.position  # heard it all
        silent = np.zeros(WINDOW, np.float32)
        steps = [seg.step(silent, 0.0) for _ in range(30)]
        ended = [i + 1 for i, e in enumerate(steps) if any(isinstance(x, Ended) for x in e)]
        assert ended == [windows], hypothesis


def test_a_stale_hypothesis_is_ignored_and_a_pending_decode_is_waited_for():
    seg = Segmenter(SegmenterConfig(partial_interval=0))
    _run(seg, [0.9] * 10)
    seg.hypothesis, seg.hypothesis_end = "Is it open?", seg.position - 4 * WINDOW  # older
    silent = np.zeros(WINDOW, np.float32)
    steps = [seg.step(silent, 0.0) for _ in range(30)]
    assert [i for i, e in enumerate(steps) if any(isinstance(x, Ended) for x in e)] == [6]
    _run(seg, [0.9] * 10)
    seg.awaiting = True  # the listener is decoding the speech up to this pause
    steps = [seg.step(silent, 0.0) for _ in range(10)]
    assert not any(steps[1:])  # still waiting after 320 ms...
    seg.hypothesis, seg.hypothesis_end, seg.awaiting = "Is it open?", seg.position, False
    assert isinstance(seg.step(silent, 0.0)[0], Ended)  # ...and done once the text says so


def test_resume_voids_the_pause_and_partials_are_due_every_interval():
    seg = Segmenter(SegmenterConfig(partial_interval=0.25))
    events = _run(seg, [0.9] * 30 + [0.0] * 3 + [0.9] * 5)
    kinds = [type(e) for e in events]
    assert kinds.count(PartialDue) == 4 and Paused in kinds and Resumed in kinds
    paused = next(e for e in events if isinstance(e, Paused))
    resumed = next(e for e in events if isinstance(e, Resumed))
    assert paused.pause == resumed.pause
    (end,) = seg.flush()
    assert end.reason == "flush" and end.pause == -1


def test_max_utterance_cuts_at_the_quietest_window_and_carries_on():
    seg = Segmenter(SegmenterConfig(max_utterance=1.0, partial_interval=0, preroll=0.064))
    probs = [0.95] * 200
    probs[25] = 0.6  # a dip in the last third of the first second: the cut goes after it
    events = _run(seg, probs)
    ends = [e for e in events if isinstance(e, Ended)]
    starts = [e for e in events if isinstance(e, Started)]
    assert len(ends) >= 5 and len(starts) == len(ends) + 1
    assert all(len(e.audio) <= seg.capacity for e in ends)
    assert ends[0].reason == "max_length" and ends[0].end - ends[0].start == 26 * WINDOW
    # Utterances tile the stream: each starts where the previous one was cut.
    assert all(b.onset == a.end for a, b in zip(ends, starts[1:], strict=False))
    assert seg.held_samples <= seg.capacity


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Where is the station?", "complete"),
        ("Thank you very much.", "complete"),
        ("I would like a coffee and", "incomplete"),
        ("I would like a coffee and.", "incomplete"),
        ("So, um", "incomplete"),
        ("Let me think...", "incomplete"),
        ("Could you", "unknown"),
        ("", "unknown"),
    ],
)
def test_endpoint_policy_classifies_hypotheses(text, kind):
    assert EndpointPolicy().classify(text) == kind


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        ("Hello? Hello? Hello? Hello", "Hello?"),
        ("Yes, that is right. Yes, that", "Yes, that is right."),
        ("No, no.", "No, no."),
        ("the more you learn the more you earn", "the more you learn the more you earn"),
    ],
)
def test_trim_repeats(text, trimmed):
    assert trim_repeats(text) == trimmed


def test_wer_and_normalizer():
    assert normalize("It's 200 years, at 9!") == ["it's", "two", "hundred", "years", "at", "nine"]
    assert wer("the cat sat", "the cat sat") == 0.0
    assert wer("the cat sat", "the bat sat down") == pytest.approx(2 / 3)
    assert wer("my favourite colour", "My favorite color.") == 0.0
    assert wer("", "") == 0.0 and wer("", "words") == 1.0
