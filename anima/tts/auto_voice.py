"""One voice per language, chosen sentence by sentence: the voice of ``language: auto``.

The brain answers in the language the visitor spoke; this voice reads each sentence with the
voice of the pack whose script the sentence is written in (Chinese characters -> the Mandarin
voice, anything else -> English), so a turn in either language is spoken right without the
session knowing about languages. All voices must share one sample rate (the session's clock).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from anima.frames import SpeechChunk
from anima.lang import get_pack, pack_for_text
from anima.tts import Voice, VoiceError
from anima.tts.piper_voice import split_sentences


class AutoVoice:
    """Routes each sentence to the voice of its language (a mapping of pack code -> voice)."""

    def __init__(self, voices: Mapping[str, Voice]) -> None:
        if not voices:
            raise VoiceError("the auto voice needs at least one language's voice")
        rates = {v.sample_rate for v in voices.values()}
        if len(rates) != 1:
            raise VoiceError(f"the languages' voices differ in sample rate: {sorted(rates)}")
        self.voices = dict(voices)
        self.packs = [get_pack(code) for code in self.voices]
        self.sample_rate: int = rates.pop()

    def synthesize(self, text: str, turn: int = 0) -> Iterator[SpeechChunk]:
        """Speak ``text``, each sentence with the voice of the language it is written in."""
        for sentence in split_sentences(text):
            pack = pack_for_text(sentence, self.packs)
            yield from self.voices[pack.code].synthesize(sentence, turn)
