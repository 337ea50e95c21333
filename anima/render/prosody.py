"""Beats of speech read from the mouth track and the voice's pitch: stress, words, questions.

The voice's loudness is read from the jaw (the lip-sync opens it with the audio's energy), its
pitch from :attr:`MouthShape.pitch` (semitones above the phrase's median, from the audio).
A syllable opening well beyond the recent average, or a pitch accent (the voice rising well
above its recent level), is a stressed one and gives a brief brow raise and a small nod (people
mark stress with both); the rising end of a question (:attr:`MouthShape.question`) raises the
brows and tilts the head until the answer's turn; an open or moving mouth is mid-word (blinks
wait); the end of a stretch of speech is a sentence end (gaze returns).
"""

from __future__ import annotations

import math


class Prosody:
    """Per-frame tracker of speech beats for one animator. Call :meth:`step` once per frame."""

    def __init__(self, fps: int) -> None:
        self._fps = fps
        self._fast = 0.0  # jaw smoothed over ~60 ms: the syllable
        self._slow = 0.0  # jaw smoothed over ~1.2 s: the phrase's level
        self._pulse = 0.0
        self._pitch_fast = 0.0  # semitones, ~60 ms: the syllable's pitch
        self._pitch_slow = 0.0  # ~1 s: the phrase's level
        self.asking = 0.0  # 0..1: the brows and tilt of a question's end
        self._since_beat = 10.0
        self._in_speech = False
        self._quiet = 0.0
        self.mid_word = False
        self.sentence_ended = False

    def step(self, jaw: float, speaking: bool, pitch: float = 0.0, question: float = 0.0) -> float:
        """Advance one frame; the stress pulse (0..1) for brows and nods.

        ``pitch`` (semitones above the phrase's median, 0 unvoiced) and ``question`` (0..1)
        come with the mouth shape; leaving them at 0 gives beats from the jaw alone.
        """
        dt = 1.0 / self._fps
        x = jaw if speaking else 0.0
        self._fast += (x - self._fast) * min(1.0, dt / 0.06)
        self._slow += (x - self._slow) * min(1.0, dt / 1.2)
        if speaking and pitch != 0.0:
            self._pitch_fast += (pitch - self._pitch_fast) * min(1.0, dt / 0.06)
            self._pitch_slow += (pitch - self._pitch_slow) * min(1.0, dt / 1.0)
        # A question's raise comes in over ~0.2 s and, once asked, fades over ~1.5 s.
        if question > self.asking:
            self.asking += (question - self.asking) * min(1.0, dt / 0.2)
        else:
            self.asking *= math.exp(-dt / 1.5)
        self._since_beat += dt
        loud = self._fast > 0.35 and self._fast > self._slow + 0.22
        accent = self._fast > 0.15 and self._pitch_fast > self._pitch_slow + 2.5
        if speaking and (loud or accent) and self._since_beat > 0.6:
            self._since_beat = 0.0
        # A beat rises over ~0.1 s and fades over ~0.5 s.
        b = self._since_beat
        self._pulse = (b / 0.1) if b < 0.1 else math.exp(-(b - 0.1) / 0.35)
        self.mid_word = speaking and self._fast > 0.08
        if speaking and self._fast > 0.05:
            self._quiet, self._in_speech = 0.0, True
        else:
            self._quiet += dt
        # Speech followed by 0.35 s of stillness: the sentence (or phrase) is over.
        self.sentence_ended = self._in_speech and self._quiet >= 0.35
        if self.sentence_ended:
            self._in_speech = False
        return self._pulse if self._since_beat < 2.0 else 0.0
