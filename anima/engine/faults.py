"""How faults become apologies: a backend failing mid-turn is reported once, then the
turn is cut and the persona apologises, while the conversation goes on.

A part of :class:`anima.engine.session.Session`: a mixin whose state lives in
``Session.__init__``, kept in its own file so each idea of the conversation has one room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from anima.air.program import Utterance
from anima.engine.output import Job
from anima.events import ErrorEvent

log = logging.getLogger("anima.engine.session")  # one logger for the whole conversation


class Faults:
    """The session's fault handling (render timeouts, failing backends)."""

    def _fault_threadsafe(self, source: str, message: str) -> None:
        if self._closed:
            return
        if threading.get_ident() == self._loop_thread:
            self._fault(source, message)
        else:
            self._loop.call_soon_threadsafe(self._fault, source, message)

    def _fault(self, source: str, message: str) -> None:
        """A backend failed mid-turn: report it once, cut the turn, apologise (loop thread)."""
        if self._closed or not self._started:
            return
        on_air = self._program.playing()
        job = on_air.source if isinstance(on_air, Utterance) else None
        turn = job.turn if isinstance(job, Job) else 0
        if turn == self._faulted_turn:
            return  # one report per turn, not one per frame
        self._faulted_turn = turn
        log.warning("%s failed: %s", source, message)
        self._event(ErrorEvent(source, message, True))
        if isinstance(job, Job) and job.kind != "apology":
            task = self._loop.create_task(self._apologise(), name=f"session:{self.id}:fault")
            self._feeders.add(task)
            task.add_done_callback(self._feeders.discard)

    async def _apologise(self) -> None:
        """Cut what is being said and say the persona's apology instead."""
        if self._closed:
            return
        await self.interrupt("error")
        assert self._jobs is not None
        with contextlib.suppress(asyncio.QueueFull):
            self._jobs.put_nowait(
                Job("apology", self._agent.persona.apology, started=self.clock.now())
            )
