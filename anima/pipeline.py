"""The runtime: stages joined by bounded queues, turns, interruption and the clock.

A :class:`Stage` has one verb, :meth:`Stage.process`, an async generator that takes one frame
and yields zero or more frames. A :class:`Pipeline` runs each stage in its own task, joined to
the next by a bounded :class:`asyncio.Queue`, so a slow consumer back-pressures its producers
instead of growing memory.

Interruption is one mechanism end to end: :meth:`Pipeline.interrupt` bumps the turn id,
cancels whatever every stage is doing (an LLM stream, a synthesis, a render), flushes every
queue and tells each stage to :meth:`Stage.reset`. Content frames of older turns that still
arrive afterwards are dropped at every hop.

Time is read only through an injected :class:`Clock`, so tests can run on virtual time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

from prometheus_client import Counter, Histogram

from anima.frames import ControlFrame, Error, Frame, Interrupt

log = logging.getLogger(__name__)

T = TypeVar("T")

STAGE_SECONDS = Histogram(
    "anima_stage_seconds",
    "Time a stage spends on one input frame, including emitting its outputs.",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STAGE_ERRORS = Counter("anima_stage_errors_total", "Frames a stage failed on.", ["stage"])


class Clock(Protocol):
    """The one source of time for the real-time path."""

    def now(self) -> float:
        """Seconds on a monotonic scale."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        ...


class MonotonicClock:
    """Wall time from :func:`time.monotonic`."""

    def now(self) -> float:
        """Seconds since an arbitrary start."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep on the event loop."""
        await asyncio.sleep(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to; for tests of anything paced by time."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    async def sleep(self, seconds: float) -> None:
        """Wait until :meth:`advance` moves time past now + ``seconds``."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._now + seconds, fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper whose deadline has passed."""
        self._now += seconds
        due = [w for w in self._waiters if w[0] <= self._now]
        self._waiters = [w for w in self._waiters if w[0] > self._now]
        for _, fut in sorted(due, key=lambda w: w[0]):
            if not fut.done():
                fut.set_result(None)
        await asyncio.sleep(0)


async def run_blocking(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run CPU-heavy ``fn`` in the default executor so the event loop stays responsive."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args, **kwargs))


# The voice's own CPU work (speech synthesis and recognition) runs on these threads, never in
# a queue behind pictures and video encodes in the default executor (issue 22).
_VOICE_THREADS = 4
_voice_pool: concurrent.futures.ThreadPoolExecutor | None = None
_voice_lock = threading.Lock()


# Voice jobs a visitor waits on (see run_voice_first), by their start time. Held as the pool's
# own futures, done when the thread is done whatever happens to the awaiting task or its loop.
_urgent: dict[concurrent.futures.Future[Any], float] = {}
URGENT_MAX = 2.0  # seconds a job counts as urgent at most: a hung voice must not starve video


def _voice_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _voice_pool
    if _voice_pool is None:
        with _voice_lock:
            if _voice_pool is None:
                _voice_pool = concurrent.futures.ThreadPoolExecutor(
                    _VOICE_THREADS, thread_name_prefix="anima-voice"
                )
    return _voice_pool


async def run_voice(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Like :func:`run_blocking`, on the voice's own threads (TTS and ASR: the voice first)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_voice_executor(), functools.partial(fn, *args, **kwargs))


async def run_voice_first(fn: Callable[..., T], *args: object) -> T:
    """:func:`run_voice` for the work that stands between a visitor and the first sound of
    the reply (the final decode, the first sentence of a reply).

    While such work runs (at most :data:`URGENT_MAX`), :func:`voice_urgent` is true and on-air
    loops render an idle face at a low frame rate, so the voice has the cores: measured on 2
    cores with one busy, Piper's first phrase took ~0.27 s in a session against ~0.15 s alone.
    """
    future = _voice_executor().submit(fn, *args)
    _urgent[future] = time.monotonic()
    future.add_done_callback(_settled)
    return await asyncio.wrap_future(future)


def _settled(future: concurrent.futures.Future[Any]) -> None:
    _urgent.pop(future, None)


def voice_urgent() -> bool:
    """Whether some session's visitor is waiting on voice work right now."""
    now = time.monotonic()
    return any(now - started < URGENT_MAX for started in list(_urgent.values()))


def lower_priority(niceness: int) -> None:
    """Make the calling thread yield the CPU to others (Linux: a per-thread nice value).

    Used as the initializer of pools that make pictures, so that under CPU pressure the
    kernel runs the voice's threads first. Raising niceness needs no privilege; where it is
    not supported this does nothing.
    """
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], poll: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended; their errors are logged, not raised.

    A task that swallows its cancellation (on 3.11, ``asyncio.wait_for`` does in a race with
    the awaited result) is cancelled again every ``poll`` seconds instead of being waited on
    forever: a session's close must end.
    """
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        while not task.done():
            await asyncio.wait({task}, timeout=poll)
            task.cancel()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Teardown goes on; a task that had crashed must still leave a trace.
            log.warning("task %s had failed: %s", task.get_name(), exc, exc_info=exc)


async def wait_any(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` completes; the others are cancelled and awaited.

    For "stop or change" waits, e.g. ``await wait_any(stop.wait(), changed.wait())``. The
    caller checks afterwards which one fired.
    """
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class Stage:
    """One step of the pipeline. Subclasses set ``accepts`` and override :meth:`process`.

    Frames that are not instances of ``accepts`` pass through untouched, so a stage only sees
    what it works on. ``process`` may await (use :func:`run_blocking` for CPU work); it is
    cancelled at its current ``await`` when the turn is interrupted.
    """

    accepts: tuple[type[Frame], ...] = ()

    @property
    def name(self) -> str:
        """Name used in logs and metrics."""
        return type(self).__name__

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Turn one input frame into output frames. The default forwards it."""
        yield frame

    def reset(self) -> None:
        """Forget per-turn state after an interruption. The default has none."""


class Pipeline:
    """Stages in a row, each in its own task, joined by bounded queues.

    Use as an async context manager; :meth:`push` frames in, iterate :meth:`frames` for what
    comes out of the last stage. ``maxsize`` bounds every queue.
    """

    def __init__(self, stages: Sequence[Stage], *, maxsize: int = 8, clock: Clock | None = None):
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.stages = list(stages)
        self.clock: Clock = clock or MonotonicClock()
        self._queues: list[asyncio.Queue[Frame]] = [
            asyncio.Queue(maxsize) for _ in range(len(self.stages) + 1)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._turn = 0

    # -- turns -----------------------------------------------------------------------------

    @property
    def turn(self) -> int:
        """The current turn id; content frames of lower ids are stale."""
        return self._turn

    def next_turn(self) -> int:
        """Start a new turn without flushing (nothing of the old one is playing)."""
        self._turn += 1
        return self._turn

    def is_stale(self, frame: Frame) -> bool:
        """True for content frames of a turn that has been superseded."""
        return frame.turn < self._turn and not isinstance(frame, ControlFrame)

    async def interrupt(self, reason: str = "interrupted") -> int:
        """Cut the current turn off everywhere; returns the new turn id.

        Cancels every stage's in-flight work, flushes every queue, resets every stage, and
        emits an :class:`Interrupt` frame at the output so the sink can flush its buffers.
        """
        self._turn += 1
        await self._stop_workers()
        for q in self._queues:
            while not q.empty():
                q.get_nowait()
        for stage in self.stages:
            stage.reset()
        self._start_workers()
        await self._queues[-1].put(Interrupt(turn=self._turn, reason=reason))
        log.info("interrupt turn=%d reason=%s", self._turn, reason)
        return self._turn

    # -- I/O -------------------------------------------------------------------------------

    async def push(self, frame: Frame) -> None:
        """Feed a frame to the first stage; waits while its queue is full."""
        if not self.is_stale(frame):
            await self._queues[0].put(frame)

    async def frames(self) -> AsyncIterator[Frame]:
        """Frames leaving the last stage, stale ones dropped. Runs until cancelled."""
        out = self._queues[-1]
        while True:
            frame = await out.get()
            if not self.is_stale(frame):
                yield frame

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Pipeline:
        self._start_workers()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stop_workers()

    def _start_workers(self) -> None:
        self._tasks = [
            asyncio.create_task(self._work(i), name=f"stage:{s.name}")
            for i, s in enumerate(self.stages)
        ]

    async def _stop_workers(self) -> None:
        await cancel_and_wait(self._tasks)
        self._tasks = []

    async def _work(self, index: int) -> None:
        stage = self.stages[index]
        inq, outq = self._queues[index], self._queues[index + 1]
        timer = STAGE_SECONDS.labels(stage.name)
        while True:
            frame = await inq.get()
            if self.is_stale(frame):
                continue
            if not isinstance(frame, stage.accepts):
                await outq.put(frame)
                continue
            started = self.clock.now()
            try:
                # Closed here, not by the garbage collector, when the session is torn down
                # mid-frame: its finally blocks run now, and no stray task is left behind.
                async with contextlib.aclosing(stage.process(frame)) as outs:
                    async for out in outs:
                        if not self.is_stale(out):
                            await outq.put(out)
            except Exception as exc:  # a bad frame must not stop the session
                STAGE_ERRORS.labels(stage.name).inc()
                log.warning("stage=%s failed: %s", stage.name, exc, exc_info=log.isEnabledFor(10))
                await outq.put(Error(turn=frame.turn, stage=stage.name, message=str(exc)))
            timer.observe(self.clock.now() - started)
