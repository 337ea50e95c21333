"""A live show, wired: the controller's items -> speech + lip-sync -> the program -> on air.

Speech is synthesised by the session's own stages (:class:`~anima.tts.stage.SpeechStage` and
:class:`~anima.lipsync.stage.LipSyncStage` in a :class:`~anima.pipeline.Pipeline`), one
utterance at a time and a little ahead of air. Rendering is not in that pipeline: the
:class:`~anima.air.loop.Broadcaster` renders every on-air frame itself at its output
index, so speech and idle share one face timeline (blinks and head sway never jump) and an
underrun simply renders the idle face.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from anima.air.fill import fill_utterance
from anima.air.loop import Broadcaster, BroadcastStats, Render, Sink
from anima.air.program import Program, Segment, Silence, Utterance
from anima.frames import MediaClock, TextChunk, TurnEnd
from anima.lipsync.stage import LipSyncStage
from anima.live.comments import Comment, CommentQueue
from anima.live.controller import Answer, Next, ShowController
from anima.live.overlay import Compositor
from anima.live.script import Line, Pause
from anima.pipeline import Clock, MonotonicClock, Pipeline
from anima.tts import Voice
from anima.tts.stage import Captions, SpeechStage

log = logging.getLogger(__name__)

# responder(comment) yields the answer as phrases (objects with .text and .emotion, e.g. the
# brain's Phrase); anything else it yields (events) is ignored.
Responder = Callable[[Comment], AsyncIterator[Any]]


@dataclass
class ShowReport:
    """What a show did."""

    stats: BroadcastStats
    seconds: float  # on-air media time
    elapsed: float  # wall time
    sample_rate: int
    fps: int
    status: dict[str, object] = field(default_factory=dict)

    @property
    def realtime_factor(self) -> float:
        """Media seconds produced per wall second."""
        return self.seconds / self.elapsed if self.elapsed > 0 else 0.0


class LiveShow:
    """One broadcast: the operator's controller, speech production and the on-air loop."""

    def __init__(
        self,
        voice: Voice,
        render: Render,
        sink: Sink,
        *,
        fps: int = 25,
        clock: Clock | None = None,
        realtime: bool = True,
        compositor: Compositor | None = None,
        comments: CommentQueue | None = None,
        responder: Responder | None = None,
        lead_in: float = 0.4,
        lead_out: float = 0.5,
        preroll: float = 0.3,
        max_chars: int = 2000,
        offload: bool = True,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self.media = MediaClock(voice.sample_rate, fps)
        self.lipsync = LipSyncStage(self.media)
        self._captions = Captions()
        self.pipe = Pipeline([SpeechStage(voice), self._captions, self.lipsync], maxsize=16)
        self.program = Program(ahead=2)
        self.controller = ShowController(
            self.clock, comments, answering=responder is not None, max_chars=max_chars
        )
        self.controller.cutter = self._cut
        self.responder = responder
        self.broadcaster = Broadcaster(
            self.program,
            render,
            sink,
            self.media,
            compositor=compositor,
            clock=self.clock,
            realtime=realtime,
            preroll=preroll,
            lead_out=lead_out,
            offload=offload,
        )
        self.lead_in = lead_in
        self._producing: Utterance | None = None

    async def run(self, max_seconds: float | None = None) -> ShowReport:
        """Broadcast until the controller ends the show (or ``max_seconds`` on its clock)."""
        started = time.perf_counter()
        async with self.pipe:
            producer = asyncio.create_task(self._produce(), name="live-producer")
            timer = (
                asyncio.create_task(self._time_limit(max_seconds), name="live-timer")
                if max_seconds
                else None
            )
            try:
                stats = await self.broadcaster.run()
            finally:
                for task in (producer, timer):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        return ShowReport(
            stats,
            stats.frames / self.media.fps,
            time.perf_counter() - started,
            self.media.sample_rate,
            self.media.fps,
            self.controller.status(),
        )

    async def _time_limit(self, seconds: float) -> None:
        await self.clock.sleep(seconds)
        self.broadcaster.stop.set()

    # -- production ------------------------------------------------------------------------

    async def _produce(self) -> None:
        try:
            if self.lead_in > 0:
                self.program.add(Silence(round(self.lead_in * self.media.fps)))
            while True:
                await self.program.room()
                item = await self.controller.next_item()
                if item is None:
                    break
                if isinstance(item, Pause):
                    self.program.add(Silence(max(1, round(item.seconds * self.media.fps)), item))
                    continue
                utt = self._utterance(item)
                self.program.add(utt)
                await self._synthesise(utt, item)
        finally:
            self.program.finish()

    def _utterance(self, item: Next) -> Utterance:
        if isinstance(item, Answer):
            return Utterance(f"{item.comment.user}: {item.comment.text}", source=item)
        assert isinstance(item, Line)
        return Utterance(item.text, item.emotion, item.action, source=item)

    async def _synthesise(self, utt: Utterance, item: Next) -> None:
        self.lipsync.samples = 0  # utterance time starts at 0 (see anima.air.program)
        turn = self.pipe.next_turn()
        self._producing = utt
        feeder = asyncio.create_task(self._feed(turn, item), name="live-feeder")
        try:
            errors = await fill_utterance(
                self.pipe.frames(),
                utt,
                turn,
                feeder=feeder,
                program=self.program,
                caption=self._captions.take,
            )
        finally:
            self._producing = None
        for error in errors:
            log.warning("speech for %r failed: %s", utt.text[:40], error.message)

    async def _feed(self, turn: int, item: Next) -> None:
        try:
            if isinstance(item, Line):
                await self.pipe.push(TextChunk(turn=turn, text=item.text, emotion=item.emotion))
            elif isinstance(item, Answer) and self.responder is not None:
                async for phrase in self.responder(item.comment):
                    text = getattr(phrase, "text", None)
                    if isinstance(text, str) and text.strip() and hasattr(phrase, "emotion"):
                        await self.pipe.push(
                            TextChunk(turn=turn, text=text, emotion=phrase.emotion or "neutral")
                        )
        except Exception as exc:  # a failing brain ends the answer, never the show
            log.warning("answering a comment failed: %s", exc)
        finally:
            await self.pipe.push(TurnEnd(turn=turn))

    async def _cut(self, playing: bool, pending: bool) -> list[Next]:
        taken: list[Segment] = self.program.take_pending() if pending else []
        on_air = self.program.cut_playing() if playing else None
        working = self._producing
        if working is not None and (working is on_air or any(s is working for s in taken)):
            await self.pipe.interrupt("operator")
        return [s.source for s in taken if s.source is not None]  # type: ignore[misc]
