"""Utterance.peek: the audio still to play, read without consuming it."""

import numpy as np

from anima.air.program import REST, Utterance


def test_peek_reads_ahead_across_chunks_without_consuming():
    utt = Utterance("hello")
    utt.add_audio(np.arange(0, 100, dtype=np.int16))
    utt.add_audio(np.arange(100, 250, dtype=np.int16))
    utt.add_mouth(REST, True)
    utt.add_mouth(REST, True)
    assert np.array_equal(utt.peek(120), np.arange(0, 120))
    _, _, played = utt.take(80)
    assert np.array_equal(played, np.arange(0, 80))
    # After a frame, the next look-ahead starts where playback stands, across the chunk edge.
    assert np.array_equal(utt.peek(50), np.arange(80, 130))
    assert np.array_equal(utt.peek(1000), np.arange(80, 250))  # only what exists
    _, _, rest = utt.take(170)
    assert np.array_equal(rest, np.arange(80, 250))
    assert utt.peek(10).size == 0
