"""What a session tells its client besides media: state, transcripts, subtitles, errors, timings.

Every event is a frozen dataclass with ``to_json()`` returning a dict with a ``"type"`` key, the
same dict the WebSocket protocol sends (see ``docs/protocol.md``). :class:`FaceParams` is the
per-frame face description of the "params" media mode (a client draws its own character).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

STATES = ("idle", "listening", "thinking", "speaking")


class _Json:
    """``to_json``: the dataclass fields plus ``type``."""

    type: ClassVar[str] = ""

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict with a ``"type"`` key."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = round(value, 4) if isinstance(value, float) else value
        return out


@dataclass(frozen=True)
class StateChanged(_Json):
    """The avatar is now ``idle``, ``listening``, ``thinking`` or ``speaking``."""

    type: ClassVar[str] = "state"
    state: str


@dataclass(frozen=True)
class TranscriptEvent(_Json):
    """What the user said: a partial hypothesis or the final text (seconds of mic audio)."""

    type: ClassVar[str] = "transcript"
    text: str
    final: bool
    start: float
    end: float
    language: str = ""  # the recogniser's language code (identified per utterance with auto)


@dataclass(frozen=True)
class Subtitle(_Json):
    """The sentence the avatar starts saying now (emitted at its audio time)."""

    type: ClassVar[str] = "subtitle"
    text: str
    emotion: str
    turn: int


@dataclass(frozen=True)
class HandoffEvent(_Json):
    """The conversation asks for a human (``reason`` as the brain gave it)."""

    type: ClassVar[str] = "handoff"
    reason: str


@dataclass(frozen=True)
class ErrorEvent(_Json):
    """A backend failed (``stage``: listen, brain, tts, render, input…); the session goes on."""

    type: ClassVar[str] = "error"
    stage: str
    message: str
    retryable: bool = False


@dataclass(frozen=True)
class TurnLatency(_Json):
    """Where the time of one reply went, in seconds.

    Parts (present when known): ``endpoint`` (silence waited after the user stopped),
    ``asr`` (end of utterance to final transcript), ``first_phrase`` (brain), ``tts_first_chunk``
    (first phrase to its first audio), ``first_frame`` (first audio to the first frame sent out),
    ``total`` (end of user speech, or the typed question, to the first avatar audio frame sent).
    """

    type: ClassVar[str] = "latency"
    parts: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON-ready dict (parts rounded to 0.1 ms)."""
        return {"type": self.type, "parts": {k: round(v, 4) for k, v in self.parts.items()}}


@dataclass(frozen=True)
class Interrupted(_Json):
    """The avatar stopped mid-reply (``reason``: user, barge-in, ask, ptt); ``heard_chars`` of it were heard."""

    type: ClassVar[str] = "interrupted"
    turn: int
    reason: str
    heard_chars: int | None = None


@dataclass(frozen=True)
class FaceParams(_Json):
    """The face at video frame ``index``: mouth in 0..1, blink 0 open..1 closed, head in degrees."""

    type: ClassVar[str] = "face"
    index: int
    jaw_open: float
    lip_width: float
    lip_round: float
    lip_closure: float
    blink: float
    head_yaw: float
    head_pitch: float
    head_roll: float
    speaking: bool
    emotion: str = "neutral"
    turn: int = 0


@dataclass(frozen=True)
class LimitReached(_Json):
    """A per-session limit was reached (``limit``: "llm_tokens"); ``used`` of ``allowed``."""

    type: ClassVar[str] = "limit"
    limit: str
    used: int
    allowed: int


Event = (
    StateChanged
    | TranscriptEvent
    | Subtitle
    | HandoffEvent
    | ErrorEvent
    | TurnLatency
    | Interrupted
    | LimitReached
)

__all__ = [
    "STATES",
    "ErrorEvent",
    "Event",
    "FaceParams",
    "HandoffEvent",
    "LimitReached",
    "Interrupted",
    "StateChanged",
    "Subtitle",
    "TranscriptEvent",
    "TurnLatency",
]
