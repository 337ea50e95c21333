"""Live comments (danmaku): a bounded queue that picks a few worth answering, at a set pace.

A flood never grows memory or stalls the show: the queue holds at most ``maxsize`` comments
(the oldest go first), each user waits ``user_cooldown`` seconds between comments that count,
and answers are paced by a token bucket (``answers_per_minute``, bursts of one). Moderation is
a callable (the brain's safety filter when wired) that returns a reason to refuse, or None.
Times come from the caller (the show's clock), so tests run on virtual time.
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

Moderate = Callable[[str], str | None]


@dataclass(frozen=True, slots=True)
class Comment:
    """One viewer comment."""

    user: str
    text: str
    at: float  # when it arrived, on the show's clock


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a comment was queued; ``reason`` says why not."""

    accepted: bool
    reason: str = ""


class CommentQueue:
    """Bounded, rate-limited, moderated comments waiting for an answer."""

    def __init__(
        self,
        *,
        maxsize: int = 100,
        answers_per_minute: float = 4.0,
        user_cooldown: float = 30.0,
        max_chars: int = 300,
        max_age: float = 120.0,
        moderate: Moderate | None = None,
    ) -> None:
        if maxsize < 1 or answers_per_minute <= 0:
            raise ValueError("the comment queue needs maxsize >= 1 and answers_per_minute > 0")
        self._queue: deque[Comment] = deque(maxlen=maxsize)
        self._interval = 60.0 / answers_per_minute
        self._next_answer = float("-inf")
        self._user_cooldown = user_cooldown
        self._last_by_user: dict[str, float] = {}
        self._answered_users: deque[str] = deque(maxlen=3)
        self.max_chars = max_chars
        self.max_age = max_age
        self.moderate = moderate
        self.counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._queue)

    def submit(self, user: str, text: str, now: float) -> Verdict:
        """Offer a comment; refused ones say why. Never raises on bad input."""
        self.counts["received"] += 1
        text = " ".join(str(text).split())
        user = " ".join(str(user).split())[:64] or "viewer"
        reason = None
        if not text:
            reason = "empty comment"
        elif len(text) > self.max_chars:
            reason = f"comment longer than {self.max_chars} characters"
        elif now - self._last_by_user.get(user, float("-inf")) < self._user_cooldown:
            reason = "too many comments from this user"
        elif any(c.user == user and c.text.casefold() == text.casefold() for c in self._queue):
            reason = "duplicate comment"
        elif self.moderate is not None:
            try:
                reason = self.moderate(text)
            except Exception as exc:  # a broken filter refuses rather than lets through
                log.warning("comment moderation failed: %s", exc)
                reason = "moderation unavailable"
        if reason:
            self.counts["rejected"] += 1
            return Verdict(False, reason)
        if len(self._queue) == self._queue.maxlen:
            self.counts["dropped"] += 1  # the oldest falls out of the bounded deque
        self._queue.append(Comment(user, text, now))
        self._last_by_user[user] = now
        if len(self._last_by_user) > 10_000:  # bounded memory under a flood of new names
            cutoff = now - self._user_cooldown
            self._last_by_user = {u: t for u, t in self._last_by_user.items() if t >= cutoff}
        self.counts["accepted"] += 1
        return Verdict(True)

    def next_allowed(self) -> float:
        """When the rate limit next allows an answer (clock time)."""
        return self._next_answer

    def pick(self, now: float) -> Comment | None:
        """The comment to answer now, or None (nothing worth it, or the rate limit holds)."""
        while self._queue and now - self._queue[0].at > self.max_age:
            self._queue.popleft()
            self.counts["expired"] += 1
        if not self._queue or now < self._next_answer:
            return None
        best = max(self._queue, key=lambda c: self._score(c, now))
        self._queue.remove(best)
        self._next_answer = now + self._interval
        self._answered_users.append(best.user)
        self.counts["answered"] += 1
        return best

    def _score(self, c: Comment, now: float) -> float:
        # Questions first, then fresher comments; spread answers over different viewers.
        score = 2.0 if "?" in c.text else 0.0
        score -= (now - c.at) / 60.0
        if c.user in self._answered_users:
            score -= 3.0
        return score
