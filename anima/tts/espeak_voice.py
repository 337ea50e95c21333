"""espeak-ng as a conversational voice for a language pack (the free Mandarin default).

The pack says which espeak-ng voice to use, how to normalise text (numbers, dates, money) and
how to feed it (Mandarin: tone-numbered pinyin from pypinyin's phrase dictionary to the
``cmn-latn-pinyin`` voice, so polyphones are read right). espeak-ng reports every phoneme's
start in the audio, so the lips get per-phoneme timings; a Mandarin final with several vowels
(``uai``, ``iɑu``) is split evenly into its vowels so the mouth moves through them.

espeak-ng is robotic but free (GPL-3.0 library, ``espeakng-loader``), tiny and about a hundred
times faster than real time on one core. The library is process-wide and not thread-safe, so
one instance serves every voice behind a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cache

import numpy as np

from anima.frames import PhonemeTiming, SpeechChunk
from anima.lang import LanguagePack, get_pack
from anima.tts import VoiceError
from anima.tts.espeak import Espeak
from anima.tts.piper_voice import split_sentences

_VOWELS = frozenset("aeiouyɑɛəɤʊɔɪæɐøœɯʌɚ")
_LOCK = threading.Lock()


@cache
def _engine() -> Espeak:
    return Espeak()


def split_final(timing: PhonemeTiming) -> list[PhonemeTiming]:
    """A multi-vowel symbol (a Mandarin final such as ``uai``) as one timing per vowel."""
    sym = timing.phoneme
    if len(sym) < 2 or not all(ch in _VOWELS for ch in sym):
        return [timing]
    step = (timing.end - timing.start) / len(sym)
    return [
        PhonemeTiming(ch, timing.start + i * step, timing.start + (i + 1) * step)
        for i, ch in enumerate(sym)
    ]


class EspeakVoice:
    """The espeak-ng voice of a language pack: int16 PCM plus phoneme timings per sentence."""

    def __init__(
        self,
        language: str = "zh",
        length_scale: float = 1.0,
        sentence_silence: float = 0.15,
        pitch: int = 50,
    ) -> None:
        self.pack: LanguagePack = get_pack(language)
        if not self.pack.espeak_voice:
            raise VoiceError(f"language {self.pack.code!r} has no espeak-ng voice")
        with _LOCK:
            self._espeak = _engine()
            self._espeak.speak("", voice=self.pack.espeak_voice)  # fails early if unknown
        self.sample_rate: int = self._espeak.sample_rate
        self._rate = int(round(self.pack.espeak_rate / length_scale))
        self._pitch = pitch
        self._pause = int(sentence_silence * self.sample_rate)

    def synthesize(self, text: str, turn: int = 0) -> Iterator[SpeechChunk]:
        """Speak ``text`` sentence by sentence; each chunk ends with the sentence pause."""
        for sentence in split_sentences(self.pack.clean_text(text)):
            spoken = self.pack.espeak_text(self.pack.normalise(sentence))
            if not spoken.strip():
                continue
            with _LOCK:
                utt = self._espeak.speak(
                    spoken, voice=self.pack.espeak_voice, rate=self._rate, pitch=self._pitch
                )
            if not len(utt.pcm):
                continue
            timings = [
                part
                for t in utt.timings
                for part in split_final(
                    PhonemeTiming(self.pack.phonemes.get(t.phoneme, t.phoneme), t.start, t.end)
                )
            ]
            pcm = utt.pcm
            if self._pause:
                end = len(pcm) / self.sample_rate
                pcm = np.concatenate([pcm, np.zeros(self._pause, np.int16)])
                timings.append(PhonemeTiming("_", end, len(pcm) / self.sample_rate))
            yield SpeechChunk(
                turn=turn,
                pcm=pcm,
                sample_rate=self.sample_rate,
                text=sentence,
                phonemes=tuple(timings),
            )
