"""Prometheus timings of the brain: first token, first speakable phrase, tokens per second.

Who observes what, so nothing is counted twice:

- the backends (:mod:`~anima.dialogue.openai_backend`, :mod:`~anima.dialogue.gguf_backend`)
  call :func:`observe_first_token` and :func:`observe_tokens_per_second` for every reply;
- whoever runs the :class:`~anima.dialogue.chunker.PhraseChunker` on a reply (the dialogue
  agent) calls :func:`observe_first_phrase`, with the time from the request to the first
  released phrase. :class:`ReplyTimer` does that bookkeeping for one reply.

Every metric is labelled with the backend ``name`` ("gguf", "openai", "kb").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 1.5, 2.5, 5.0, 10.0)

LLM_TOKENS = Counter(
    "anima_llm_tokens_total",
    "LLM tokens charged to session budgets: prompt (estimated) and reply (streamed deltas).",
    ["kind"],
)
LLM_BUDGET_SPENT = Counter(
    "anima_llm_budget_spent_total",
    "Turns answered with limits.llm_budget_line because the session's LLM budget was spent.",
)
FIRST_TOKEN_SECONDS = Histogram(
    "anima_brain_first_token_seconds",
    "Time from sending the conversation to the first reply text.",
    ["backend"],
    buckets=_LATENCY_BUCKETS,
)
FIRST_PHRASE_SECONDS = Histogram(
    "anima_brain_first_phrase_seconds",
    "Time from sending the conversation to the first speakable phrase out of the chunker.",
    ["backend"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS_PER_SECOND = Histogram(
    "anima_brain_tokens_per_second",
    "Decoding speed of one reply, after its first token.",
    ["backend"],
    buckets=(5, 10, 20, 40, 60, 80, 100, 150, 200, 400, 1000),
)


def observe_first_token(backend: str, seconds: float) -> None:
    """Record the time to the first text of a reply."""
    FIRST_TOKEN_SECONDS.labels(backend=backend).observe(max(0.0, seconds))


def observe_first_phrase(backend: str, seconds: float) -> None:
    """Record the time to the first speakable phrase of a reply."""
    FIRST_PHRASE_SECONDS.labels(backend=backend).observe(max(0.0, seconds))


def observe_tokens_per_second(backend: str, tokens: int, seconds: float) -> float | None:
    """Record decoding speed: ``tokens`` produced in ``seconds`` after the first one.

    Returns the rate, or None (and records nothing) when there is too little to measure.
    """
    if tokens < 1 or seconds <= 0:
        return None
    rate = tokens / seconds
    TOKENS_PER_SECOND.labels(backend=backend).observe(rate)
    return rate


class ReplyTimer:
    """Times one reply: :meth:`token` per text delta, :meth:`phrase` per phrase, :meth:`finish`.

    The first call of :meth:`token` / :meth:`phrase` records the matching metric once. The
    backends already time tokens, so the agent only calls :meth:`phrase` on its own timer.
    ``now`` is injectable so tests and virtual-time sessions do not read the wall clock.
    """

    def __init__(self, backend: str, *, now: Callable[[], float] = time.monotonic) -> None:
        self.backend = backend
        self._now = now
        self.start = now()
        self.first_token: float | None = None  # seconds after start
        self.first_phrase: float | None = None
        self.tokens = 0
        self._last_token_at: float | None = None

    def token(self) -> None:
        """Note one text delta (about one token)."""
        at = self._now()
        self.tokens += 1
        self._last_token_at = at
        if self.first_token is None:
            self.first_token = at - self.start
            observe_first_token(self.backend, self.first_token)

    def phrase(self) -> None:
        """Note one released phrase."""
        if self.first_phrase is None:
            self.first_phrase = self._now() - self.start
            observe_first_phrase(self.backend, self.first_phrase)

    def finish(self) -> float | None:
        """Record tokens/s over the reply (after its first token); returns the rate or None."""
        if self.first_token is None or self._last_token_at is None:
            return None
        seconds = self._last_token_at - (self.start + self.first_token)
        return observe_tokens_per_second(self.backend, self.tokens - 1, seconds)
