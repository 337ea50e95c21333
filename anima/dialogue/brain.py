"""The brain's contract: a conversation in, reply text out as it is generated.

Every backend (OpenAI-compatible HTTP, local GGUF, the knowledge-base answerer) implements
:class:`Brain`. Cancelling the consumer of :meth:`Brain.stream` (``aclose()`` on the async
generator, or cancelling the task iterating it) must stop generation at once and release the
backend's resources (the HTTP stream, the llama.cpp context lock).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation as the model sees it."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class Phrase:
    """A speakable piece of the reply, as the chunker releases it for the TTS.

    ``text`` is clean (no markup); ``emotion`` is one of :data:`anima.frames.EMOTIONS`.
    """

    text: str
    emotion: str = "neutral"


class BrainError(Exception):
    """A backend failed (unreachable, timed out, bad answer); ``retryable`` if a retry may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Brain(Protocol):
    """A source of reply text, streamed piece by piece."""

    name: str

    def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply to ``messages`` as text deltas; raise :class:`BrainError` on failure."""
        ...

    async def aclose(self) -> None:
        """Release the backend (connections, model memory)."""
        ...
