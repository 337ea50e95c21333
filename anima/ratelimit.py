"""Per-client and per-session limits for the servers: a token bucket and counted slots.

A public server must answer a flooding or greedy client with a clear refusal instead of
slowing down everyone else. These are plain counters with an injectable clock; the servers
decide what to refuse and how to say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """``rate`` events a second on average, up to ``burst`` at once."""

    def __init__(
        self, rate: float, burst: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs rate > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self._now = now
        self._tokens = float(burst)
        self._at = now()

    def take(self, n: float = 1.0) -> bool:
        """Spend ``n`` tokens if there are enough (True); otherwise spend nothing (False)."""
        t = self._now()
        self._tokens = min(self.burst, self._tokens + (t - self._at) * self.rate)
        self._at = t
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


class ClientSlots:
    """At most ``limit`` concurrent holders per key (a token, a client address)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a slot limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, key: str) -> bool:
        """Take a slot for ``key`` (True), or False when it already holds ``limit``."""
        n = self._held.get(key, 0)
        if n >= self.limit:
            return False
        self._held[key] = n + 1
        return True

    def release(self, key: str) -> None:
        """Give one slot of ``key`` back (keys with none left are forgotten: bounded memory)."""
        n = self._held.get(key, 0) - 1
        if n > 0:
            self._held[key] = n
        else:
            self._held.pop(key, None)

    def held(self, key: str) -> int:
        """Slots ``key`` holds now."""
        return self._held.get(key, 0)

    def __len__(self) -> int:
        return len(self._held)
