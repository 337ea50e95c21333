"""The on-air loop: one video frame and its audio every 1/fps seconds, whatever happens.

Frame ``k`` is due at ``start + k / fps`` on the injected clock and carries audio samples
``[sample_of_frame(k), sample_of_frame(k + 1))`` of the :class:`~anima.frames.MediaClock`, so
timestamps come from integer counts and never drift. What fills a frame:

- the next frame of the utterance on air, once enough of it is synthesised (a short preroll in
  real time, so speech does not stutter);
- otherwise the idle face with silence: between lines, during pauses, and when speech is not
  ready in time (an *underrun*, counted);
- when the loop is late by more than ``max_late`` frames (a stalled CPU) the last picture is
  repeated instead of rendered, so the output catches up; audio is never delayed.

With ``realtime=False`` (offline production) nothing is paced: the loop waits for speech instead
of filling with idle, and runs as fast as render and encode allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Histogram

from anima.frames import MediaClock, MouthShape
from anima.live.actions import ActionTrack
from anima.live.overlay import Compositor
from anima.live.program import REST, Program, Silence, Utterance
from anima.pipeline import Clock, MonotonicClock, run_blocking

log = logging.getLogger(__name__)

FRAME_SECONDS = Histogram(
    "anima_live_frame_seconds",
    "Render and compose time of one on-air frame.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16),
)
UNDERRUNS = Counter(
    "anima_live_underruns_total", "Frames filled with idle because speech was late."
)
REPEATS = Counter("anima_live_repeated_frames_total", "Frames repeated because the loop was late.")

Render = Callable[[int, MouthShape, bool], np.ndarray]


class Sink(Protocol):
    """Where on-air frames go (an :class:`~anima.live.outputs.OutputHub`, or a test list)."""

    def write(self, image: np.ndarray, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        """Take video frame ``index`` and its audio (first sample ``pts``); may block."""
        ...


class Pacer:
    """Deadlines and audio spans of frames, from integers only (no accumulated error)."""

    def __init__(self, media: MediaClock, start: float = 0.0) -> None:
        self.media = media
        self.start = start

    def deadline(self, k: int) -> float:
        """When frame ``k`` is due on the clock."""
        whole, part = divmod(k, self.media.fps)
        return self.start + whole + part / self.media.fps

    def span(self, k: int) -> tuple[int, int]:
        """First audio sample of frame ``k`` and how many samples it carries."""
        first = self.media.sample_of_frame(k)
        return first, self.media.sample_of_frame(k + 1) - first


@dataclass
class BroadcastStats:
    """What went on air."""

    frames: int = 0
    samples: int = 0
    underruns: int = 0
    repeated: int = 0
    max_late: float = 0.0
    render_seconds: float = 0.0
    speech: list[tuple[str, int, int]] = field(default_factory=list)  # (text, first, end frame)


class Broadcaster:
    """Plays a :class:`Program` into a :class:`Sink` at a constant frame rate."""

    def __init__(
        self,
        program: Program,
        render: Render,
        sink: Sink,
        media: MediaClock,
        *,
        compositor: Compositor | None = None,
        clock: Clock | None = None,
        realtime: bool = True,
        preroll: float = 0.3,
        max_late: int = 3,
        lead_out: float = 0.5,
        offload: bool = True,
        queue_frames: int = 4,
    ) -> None:
        self.program = program
        self.render = render
        self.sink = sink
        self.media = media
        self.compositor = compositor
        self.clock: Clock = clock or MonotonicClock()
        self.realtime = realtime
        self.preroll = max(1, round(preroll * media.fps))
        self.max_late = max_late
        self.lead_out = round(lead_out * media.fps)
        self.offload = offload
        self.actions = ActionTrack(media.fps)
        self.stats = BroadcastStats()
        self.stop = asyncio.Event()
        self._out: asyncio.Queue[tuple[np.ndarray, int, np.ndarray, int] | None] = asyncio.Queue(
            queue_frames
        )
        self._last: np.ndarray | None = None
        self._on_air: Utterance | None = None

    @property
    def frame(self) -> int:
        """Frames sent to the sink so far."""
        return self.stats.frames

    async def run(self) -> BroadcastStats:
        """Broadcast until the program is done (plus lead-out) or :attr:`stop` is set."""
        writer = asyncio.create_task(self._write(), name="live-writer")
        pacer = Pacer(self.media, self.clock.now())
        k = 0
        tail = 0
        try:
            while not self.stop.is_set():
                late = 0.0
                if self.realtime:
                    wait = pacer.deadline(k) - self.clock.now()
                    if wait > 0:
                        await self.clock.sleep(wait)
                    late = max(0.0, -wait)
                    self.stats.max_late = max(self.stats.max_late, late)
                first, n = pacer.span(k)
                try:
                    picked = await self._pick(k, n)
                except _Stopped:
                    break
                if picked is None:  # the program is over: a moment of idle, then off air
                    if tail >= self.lead_out:
                        break
                    tail += 1
                    picked = (REST, False, np.zeros(n, np.int16), None)
                shape, speaking, pcm, subtitle = picked
                if (
                    self.realtime
                    and late > self.max_late / self.media.fps
                    and self._last is not None
                ):
                    image = self._last  # catching up: repeat the picture, keep the audio
                    self.stats.repeated += 1
                    REPEATS.inc()
                elif self.offload:
                    image = await run_blocking(self._frame, k, shape, speaking, subtitle)
                else:
                    image = self._frame(k, shape, speaking, subtitle)
                self._last = image
                await self._out.put((image, k, pcm, first))
                k += 1
            self._end_speech(k)
        finally:
            await self._out.put(None)
            await writer
        return self.stats

    # -- choosing what plays ---------------------------------------------------------------

    async def _pick(self, k: int, n: int) -> tuple[MouthShape, bool, np.ndarray, str | None] | None:
        idle = (REST, False, np.zeros(n, np.int16), None)
        while True:
            self.program.arm()
            seg = self.program.current()
            if seg is None:
                self._end_speech(k)
                if self.program.done:
                    return None
                if self.realtime:
                    return idle
                await self._wait()
                continue
            if isinstance(seg, Silence):
                self._end_speech(k)
                seg.played += 1
                return idle
            if seg.started_frame is None:
                if not seg.ready(n) or (
                    self.realtime and not seg.closed and seg.buffered_frames < self.preroll
                ):
                    if self.realtime:
                        return idle  # not on air yet: the idle face waits for it
                    await self._wait()
                    continue
                self._end_speech(k)
                seg.started_frame = k
                self._on_air = seg
                if seg.action:
                    self.actions.start(seg.action, k)
            if seg.ready(n):
                shape, speaking, pcm = seg.take(n)
                return shape, speaking, pcm, seg.subtitle()
            if self.realtime:
                self.stats.underruns += 1
                UNDERRUNS.inc()
                return idle[:3] + (seg.subtitle(),)
            await self._wait()

    async def _wait(self) -> None:
        stop = asyncio.ensure_future(self.stop.wait())
        change = asyncio.ensure_future(self.program.wait())
        try:
            await asyncio.wait({stop, change}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (stop, change):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.stop.is_set():
            raise _Stopped

    def _end_speech(self, k: int) -> None:
        if self._on_air is not None and self._on_air.started_frame is not None:
            self.stats.speech.append((self._on_air.text, self._on_air.started_frame, k))
        self._on_air = None

    # -- making and sending frames ---------------------------------------------------------

    def _frame(self, k: int, shape: MouthShape, speaking: bool, subtitle: str | None) -> np.ndarray:
        t0 = time.perf_counter()
        image = self.actions.apply(self.render(k, shape, speaking), k)
        if self.compositor is not None:
            image = self.compositor.compose(image, subtitle)
        elapsed = time.perf_counter() - t0
        self.stats.render_seconds += elapsed
        FRAME_SECONDS.observe(elapsed)
        return image

    async def _write(self) -> None:
        rate = self.media.sample_rate
        while (item := await self._out.get()) is not None:
            image, k, pcm, pts = item
            if self.offload:
                await run_blocking(self.sink.write, image, k, pcm, pts, rate)
            else:
                self.sink.write(image, k, pcm, pts, rate)
            self.stats.frames += 1
            self.stats.samples += len(pcm)


class _Stopped(Exception):
    pass
