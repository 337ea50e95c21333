"""The streaming listener on the project's own speech: accuracy, endpoints, partials, metrics."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from asr_helpers import feed_all, synthesize, to_int16, with_silence

from anima.asr import Final, Listener, ListenerConfig, Partial, SpeechEnd, SpeechStart
from anima.asr.audio import RATE
from anima.asr.segmenter import SegmenterConfig
from anima.asr.wer import edit_distance, normalize
from anima.pipeline import VirtualClock

# Measured on this corpus (24 sentences, 3 speeds/noise scales, SNR 20 dB noise on half):
# corpus WER 0.0 (one "cancelled"/"canceled" before the normaliser knew it). Fed without
# waiting for decodes (finals decoded on the whole utterance) it was 0.032 with the default
# 10 s encoder window, 0.037 with the stock 30 s window and 0.085 with only speech + 1 s. The
# bound leaves room for other CPUs' int8 kernels without letting a real regression (a broken
# resampler, a VAD cut through words) through.
WER_BOUND = 0.08


def _noisy(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    power = float(np.mean(audio**2))
    noise = rng.normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


@pytest.fixture(scope="module")
def stream(corpus):
    """All sentences in one stream: 0.8 s gaps, white noise (20 dB SNR) on every other one."""
    rng = np.random.default_rng(7)
    parts: list[np.ndarray | float] = [0.5]
    spans = []
    pos = int(0.5 * RATE)
    for i, utt in enumerate(corpus):
        audio = _noisy(utt.audio, 20.0, rng) if i % 2 else utt.audio
        loud = np.flatnonzero(np.abs(utt.audio) > 0.02 * np.abs(utt.audio).max())
        spans.append(((pos + loud[0]) / RATE, (pos + loud[-1]) / RATE))  # where speech is
        parts += [audio, 0.8]
        pos += len(audio) + int(0.8 * RATE)
    return with_silence(*parts), spans


@pytest.fixture(scope="module")
def heard(stream, recognizer):
    audio, _ = stream
    listener = Listener(recognizer, clock=VirtualClock())
    return asyncio.run(feed_all(listener, to_int16(audio), chunk_s=0.02))


async def test_word_error_rate_on_24_sentences(corpus, stream, heard):
    _, spans = stream
    finals = [e for e in heard if isinstance(e, Final)]
    edits = words = 0
    for utt, (start, end) in zip(corpus, spans, strict=True):
        said = " ".join(f.transcript.text for f in finals if start - 0.4 < f.transcript.start < end)
        ref = normalize(utt.text)
        edits += edit_distance(ref, normalize(said))
        words += len(ref)
    assert edits / words <= WER_BOUND, f"WER {edits / words:.3f}"


async def test_endpoint_fires_once_per_utterance(corpus, stream, heard):
    _, spans = stream
    finals = [e for e in heard if isinstance(e, Final)]
    ends = [e for e in heard if isinstance(e, SpeechEnd)]
    starts = [e for e in heard if isinstance(e, SpeechStart)]
    assert len(finals) == len(ends) == len(starts)
    # Piper's timing varies with its noise (the corpus is seeded, so this rendition is fixed):
    # a pause longer than the endpoint's silence inside a sentence splits it in two (a known
    # limit of the policy, seen once in CI before the seed). One split is allowed; every other
    # utterance ends exactly once.
    assert len(corpus) <= len(finals) <= len(corpus) + 1
    for start, end in spans:
        inside = [
            f.transcript
            for f in finals
            if f.transcript.start < end + 0.15 and f.transcript.end > start - 0.15
        ]
        assert 1 <= len(inside) <= 2, (start, end, inside)
        # Speech times lie on the input clock, within a VAD window or two of the truth.
        assert start - 0.1 < inside[0].start < start + 0.15
        assert end - 0.15 < inside[-1].end < end + 0.15
    for f in finals:
        assert f.transcript.final and f.transcript.text
        m = f.metrics
        assert 0.0 < m.endpoint_delay <= 0.8 and m.audio_seconds > 0 and m.rtf > 0


async def test_a_queued_utterance_is_timed_from_when_its_audio_arrived(recognizer, sentence):
    # Each chunk is read 0.3 s after it came in (a busy loop, a queue): the final's latency
    # counts that wait rather than starting when the queue got round to the audio.
    clock = VirtualClock()
    listener = Listener(recognizer, clock=clock)
    audio = to_int16(with_silence(0.3, sentence, 1.0))
    step, finals = int(0.02 * RATE), []
    for i in range(0, len(audio), step):
        await clock.advance(0.02)
        events = await listener.feed(audio[i : i + step], RATE, at=clock.now() - 0.3)
        events += await listener.drain()
        finals += [e for e in events if isinstance(e, Final)]
    (final,) = finals
    assert final.metrics.asr_latency == pytest.approx(0.3, abs=0.021)


async def test_partials_arrive_before_the_final(recognizer, corpus):
    long = corpus[2].audio  # ~3 s
    listener = Listener(recognizer, clock=VirtualClock())
    events = await feed_all(listener, with_silence(0.3, long, 1.0), drain=True)
    kinds = [type(e) for e in events]
    assert kinds[0] is SpeechStart and kinds.count(Final) == 1
    final_at = kinds.index(Final)
    partials = [e for e in events if isinstance(e, Partial)]
    assert len(partials) >= 2
    assert all(events.index(p) < final_at for p in partials)
    assert all(not p.transcript.final and p.transcript.text for p in partials)
    # The partials grow toward the final text.
    final = events[final_at]
    assert final.metrics.partials == len(partials)
    assert len(partials[-1].transcript.text) > len(partials[0].transcript.text)


async def test_speculative_final_is_reused_and_costs_no_wait(recognizer, sentence):
    clock = VirtualClock()
    listener = Listener(recognizer, clock=clock)
    events = await feed_all(listener, with_silence(0.3, sentence, 1.0), drain=True)
    (final,) = [e for e in events if isinstance(e, Final)]
    # With every decode drained, the speculative decode at the first silence is done before
    # the endpoint window closes: the final is that decode, ready at once.
    assert final.metrics.speculative and final.metrics.asr_latency == 0.0
    assert "museum" in final.transcript.text.lower()


async def test_without_speculation_the_final_is_decoded_at_the_end(recognizer, sentence):
    config = ListenerConfig(speculative=False)
    listener = Listener(recognizer, config, clock=VirtualClock())
    events = await feed_all(listener, with_silence(0.3, sentence, 1.0))
    (final,) = [e for e in events if isinstance(e, Final)]
    assert not final.metrics.speculative and "museum" in final.transcript.text.lower()


async def test_trailing_conjunction_waits_longer(recognizer, voice):

    # "...because" then ~0.45 s of silence (Piper ends each clip with ~0.3 s) then more: one
    # utterance. A complete sentence followed by the same gap ends there: two.
    first = synthesize(voice, "I want to go to the beach because")
    more = synthesize(voice, "the weather is nice.")
    listener = Listener(recognizer, clock=VirtualClock())
    events = await feed_all(listener, with_silence(0.3, first, 0.15, more, 1.0), drain=True)
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1, [f.transcript.text for f in finals]
    assert "weather" in finals[0].transcript.text.lower()
    assert finals[0].metrics.endpoint_delay < 0.3  # the sentence itself ended quickly
    listener = Listener(recognizer, clock=VirtualClock())
    whole = synthesize(voice, "I want to go to the beach.")
    events = await feed_all(listener, with_silence(0.3, whole, 0.15, more, 1.0), drain=True)
    assert len([e for e in events if isinstance(e, Final)]) == 2


async def test_long_continuous_speech_is_cut_and_memory_stays_bounded(recognizer, corpus):
    # A stand-in for ten minutes: 40 s of speech without a pause, at most 3 s per utterance.
    speech = np.concatenate([u.audio for u in corpus[:14]])
    loud = np.abs(speech) > 0.01
    speech = speech[np.convolve(loud, np.ones(400), "same") > 0]  # squeeze out every pause
    config = ListenerConfig(segmenter=SegmenterConfig(max_utterance=3.0, partial_interval=0.5))
    listener = Listener(recognizer, config, clock=VirtualClock())
    cap = listener.segmenter.capacity
    pcm = to_int16(speech)
    events, peak = [], 0
    for i in range(0, len(pcm), 320):
        events += await listener.feed(pcm[i : i + 320], RATE)
        peak = max(peak, listener.held_samples)
    events += await listener.flush()
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) >= len(speech) / RATE / 3.0 - 1
    assert all(f.transcript.end - f.transcript.start <= 3.4 for f in finals)
    assert peak <= cap + 3 * cap  # the utterance buffer plus at most the queued finals
    assert listener.segmenter.capacity == cap
    assert sum(len(f.transcript.text.split()) for f in finals) > 60


async def test_listener_keeps_working_across_sessions_with_one_model(recognizer, sentence):
    a = Listener(recognizer, clock=VirtualClock())
    b = Listener(recognizer, clock=VirtualClock())
    audio = to_int16(with_silence(0.3, sentence, 0.8))
    events_a, events_b = [], []
    for i in range(0, len(audio), 320):  # two sessions interleaved on one shared model
        events_a += await a.feed(audio[i : i + 320], RATE)
        events_b += await b.feed(audio[i : i + 320], RATE)
    events_a += await a.flush()
    events_b += await b.flush()
    ta = [e.transcript.text for e in events_a if isinstance(e, Final)]
    tb = [e.transcript.text for e in events_b if isinstance(e, Final)]
    assert ta == tb and len(ta) == 1 and "museum" in ta[0].lower()
