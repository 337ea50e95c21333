"""The live queue an operator steers: ``say``, ``queue``, ``interrupt``, ``pause``, ``resume``.

:class:`ShowController` is the API object of a running show: the CLI console drives it today
and the HTTP/WebSocket server attaches to the same methods. It holds what is still to be said
(script lines, operator lines, pauses) and the live comments, and hands the show its next item
at each boundary between utterances:

1. operator ``say`` lines (they also cut what is on air);
2. a comment answer, when comments are answered and the rate limit allows (so answers fall
   between script lines);
3. the queue (the script, then ``queue``-d lines), in order.

Cutting speech that is already synthesised or on air is the show's business; the controller
calls the ``cutter`` the show registers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from anima.live.comments import Comment, CommentQueue, Verdict
from anima.live.script import Item, Line, Pause, ScriptError, parse_line
from anima.pipeline import Clock, MonotonicClock, wait_any


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer a viewer's comment (the brain writes the words)."""

    comment: Comment


Next = Item | Answer
# cutter(playing, pending): stop the utterance on air (``playing``) and/or take back the
# segments queued for air but not started (``pending``); returns the items those came from.
Cutter = Callable[[bool, bool], Awaitable[list[Next]]]


class ShowError(ValueError):
    """An operator command that cannot be done (empty line, queue full)."""


class ShowController:
    """What the show says next, steered by the operator and the audience."""

    def __init__(
        self,
        clock: Clock | None = None,
        comments: CommentQueue | None = None,
        *,
        answering: bool = False,
        max_chars: int = 2000,
        max_queue: int = 10_000,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.comments = comments
        self.answering = answering and comments is not None
        self.max_chars = max_chars
        self.max_queue = max_queue
        self._urgent: deque[Next] = deque()
        self._queue: deque[Next] = deque()
        self._changed = asyncio.Event()
        self.paused = False
        self.finishing = False  # end once everything queued is said
        self.stopped = False
        self.cutter: Cutter | None = None
        self.said = 0

    # -- operator API ----------------------------------------------------------------------

    def load(self, items: Iterable[Next]) -> None:
        """Queue a parsed script."""
        self._add(list(items))

    async def queue(self, text: str, emotion: str | None = None) -> int:
        """Add a line (marks allowed) at the end of the queue; returns the queue length."""
        self._add(self._parse(text, emotion))
        return len(self._queue)

    async def say(self, text: str, emotion: str | None = None) -> None:
        """Say this now: cut what is on air, speak the line, then carry on with the queue."""
        items = self._parse(text, emotion)
        taken = await self._cut(playing=True, pending=True)
        self._queue.extendleft(reversed(taken))
        self._urgent.extend(items)
        self._signal()

    async def interrupt(self, clear: bool = False) -> None:
        """Stop the utterance on air; with ``clear`` also drop everything queued."""
        if clear:
            self._urgent.clear()
            self._queue.clear()
        await self._cut(playing=True, pending=clear)
        self._signal()

    async def pause(self) -> None:
        """Finish the utterance on air, then idle until :meth:`resume` (nothing is lost)."""
        self.paused = True
        taken = await self._cut(playing=False, pending=True)
        self._queue.extendleft(reversed(taken))
        self._signal()

    def resume(self) -> None:
        """Carry on after :meth:`pause`."""
        self.paused = False
        self._signal()

    def comment(self, user: str, text: str) -> Verdict:
        """A viewer comment arrived; it may be answered between lines."""
        if self.comments is None:
            return Verdict(False, "comments are off for this show")
        verdict = self.comments.submit(user, text, self.clock.now())
        self._signal()
        return verdict

    def finish(self) -> None:
        """End the show once everything queued has been said."""
        self.finishing = True
        self._signal()

    async def stop(self) -> None:
        """End the show now."""
        self.stopped = True
        self._urgent.clear()
        self._queue.clear()
        await self._cut(playing=True, pending=True)
        self._signal()

    def status(self) -> dict[str, object]:
        """Queue lengths and state, for the console and the API."""
        return {
            "queued": len(self._queue) + len(self._urgent),
            "paused": self.paused,
            "finishing": self.finishing,
            "stopped": self.stopped,
            "said": self.said,
            "comments_waiting": len(self.comments) if self.comments is not None else 0,
            "comments": dict(self.comments.counts) if self.comments is not None else {},
        }

    # -- the show's side -------------------------------------------------------------------

    async def next_item(self) -> Next | None:
        """The next thing to say, waiting while paused or empty; None when the show ends."""
        while True:
            self._changed.clear()
            if self.stopped:
                return None
            wake: float | None = None
            if not self.paused:
                if self._urgent:
                    return self._pop(self._urgent)
                if self.answering and self.comments is not None and len(self.comments):
                    now = self.clock.now()
                    if (c := self.comments.pick(now)) is not None:
                        return Answer(c)
                    if len(self.comments):
                        wake = max(self.comments.next_allowed(), now) - now
                if self._queue:
                    return self._pop(self._queue)
                if self.finishing:
                    return None
            await self._wait(wake)

    # -- internals -------------------------------------------------------------------------

    def _pop(self, q: deque[Next]) -> Next:
        self.said += 1
        return q.popleft()

    def _parse(self, text: str, emotion: str | None) -> list[Item]:
        try:
            items = parse_line(text, 0, self.max_chars)
        except ScriptError as exc:
            raise ShowError(str(exc).removeprefix("line 0: ")) from None
        if not any(isinstance(i, Line) for i in items):
            raise ShowError("nothing to say: the line is empty")
        if emotion is not None:
            items = [
                Line(i.text, emotion, i.action, i.lineno) if isinstance(i, Line) else i
                for i in items
            ]
        return items

    def _add(self, items: list[Next]) -> None:
        if len(self._queue) + len(items) > self.max_queue:
            raise ShowError(f"the queue is full ({self.max_queue} items)")
        self._queue.extend(items)
        self._signal()

    async def _cut(self, *, playing: bool, pending: bool) -> list[Next]:
        if self.cutter is None:
            return []
        return await self.cutter(playing, pending)

    def _signal(self) -> None:
        self._changed.set()

    async def _wait(self, wake_after: float | None) -> None:
        timer = [] if wake_after is None else [self.clock.sleep(wake_after)]
        await wait_any(self._changed.wait(), *timer)


__all__ = ["Answer", "Cutter", "Next", "Pause", "ShowController", "ShowError"]
