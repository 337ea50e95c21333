"""Utterances cut from a stream of VAD decisions: the synchronous, model-free core of listening.

:meth:`Segmenter.step` takes one 512-sample window and its speech probability and returns what
happened: an utterance started, a partial is due, the speaker paused (decode speculatively
now), resumed (drop that speculation), or the utterance ended. All audio is held in
preallocated buffers (a pre-roll ring and one utterance buffer of ``max_utterance`` seconds),
so however long someone talks, memory does not grow: a too-long utterance is cut at its
quietest recent window and the rest carries over into the next one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anima.asr.endpoint import EndpointPolicy
from anima.asr.vad import WINDOW
from anima.levels import frame_rms, rms

RATE = 16_000
SPEECH_LEVEL = 0.01  # |sample| (full scale 1) of speech, -40 dBFS: what a listener still hears
NOISE_MARGIN = 3.0  # and 10 dB over the utterance's quiet frames (its noise floor)
VAD_TAIL = 3  # windows the VAD may run on after the last sound
FRAME = 160  # 10 ms: the span over which loudness is measured


@dataclass(frozen=True)
class SegmenterConfig:
    """Thresholds and sizes; seconds unless noted."""

    threshold: float = 0.5
    min_speech: float = 0.064
    preroll: float = 0.3
    max_utterance: float = 20.0
    partial_interval: float = 0.7
    policy: EndpointPolicy = EndpointPolicy()


@dataclass(frozen=True)
class Started:
    """Speech began at sample ``onset`` (utterance ``uid``)."""

    uid: int
    onset: int


@dataclass(frozen=True)
class PartialDue:
    """Enough new speech for another partial: decode ``audio`` (start..now)."""

    uid: int
    audio: np.ndarray


@dataclass(frozen=True)
class Paused:
    """First silent window after speech: ``audio`` is the utterance so far; ``pause`` numbers it."""

    uid: int
    pause: int
    audio: np.ndarray


@dataclass(frozen=True)
class Resumed:
    """Speech again after pause ``pause``; a speculative decode of it is void."""

    uid: int
    pause: int


@dataclass(frozen=True)
class Ended:
    """Utterance ``uid`` is over.

    ``audio`` spans ``start``..``end`` samples; ``speech_end`` is where speech stopped (the
    endpoint delay is ``end - speech_end``); ``pause`` is the pause it ended in (its
    speculative decode is valid) or -1 when it was cut at the length limit or flushed.
    """

    uid: int
    start: int
    end: int
    speech_end: int
    audio: np.ndarray
    reason: str
    pause: int


Event = Started | PartialDue | Paused | Resumed | Ended


class Segmenter:
    """Turns (window, probability) steps into utterance events. Not thread-safe; one per stream."""

    def __init__(self, config: SegmenterConfig | None = None) -> None:
        self.config = c = config or SegmenterConfig()
        self._pre = np.zeros(max(WINDOW, int(c.preroll * RATE) // WINDOW * WINDOW), np.float32)
        self._cap = int(c.max_utterance * RATE) // WINDOW * WINDOW + len(self._pre)
        self._buf = np.zeros(self._cap, np.float32)
        self._probs = np.zeros(self._cap // WINDOW, np.float32)
        self.hypothesis = ""  # newest text of the current utterance, set by the listener
        self.hypothesis_end = 0  # stream sample up to which that text heard the audio
        self.awaiting = False  # a decode of the audio up to the current pause is under way
        self.position = 0  # samples stepped so far
        self._uid = 0
        self._pause_id = 0
        self._pre_fill = 0
        self._reset_utterance()

    # -- state ------------------------------------------------------------------------------

    @property
    def in_utterance(self) -> bool:
        """True between :class:`Started` and :class:`Ended`."""
        return self._len > 0

    @property
    def held_samples(self) -> int:
        """Samples of the current utterance in memory (bounded by the buffer size)."""
        return self._len

    @property
    def capacity(self) -> int:
        """The most samples an utterance can hold."""
        return self._cap

    def _reset_utterance(self) -> None:
        self._len = 0
        self._start = 0
        self._speaking = False
        self._run = 0
        self._pause_at = -1
        self._speech_end = 0
        self._since_partial = 0
        self.hypothesis = ""
        self.hypothesis_end = 0
        self.awaiting = False

    # -- stepping ---------------------------------------------------------------------------

    def step(self, window: np.ndarray, prob: float) -> list[Event]:
        """Advance by one 512-sample window with speech probability ``prob``."""
        c = self.config
        start = self.position
        self.position += WINDOW
        # Hysteresis as in Silero's own helper: a dip to just under the threshold mid-word is
        # not silence.
        speech = prob >= c.threshold or (self._speaking and prob >= c.threshold - 0.15)
        if not self.in_utterance:
            return self._idle(window, speech, start)
        events: list[Event] = []
        if self._len + WINDOW > self._cap:
            events.extend(self._cut())
        self._buf[self._len : self._len + WINDOW] = window
        self._probs[self._len // WINDOW] = prob
        self._len += WINDOW
        if speech:
            if self._pause_at >= 0:
                events.append(Resumed(self._uid, self._pause_id))
                self._pause_at = -1
            self._speaking = True
            self._speech_end = self.position
            self._since_partial += WINDOW
            if c.partial_interval > 0 and self._since_partial >= c.partial_interval * RATE:
                self._since_partial = 0
                events.append(PartialDue(self._uid, self._buf[: self._len].copy()))
            return events
        if self._pause_at < 0:
            self._speaking = False
            self._pause_at = start
            self._pause_id += 1
            events.append(Paused(self._uid, self._pause_id, self._buf[: self._len].copy()))
        silent = (self.position - self._pause_at) / RATE
        if silent + 1e-9 >= self._silence_needed():
            events.append(self._end("silence", self._pause_id))
        return events

    def _silence_needed(self) -> float:
        """The policy applied to a hypothesis that heard all the speech up to this pause.

        An older hypothesis says nothing about how the sentence ended. While the decode of the
        speech up to the pause is still running we wait for it (up to the longest window): the
        final transcript needs that decode anyway, so waiting costs no latency, and its text
        tells "…, right?" from "…because".
        """
        policy = self.config.policy
        if self.hypothesis and self.hypothesis_end >= self._pause_at:
            return policy.silence_needed(self.hypothesis)
        if self.awaiting:
            return max(policy.incomplete, policy.silence)
        return policy.silence

    def flush(self) -> list[Event]:
        """End of stream: close an open utterance."""
        if not self.in_utterance:
            return []
        pause = self._pause_id if self._pause_at >= 0 else -1
        return [self._end("flush", pause)]

    def _idle(self, window: np.ndarray, speech: bool, start: int) -> list[Event]:
        pre = self._pre
        pre[:-WINDOW] = pre[WINDOW:]
        pre[-WINDOW:] = window
        self._pre_fill = min(len(pre), self._pre_fill + WINDOW)
        self._run = self._run + 1 if speech else 0
        if self._run * WINDOW < self.config.min_speech * RATE or not speech:
            return []
        # Confirmed: the utterance starts with the pre-roll, which holds the first syllable.
        held = pre[len(pre) - self._pre_fill :]
        self._buf[: len(held)] = held
        self._probs[: len(held) // WINDOW] = 1.0
        self._len = len(held)
        self._start = self.position - len(held)
        onset = self.position - self._run * WINDOW
        self._speaking = True
        self._speech_end = self.position
        self._since_partial = self._run * WINDOW
        self._uid += 1
        self._run = 0
        self._pre_fill = 0
        return [Started(self._uid, onset)]

    def _heard_end(self) -> int:
        """Where speech really stopped: the VAD's end, moved back to the last sound within its
        last :data:`VAD_TAIL` windows.

        Silero's probability stays high for a window or more after the last sound, so its end
        comes late; counted from it, the endpoint delay (and the latency a turn reports) would
        leave that time out. A sound is a 10 ms frame at :data:`SPEECH_LEVEL` or louder and
        :data:`NOISE_MARGIN` times the utterance's noise floor (its quiet frames: the pre-roll
        and the gaps between words), so steady background noise does not count as speech.
        """
        end = self._speech_end - self._start
        low = max(0, end - VAD_TAIL * WINDOW)
        level = max(SPEECH_LEVEL, _noise_level(self._buf[:end]))
        tail = self._buf[low:end]
        for at in range((len(tail) - 1) // FRAME * FRAME, -1, -FRAME):
            frame = tail[at : at + FRAME]
            if rms(frame) >= level:
                loud = np.flatnonzero(np.abs(frame) >= level)
                last = int(loud[-1]) if len(loud) else len(frame) - 1
                return self._start + low + at + last + 1
        return self._start + low

    def _end(self, reason: str, pause: int) -> Ended:
        ended = Ended(
            self._uid,
            self._start,
            self._start + self._len,
            self._heard_end() if reason != "max_length" else self._start + self._len,
            self._buf[: self._len].copy(),
            reason,
            pause,
        )
        self._reset_utterance()
        return ended

    def _cut(self) -> list[Event]:
        """The buffer is full: end at the quietest window of the last third, carry the rest."""
        n = self._len // WINDOW
        lo = n - max(1, n // 3)
        cut = (lo + int(np.argmin(self._probs[lo:n]))) * WINDOW + WINDOW
        uid_start = self._start
        tail = self._buf[cut : self._len].copy()
        tail_probs = self._probs[cut // WINDOW : n].copy()
        self._len = cut
        speaking, since = self._speaking, self._since_partial
        ended = self._end("max_length", -1)
        # The carried-over tail opens the next utterance straight away.
        self._uid += 1
        self._start = uid_start + cut
        self._buf[: len(tail)] = tail
        self._probs[: len(tail_probs)] = tail_probs
        self._len = len(tail)
        self._speaking = speaking
        self._speech_end = self._start + self._len
        self._since_partial = min(since, len(tail))
        if not len(tail):  # the cut fell at the very end: the next window opens it
            self._len = 0
            self._uid -= 1
            return [ended]
        return [ended, Started(self._uid, self._start)]


def _noise_level(audio: np.ndarray) -> float:
    """:data:`NOISE_MARGIN` times the RMS of the quiet frames of ``audio`` (their 10th
    percentile), or 0 where the loud frames (90th) are not that far above them: without a
    measurable gap between voice and background there is no floor to go by.
    """
    levels = frame_rms(audio, FRAME)
    if not len(levels):
        return 0.0
    quiet, loud = np.percentile(levels, [10, 90])
    return float(NOISE_MARGIN * quiet) if loud > NOISE_MARGIN * quiet else 0.0
