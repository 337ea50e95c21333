"""A gateway's view of the workers, rebuilt from their heartbeats (soft state, no disk).

:meth:`Directory.candidates` orders the live workers by free slots (most first), which is how
offers spread by capacity; :meth:`Directory.stale` hands back the workers whose heartbeats
stopped, once, so their sessions can be marked lost. Time comes from an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from anima.cluster.wire import Heartbeat


@dataclass
class Seen:
    """The last heartbeat of one worker and when it came."""

    beat: Heartbeat
    at: float


class Directory:
    """Workers by id, from heartbeats."""

    def __init__(self, lost_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.lost_after = lost_after
        self.clock = clock
        self.workers: dict[str, Seen] = {}
        self.paused_since: float | None = None  # our own NATS connection is down
        self.since = clock()  # (re)connected at: a worker not heard yet is not lost yet

    def saw(self, beat: Heartbeat) -> None:
        """A heartbeat arrived (a worker's last one, ``gone``, removes it)."""
        if beat.gone:
            self.workers.pop(beat.worker, None)
        else:
            self.workers[beat.worker] = Seen(beat, self.clock())

    def live(self) -> list[Heartbeat]:
        """Workers heard from within ``lost_after``."""
        now = self.clock()
        return [s.beat for s in self.workers.values() if now - s.at <= self.lost_after]

    def candidates(self, exclude: set[str]) -> list[str]:
        """Live, not draining workers with a free slot, most free slots first."""
        beats = [
            b for b in self.live() if b.free > 0 and not b.draining and b.worker not in exclude
        ]
        beats.sort(key=lambda b: (-b.free, b.worker))
        return [b.worker for b in beats]

    def taken(self, worker: str) -> None:
        """We just sent ``worker`` a session: count its slot until its next heartbeat says."""
        seen = self.workers.get(worker)
        if seen is not None and seen.beat.free > 0:
            seen.beat.free -= 1

    def pause(self) -> None:
        """Our NATS connection dropped: silence now says nothing about the workers."""
        if self.paused_since is None:
            self.paused_since = self.clock()

    def resume(self) -> None:
        """Reconnected: give every worker a fresh ``lost_after`` to be heard again."""
        if self.paused_since is not None:
            now = self.clock()
            for seen in self.workers.values():
                seen.at = max(seen.at, now)
            self.paused_since = None
        self.since = self.clock()

    def stale(self) -> list[Heartbeat]:
        """Workers silent longer than ``lost_after`` (each returned once, then forgotten)."""
        if self.paused_since is not None:
            return []
        now = self.clock()
        gone = [w for w, s in self.workers.items() if now - s.at > self.lost_after]
        return [self.workers.pop(w).beat for w in gone]

    def alive(self, worker: str) -> bool:
        """True while ``worker`` is heard from (or our own connection is down)."""
        seen = self.workers.get(worker)
        if seen is None:
            return self.clock() - self.since <= self.lost_after
        return self.paused_since is not None or self.clock() - seen.at <= self.lost_after
