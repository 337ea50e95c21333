"""What one dialogue turn yields and records: the events besides phrases, and the turn record.

The :class:`~anima.dialogue.agent.Agent` yields :data:`Event` values; these names are
importable from :mod:`anima.dialogue.agent` too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anima.dialogue.brain import Phrase
from anima.dialogue.chunker import PhraseChunker


@dataclass(frozen=True, slots=True)
class HandoffRequested:
    """The agent asks for a human to take over; ``reason`` as in :class:`anima.frames.Handoff`."""

    reason: str


@dataclass(frozen=True, slots=True)
class TurnFailed:
    """The brain failed on this turn (an apology phrase was already yielded)."""

    message: str
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class BudgetSpent:
    """The session's LLM token budget is spent: ``used`` of ``allowed``; the brain was not
    called (the budget line was already yielded)."""

    used: int
    allowed: int


Event = Phrase | HandoffRequested | TurnFailed | BudgetSpent


@dataclass
class TurnRecord:
    """What happened on one turn: for the audit log, ``anima chat`` and tests."""

    question: str
    route: str = ""
    spoken: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    confidence: float | None = None
    intent: str | None = None
    reason: str | None = None
    interrupted: bool = False
    first_phrase_ms: float | None = None
    total_ms: float | None = None
    in_history: bool = True  # refusals stay out of the conversation the model sees

    @property
    def answer(self) -> str:
        """The reply as spoken (phrases joined by single spaces)."""
        return " ".join(self.spoken)


def fixed_phrases(text: str, emotion: str = "neutral") -> list[Phrase]:
    """Fixed text cut into phrases the way the chunker cuts a model's reply."""
    # The whole text is known: cut at clauses and sentences, not after the first few words.
    chunker = PhraseChunker(first_words=40)
    phrases = chunker.feed(text) + chunker.flush()
    if emotion != "neutral":
        phrases = [Phrase(p.text, emotion) for p in phrases]
    return phrases
