"""Emotion in the voice: Piper's length/noise scales and pauses, carried through the TTS stage."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from anima.expression import voice_style
from anima.frames import TextChunk
from anima.tts import speak
from anima.tts.stage import SpeechStage

TEXT = "Thank you for waiting. Your table is ready now."


def _seconds(voice, emotion: str) -> tuple[float, float]:
    chunks = list(voice.synthesize(TEXT, emotion=emotion))
    assert {c.emotion for c in chunks} == {emotion}
    pause = sum(p.end - p.start for c in chunks for p in c.phonemes if p.phoneme == "_")
    return sum(c.duration for c in chunks), pause


def test_sad_is_slower_with_longer_pauses_than_happy(voice):
    sad, sad_pause = _seconds(voice, "sad")
    happy, happy_pause = _seconds(voice, "happy")
    neutral, _ = _seconds(voice, "neutral")
    # Piper's duration noise varies a run by ~1-2 %; the emotions differ by 5-15 %.
    assert sad > neutral * 1.06
    assert happy < neutral * 0.99
    assert sad_pause > 1.5 * happy_pause


def test_emotion_sets_piper_scales(voice):
    config = voice.synthesis_config("sad")
    style = voice_style("sad")
    assert config.length_scale == pytest.approx(style.length)
    # The suite's voice is a fixed rendition (variation 0): the emotion's noise scaled by it.
    assert config.noise_scale == style.noise * voice.variation
    assert config.noise_w_scale == style.noise_w * voice.variation


def test_unknown_emotion_is_refused(voice):
    with pytest.raises(ValueError, match="unknown emotion"):
        list(voice.synthesize("Hello.", emotion="grumpy"))


async def test_stage_passes_the_emotion_to_the_voice_and_the_chunks(voice):
    stage = SpeechStage(voice)
    out = [
        f async for f in stage.process(TextChunk(turn=1, text="Oh, really?", emotion="surprised"))
    ]
    assert out and all(c.emotion == "surprised" for c in out)


class _PlainVoice:
    """A voice that knows nothing about emotions."""

    sample_rate = 16_000

    def synthesize(self, text: str, turn: int = 0) -> Iterator:
        from anima.frames import SpeechChunk

        yield SpeechChunk(turn=turn, pcm=np.zeros(160, np.int16), sample_rate=16_000, text=text)


def test_voices_without_emotion_still_mark_their_chunks():
    chunks = list(speak(_PlainVoice(), "Hi.", 2, "happy"))
    assert [c.emotion for c in chunks] == ["happy"]
