"""The ``kb`` backend: a :class:`~anima.dialogue.brain.Brain` that answers from the knowledge
base alone, verbatim, with no language model.

The :class:`~anima.dialogue.agent.Agent` recognises this backend by its name and routes
questions to its own knowledge base (the answer is then filtered and audited like any other);
the class exists so that ``load_brain`` can build every configured backend by name and so the
knowledge base can also be used wherever a plain ``Brain`` is expected.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from anima.dialogue.brain import Message
from anima.dialogue.knowledge import KnowledgeBase
from anima.dialogue.persona import VISITOR_CLOSE, VISITOR_OPEN, Persona


class KnowledgeBrain:
    """Streams the best matching passage of ``knowledge`` word by word, or "I don't know"."""

    name = "kb"

    def __init__(
        self,
        knowledge: KnowledgeBase | None = None,
        persona: Persona | None = None,
        *,
        threshold: float = 0.5,
    ) -> None:
        self.knowledge = knowledge
        self.persona = persona or Persona.from_settings()
        self.threshold = threshold

    def answer(self, question: str) -> str:
        """The verbatim answer to ``question``, or the persona's "I don't know" line."""
        hit = self.knowledge.best(question) if self.knowledge is not None else None
        if hit is None or hit.confidence < self.threshold:
            return self.persona.dont_know_line()
        return hit.passage.text

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Answer the last user message; ``max_tokens`` does not cut approved text."""
        question = next((m.content for m in reversed(messages) if m.role == "user"), "")
        question = question.removeprefix(VISITOR_OPEN).removesuffix(VISITOR_CLOSE)
        for piece in re.findall(r"\S+\s*", self.answer(question)):
            yield piece

    async def aclose(self) -> None:
        """Nothing to release."""
