"""The typed frames that flow through the pipeline.

Frames are small immutable dataclasses. Every content frame carries the ``turn`` id it belongs
to, so that after an interruption each stage can drop frames of older turns without knowing
who produced them. Control frames (``TurnStart``, ``Interrupt``, ``TurnEnd``, ``Error``) also
carry a turn id; they are never dropped as stale.

Media time is counted in samples (audio) and frame indices (video), never read from a wall
clock: audio is the master clock and video pts derive from it (see :class:`MediaClock`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """Base of every frame: the conversation turn it belongs to."""

    turn: int


# --- content frames -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AudioFrame(Frame):
    """Mono int16 PCM. ``pts`` is the index of its first sample on the session's audio clock."""

    pcm: np.ndarray
    sample_rate: int
    pts: int = 0

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True, slots=True)
class Transcript(Frame):
    """What the listener understood; ``final`` is False for partial hypotheses.

    ``start`` and ``end`` are seconds on the listener's input clock (samples received / rate).
    """

    text: str
    final: bool
    start: float = 0.0
    end: float = 0.0
    language: str = ""


EMOTIONS = ("neutral", "happy", "sad", "surprised", "serious")


@dataclass(frozen=True, slots=True)
class TextChunk(Frame):
    """A speakable phrase of the avatar's reply (or a whole line to say).

    ``emotion`` is one of :data:`EMOTIONS`; the voice and face may use it, the TTS never reads
    it as text.
    """

    text: str
    emotion: str = "neutral"


@dataclass(frozen=True, slots=True)
class PhonemeTiming:
    """One phoneme (IPA, as spoken by the voice) and where it lies in the audio, in seconds."""

    phoneme: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class SpeechChunk(Frame):
    """Synthesised speech for one phrase: PCM, the phrase text and per-phoneme timings.

    Timings are relative to the start of ``pcm``; they cover it from 0 to its end.
    """

    pcm: np.ndarray
    sample_rate: int
    text: str
    phonemes: tuple[PhonemeTiming, ...] = ()
    emotion: str = "neutral"  # from the TextChunk, for the face

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return len(self.pcm) / self.sample_rate


@dataclass(frozen=True, slots=True)
class MouthShape:
    """Mouth and face parameters for one video frame, each in 0..1 unless noted.

    ``jaw_open``: how far the jaw drops; ``lip_width``: corners pulled apart (ee, smile);
    ``lip_round``: lips pushed forward and narrowed (oo, w); ``lip_closure``: lips pressed
    together (p, b, m). ``tongue_up``: the tongue tip raised to the upper teeth (l, n, t, d);
    ``tongue_out``: the tip between the teeth (th). ``pitch``: the voice's pitch in semitones
    above the phrase's median (0 when unvoiced or unknown); ``question``: 0..1 over the end of
    a phrase that asks. The four mouth values come first, so ``MouthShape(*row)`` of a
    four-value row still works.
    """

    jaw_open: float = 0.0
    lip_width: float = 0.0
    lip_round: float = 0.0
    lip_closure: float = 0.0
    tongue_up: float = 0.0
    tongue_out: float = 0.0
    pitch: float = 0.0
    question: float = 0.0

    def as_array(self) -> np.ndarray:
        """The four values in declaration order."""
        return np.array([self.jaw_open, self.lip_width, self.lip_round, self.lip_closure])


@dataclass(frozen=True, slots=True)
class MouthFrame(Frame):
    """Mouth shape for video frame number ``index`` (pts = index / fps on the audio clock)."""

    index: int
    shape: MouthShape
    speaking: bool = True
    emotion: str = "neutral"  # the face's expression target (see anima.expression)


@dataclass(frozen=True, slots=True)
class VideoFrame(Frame):
    """An RGB uint8 image (H, W, 3) shown at video frame number ``index``."""

    image: np.ndarray
    index: int


# --- control frames -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlFrame(Frame):
    """Frames that steer the pipeline; never dropped as stale."""


@dataclass(frozen=True, slots=True)
class TurnStart(ControlFrame):
    """A new turn begins."""


@dataclass(frozen=True, slots=True)
class TurnEnd(ControlFrame):
    """Everything of this turn has been sent downstream."""


@dataclass(frozen=True, slots=True)
class Interrupt(ControlFrame):
    """The turn was cut off (barge-in or operator); ``turn`` is the new current turn."""

    reason: str = "interrupted"


@dataclass(frozen=True, slots=True)
class Handoff(ControlFrame):
    """The avatar asks for a human to take over (the kiosk or web page acts on it).

    ``reason``: ``"requested"`` (the user asked for a person), ``"cannot_help"`` (repeated
    unanswered questions or a failing brain) or ``"intent:<name>"`` (an operator intent).
    """

    reason: str = "requested"


@dataclass(frozen=True, slots=True)
class UserSpeech(ControlFrame):
    """The listener heard the user start (``started``) or stop speaking at ``at`` seconds."""

    started: bool
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class BargeIn(ControlFrame):
    """The user spoke over the avatar's ``turn``; the session interrupts that turn once.

    ``onset`` is when the user's speech began and ``at`` when it was judged a barge-in, both in
    seconds on the listener's input clock.
    """

    onset: float = 0.0
    at: float = 0.0


@dataclass(frozen=True, slots=True)
class Error(ControlFrame):
    """A stage failed on a frame; the session decides what to do. ``retryable`` is advisory."""

    stage: str
    message: str
    retryable: bool = False
    details: dict[str, str] = field(default_factory=dict)


# --- the media clock ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MediaClock:
    """Audio is the master clock: video frame times are derived from audio sample counts.

    Video frame ``k`` is shown while audio sample ``sample_of_frame(k)`` plays; the number of
    video frames an audio stream of ``n`` samples covers is ``frames_for_samples(n)``. Integer
    arithmetic only, so nothing drifts over hours.
    """

    sample_rate: int
    fps: int

    def frames_for_samples(self, samples: int) -> int:
        """How many whole video frames start before sample ``samples``."""
        return -(-samples * self.fps // self.sample_rate)

    def sample_of_frame(self, index: int) -> int:
        """The audio sample at which video frame ``index`` is shown."""
        return index * self.sample_rate // self.fps

    def frame_time(self, index: int) -> float:
        """Presentation time of video frame ``index`` in seconds."""
        return index / self.fps
