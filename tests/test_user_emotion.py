"""Reading the user's emotion from their words (and the loudness/pace of their speech)."""

from __future__ import annotations

import numpy as np
import pytest

from anima.emotion import estimate_emotion, reply_emotion, speech_arousal
from anima.frames import EMOTIONS


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("This is RIDICULOUS, it still does not work!!", "frustrated"),
        ("I'm so fed up with waiting, this is useless.", "frustrated"),
        ("I am not happy with this at all.", "frustrated"),
        ("Thank you so much, that was wonderful!", "happy"),
        ("My dog died yesterday and I feel so lonely.", "sad"),
        ("Wow, no way!", "surprised"),
        ("What do you mean?? I don't understand.", "confused"),
        ("Where is the nearest exit?", "neutral"),
        ("", "neutral"),
    ],
)
def test_labels(text, label):
    assert estimate_emotion(text).label == label


def test_frustrated_user_gets_a_calm_brief_concerned_reply():
    user = estimate_emotion("This is useless, it never works and I hate it!!")
    assert user.calm_and_brief
    assert reply_emotion(user) == "serious"
    assert not estimate_emotion("Thanks, great!").calm_and_brief


def test_intensifiers_raise_intensity():
    assert (
        estimate_emotion("I am very annoyed").intensity > estimate_emotion("I am annoyed").intensity
    )


def test_replies_are_known_emotions():
    for text in ("great!", "awful", "sad", "wow", "huh?", "ok"):
        assert reply_emotion(estimate_emotion(text)) in EMOTIONS


def test_loud_fast_speech_raises_arousal():
    rate = 16_000
    t = np.arange(rate * 2) / rate
    quiet = (np.sin(2 * np.pi * 200 * t) * 2000).astype(np.int16)
    loud = (np.sin(2 * np.pi * 200 * t) * 20000).astype(np.int16)
    assert speech_arousal(loud, rate, words=10) > speech_arousal(quiet, rate, words=4) + 0.3
    calm = estimate_emotion("this is annoying", quiet)
    angry = estimate_emotion("this is annoying", loud)
    assert angry.intensity > calm.intensity
