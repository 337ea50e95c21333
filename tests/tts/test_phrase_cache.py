"""The phrase cache: known lines are synthesised once and replayed exactly."""

import threading

import numpy as np
import pytest

from anima.tts import speak
from anima.tts.cache import CachedVoice


class Counting:
    """The real voice, counting how often it is asked to synthesise."""

    def __init__(self, voice):
        self.voice = voice
        self.sample_rate = voice.sample_rate
        self.calls: list[tuple[str, str]] = []

    def synthesize(self, text, turn=0, emotion="neutral"):
        self.calls.append((text, emotion))
        yield from speak(self.voice, text, turn, emotion)


def _pcm(chunks):
    return np.concatenate([c.pcm for c in chunks])


def test_second_time_is_replayed_without_synthesis(voice):
    inner = Counting(voice)
    cached = CachedVoice(inner)
    first = list(cached.synthesize("Welcome to the library.", turn=3))
    again = list(speak(cached, "Welcome to the library.", 9))
    assert inner.calls == [("Welcome to the library.", "neutral")]
    assert np.array_equal(_pcm(first), _pcm(again))
    assert [c.turn for c in again] == [9] * len(again)  # the new turn, same speech
    assert again[0].phonemes == first[0].phonemes and again[0].text == first[0].text
    assert (cached.hits, cached.misses) == (1, 1)
    again[0].pcm[:] = 0  # a consumer scribbling on its copy does not change the cache
    assert np.array_equal(_pcm(cached.synthesize("Welcome to the library.")), _pcm(first))


def test_emotion_is_part_of_the_key(voice):
    inner = Counting(voice)
    cached = CachedVoice(inner)
    list(speak(cached, "We are open today.", 0, "happy"))
    list(speak(cached, "We are open today.", 0, "neutral"))
    happy = list(speak(cached, "We are open today.", 0, "happy"))
    assert inner.calls == [("We are open today.", "happy"), ("We are open today.", "neutral")]
    assert {c.emotion for c in happy} == {"happy"}


def test_bounded_in_bytes_least_recently_used_goes_first(voice):
    one = sum(c.pcm.nbytes for c in voice.synthesize("Hello there."))
    cached = CachedVoice(Counting(voice), max_bytes=int(one * 2.5))
    for text in ("Hello there.", "Good morning.", "Hello there.", "See you soon."):
        list(cached.synthesize(text))
    assert cached.size_bytes <= cached.max_bytes
    # "Good morning." was used least recently, so it made room for "See you soon."
    assert cached.cached("Hello there.") and cached.cached("See you soon.")
    assert not cached.cached("Good morning.")


def test_an_interrupted_phrase_is_not_kept(voice):
    cached = CachedVoice(Counting(voice))
    stream = cached.synthesize("First sentence here. And a second one after it.")
    next(stream)
    stream.close()  # the listener barged in after the first sentence
    assert not cached.cached("First sentence here. And a second one after it.")


def test_warm_speaks_known_lines_once_and_reports_progress(voice):
    inner = Counting(voice)
    cached = CachedVoice(inner)
    seen = []
    lines = [("Hello!", "neutral"), ("Sorry.", "serious"), ("Hello!", "neutral"), (" ", "neutral")]
    assert cached.warm(lines, progress=lambda i, n: seen.append((i, n))) == 2
    assert seen == [(1, 2), (2, 2)]
    assert cached.warm(lines) == 0  # all there already
    assert len(inner.calls) == 2


def test_warm_stops_when_full_and_keeps_the_first_lines(voice):
    one = sum(c.pcm.nbytes for c in voice.synthesize("Hello there."))
    inner = Counting(voice)
    cached = CachedVoice(inner, max_bytes=int(one * 2.5))
    lines = [("Hello there.", "neutral"), ("Good morning.", "neutral")]
    lines += [(f"Line number {n}.", "neutral") for n in range(8)]
    made = cached.warm(lines)
    # The highest-priority lines stay; warming stopped at the first that did not fit.
    assert made == 2 and cached.cached("Hello there.") and cached.cached("Good morning.")
    assert len(inner.calls) == 3


def test_warm_stops_when_asked(voice):
    stop = threading.Event()
    cached = CachedVoice(Counting(voice))
    made = cached.warm(
        [("One.", "neutral"), ("Two.", "neutral")], progress=lambda i, n: stop.set(), stop=stop
    )
    assert made == 1 and not cached.cached("Two.")


def test_shared_between_threads(voice):
    inner = Counting(voice)
    cached = CachedVoice(inner)
    list(cached.synthesize("Thank you."))
    out: list[np.ndarray] = []

    def worker():
        for _ in range(5):
            out.append(_pcm(cached.synthesize("Thank you.")))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inner.calls) == 1 and len(out) == 20
    assert all(np.array_equal(o, out[0]) for o in out)


def test_zero_bytes_passes_through(voice):
    inner = Counting(voice)
    cached = CachedVoice(inner, max_bytes=0)
    list(cached.synthesize("Hi."))
    list(cached.synthesize("Hi."))
    assert len(inner.calls) == 2 and len(cached) == 0
    with pytest.raises(ValueError):
        CachedVoice(inner, max_bytes=-1)
