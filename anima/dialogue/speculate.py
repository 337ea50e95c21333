"""While the visitor talks: the stable words of partial transcripts, and finals that belong together.

:class:`Speculator` is pure bookkeeping (text and times in, decisions out), so it is tested
without a model or a loop:

- :meth:`Speculator.partial` gives the words two partial transcripts in a row agree on (the
  last word of a partial may still change) once they have grown, for
  :meth:`anima.dialogue.agent.Agent.prefill` to read ahead;
- :meth:`Speculator.final` merges a final transcript that follows the previous one within
  ``window`` seconds (a pause inside a sentence cut it in two) into one question, unless the
  previous one ended a sentence (``?``, ``.``, ``!``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

_ENDS = tuple(".?!。？！…")


class Speculator:
    """Tracks one conversation's partial and final transcripts (see the module docstring)."""

    def __init__(self, window: float = 1.0, now: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self._now = now
        self._last_partial: list[str] = []
        self._read: list[str] = []  # the stable words already handed out for prefill
        self._last_final: tuple[str, float] | None = None

    def partial(self, text: str) -> str | None:
        """The stable part of the utterance so far, when it grew since last asked; else None."""
        words = text.split()
        stable: list[str] = []
        for a, b in zip(self._last_partial, words, strict=False):
            if a != b:
                break
            stable.append(a)
        self._last_partial = words
        if len(stable) < 2 or stable == self._read:
            return None
        self._read = stable
        return " ".join(stable)

    def final(self, text: str) -> tuple[str, bool]:
        """The question to answer for final ``text`` and whether it merges the previous one."""
        now = self._now()
        self._last_partial, self._read = [], []
        previous = self._last_final
        # A question or sentence that ended ("Are you open?") is not continued by the next.
        merged = (
            previous is not None
            and now - previous[1] <= self.window
            and not previous[0].rstrip().endswith(_ENDS)
        )
        question = f"{previous[0]} {text}" if merged and previous else text
        self._last_final = (question, now)
        return question, merged
