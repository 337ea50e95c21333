"""The pipeline stage of the brain: final transcripts in, reply phrases and events out.

:class:`DialogueStage` takes :class:`~anima.frames.Transcript` frames. Partial transcripts
only pass through (for live subtitles); a final one is passed through too and then answered:
each phrase the :class:`~anima.dialogue.agent.Agent` releases becomes a
:class:`~anima.frames.TextChunk` of the same turn, a hand-off becomes a
:class:`~anima.frames.Handoff` frame and a brain failure an :class:`~anima.frames.Error`
frame (after the spoken apology). Typed user text enters the same way, as a final
``Transcript``.

While the visitor talks, the stable words of the partial transcripts are read into the model
ahead (:meth:`~anima.dialogue.agent.Agent.prefill`, in the background; the final waits for it);
a final that follows the previous one within a second is answered together with it, as one
question (:class:`~anima.dialogue.speculate.Speculator`).

Interruption: the pipeline cancels :meth:`process` mid-reply, which closes the agent's
generator and with it the brain's stream; :meth:`reset` then marks the reply as cut off. The
session reports how much the user actually heard with :meth:`interrupted`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from anima.dialogue.agent import Agent, HandoffRequested, TurnFailed
from anima.dialogue.brain import Phrase
from anima.dialogue.speculate import Speculator
from anima.frames import Error, Frame, Handoff, TextChunk, Transcript
from anima.pipeline import Stage


class DialogueStage(Stage):
    """Answers final transcripts with :class:`TextChunk` frames (see the module docstring)."""

    accepts = (Transcript,)

    def __init__(
        self, agent: Agent, *, user_id: str | None = None, speculator: Speculator | None = None
    ) -> None:
        self.agent = agent
        self.user_id = user_id  # who is talking (kiosk login, web account); None: anonymous
        self.speculator = speculator or Speculator()
        self._prefill: asyncio.Task[int] | None = None

    @property
    def name(self) -> str:
        """Name used in logs, metrics and Error frames."""
        return "dialogue"

    def greet(self, turn: int) -> list[TextChunk]:
        """The persona's greeting as frames of ``turn``, for the session to push at start."""
        return [TextChunk(turn, p.text, p.emotion) for p in self.agent.greeting(self.user_id)]

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Pass the transcript on; answer it if it is final."""
        assert isinstance(frame, Transcript)
        yield frame
        if not frame.final:
            # Read the stable words into the model while the visitor is still talking.
            stable = self.speculator.partial(frame.text)
            if stable is not None and (self._prefill is None or self._prefill.done()):
                self._prefill = asyncio.create_task(self._read_ahead(stable))
            return
        if not frame.text.strip():
            return
        turn = frame.turn
        question, merged = self.speculator.final(frame.text)
        if merged:  # a pause cut one sentence in two: answer it whole
            self.agent.withdraw_last()
        if self._prefill is not None and not self._prefill.done():
            await asyncio.wait([self._prefill])  # the model reads the rest after it
        replies = self.agent.respond(question, user_id=self.user_id)
        async with contextlib.aclosing(replies):
            async for event in replies:
                if isinstance(event, Phrase):
                    yield TextChunk(turn, event.text, event.emotion)
                elif isinstance(event, HandoffRequested):
                    yield Handoff(turn, event.reason)
                elif isinstance(event, TurnFailed):
                    yield Error(turn, self.name, event.message, event.retryable, {"route": "llm"})

    async def _read_ahead(self, text: str) -> int:
        try:
            return await self.agent.prefill(text)
        except Exception:  # a failed speculation costs nothing but the time it took
            return 0

    def reset(self) -> None:
        """After an interruption: the reply was cut off; heard length unknown until told."""

    def interrupted(self, heard_chars: int | None) -> None:
        """The user heard ``heard_chars`` characters of the last reply (see Agent.interrupted)."""
        self.agent.interrupted(heard_chars)
