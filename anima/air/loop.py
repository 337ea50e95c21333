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

With ``audio_first=True`` (conversations) the voice never waits for the face: frame ``k``'s
audio goes to the sink the moment it is picked, and its picture follows when rendered (the
sink then sees the two halves separately: ``(None, k, pcm, first)`` and ``(image, k, None,
first)`` in :attr:`~Broadcaster.outgoing`). One render runs at a time; while it runs, the
loop goes on with audio alone. Under CPU pressure video is shed, in this order and only for as
long as needed: a lower frame rate (every 2nd, 3rd or 4th frame rendered, chosen from the
measured render time against the frame time) and then skipped frames (a render still busy, or
the loop late). While nobody speaks and a visitor waits on the voice (a final decode, the first
sentence of a reply: :func:`anima.pipeline.voice_urgent`) the idle face drops to a few frames a
second, so the voice has the cores. Every picture not rendered is counted in
``anima_air_video_skipped_total``.

With ``realtime=False`` (offline production) nothing is paced: the loop waits for speech instead
of filling with idle, and runs as fast as render and encode allow.

Subclasses (the engine's :class:`~anima.engine.output.SessionAir` and
:class:`~anima.engine.drive.DriveAir`) change what plays and where frames go through the public
hooks of :class:`Broadcaster`: :meth:`~Broadcaster.pick`, :meth:`~Broadcaster.wait_for_input`,
:meth:`~Broadcaster.end_speech`, :meth:`~Broadcaster.render_frame` and
:meth:`~Broadcaster.write_frames`, plus :attr:`~Broadcaster.outgoing`,
:attr:`~Broadcaster.on_air` and :class:`Stopped`. Nothing else of the loop is theirs to touch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Histogram

from anima.air.actions import ActionTrack
from anima.air.program import REST, Program, Silence, Utterance
from anima.frames import MediaClock, MouthShape
from anima.pipeline import Clock, MonotonicClock, run_blocking, voice_urgent, wait_any

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
VIDEO_SKIPPED = Counter(
    "anima_air_video_skipped_total",
    "Pictures not rendered so that audio stays on time (audio-first loops), by reason: "
    "rate (frame rate lowered), busy (the last render still running), late (the loop behind), "
    "voice (an idle face while a visitor waits on recognition or the reply's first sound).",
    ["reason"],
)
MAX_STRIDE = 4  # the lowest frame rate video sheds to: every 4th frame (6 fps at 25)
VOICE_STRIDE = 8  # an idle face while the voice works urgently: every 8th frame (3 fps at 25)

Render = Callable[[int, MouthShape, bool], np.ndarray]
Picked = tuple[MouthShape, bool, np.ndarray, str | None]  # mouth, speaking, audio span, subtitle


class Stopped(Exception):
    """Raised by :meth:`Broadcaster.wait_for_input` when the loop was stopped while waiting."""


class Sink(Protocol):
    """Where on-air frames go (an :class:`~anima.live.outputs.OutputHub`, or a test list)."""

    def write(self, image: np.ndarray, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        """Take video frame ``index`` and its audio (first sample ``pts``); may block.

        An audio-first loop instead calls ``write_audio(index, pcm, pts, rate)`` and then,
        when the picture is rendered (or never, when it was shed), ``write_video(image, index)``.
        """
        ...


class Compositor(Protocol):
    """What draws the output canvas around a rendered frame (the live show's overlays,
    :class:`anima.live.overlay.Compositor`); the loop needs only this one method."""

    def compose(self, avatar: np.ndarray, subtitle: str | None = None) -> np.ndarray:
        """The output frame for one rendered avatar frame, with ``subtitle`` drawn if given."""
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
    video_skipped: int = 0  # pictures not rendered (audio-first loops shed video)
    speech: list[tuple[str, int, int]] = field(default_factory=list)  # (text, first, end frame)


class Broadcaster:
    """Plays a :class:`Program` into a :class:`Sink` at a constant frame rate.

    Extension API for subclasses (each hook is called by :meth:`run` and may be overridden;
    call ``super()`` to keep the default behaviour): :meth:`pick` chooses what frame ``k``
    plays, :meth:`wait_for_input` waits when the offline loop has nothing to play,
    :meth:`end_speech` notes that the utterance on air went off air, :meth:`render_frame`
    makes the picture and :meth:`write_frames` drains :attr:`outgoing` into the sink.
    """

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
        audio_first: bool = False,
        voice_busy: Callable[[], bool] = voice_urgent,
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
        # Frames on their way to the sink: (image, index, pcm, first sample), then None at the
        # end. Subclasses may queue items of their own and handle them in write_frames.
        self.outgoing: asyncio.Queue[tuple[np.ndarray, int, np.ndarray, int] | None] = (
            asyncio.Queue(queue_frames)
        )
        self._last: np.ndarray | None = None
        self._on_air: Utterance | None = None
        self.audio_first = audio_first and realtime
        self.stride = 1  # render every ``stride``-th frame (audio-first: a lower frame rate)
        self._render_cost = 0.0  # smoothed render time of one picture, on the clock
        self._rendering: asyncio.Task[None] | None = None
        self.voice_busy = voice_busy
        self._rendered = -VOICE_STRIDE  # the last frame whose picture was rendered

    @property
    def frame(self) -> int:
        """Frames sent to the sink so far."""
        return self.stats.frames

    @property
    def on_air(self) -> Utterance | None:
        """The utterance playing now (set when it goes on air, cleared by :meth:`end_speech`)."""
        return self._on_air

    async def run(self) -> BroadcastStats:
        """Broadcast until the program is done (plus lead-out) or :attr:`stop` is set."""
        writer = asyncio.create_task(self.write_frames(), name="live-writer")
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
                    picked = await self.pick(k, n)
                except Stopped:
                    break
                if picked is None:  # the program is over: a moment of idle, then off air
                    if tail >= self.lead_out:
                        break
                    tail += 1
                    picked = (REST, False, np.zeros(n, np.int16), None)
                shape, speaking, pcm, subtitle = picked
                if self.audio_first:
                    await self._audio_then_video(k, first, picked, late)
                    k += 1
                    continue
                if (
                    self.realtime
                    and late > self.max_late / self.media.fps
                    and self._last is not None
                ):
                    image = self._last  # catching up: repeat the picture, keep the audio
                    self.stats.repeated += 1
                    REPEATS.inc()
                elif self.offload:
                    image = await run_blocking(self.render_frame, k, shape, speaking, subtitle)
                else:
                    image = self.render_frame(k, shape, speaking, subtitle)
                self._last = image
                await self.outgoing.put((image, k, pcm, first))
                k += 1
            self.end_speech(k)
        finally:
            if self._rendering is not None and not self._rendering.done():
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await self._rendering  # the last picture follows its audio
            await self.outgoing.put(None)
            await writer
        return self.stats

    # -- audio first -----------------------------------------------------------------------

    async def _audio_then_video(self, k: int, first: int, picked: Picked, late: float) -> None:
        """Frame ``k``'s audio leaves now; its picture is rendered after it, or shed."""
        shape, speaking, pcm, subtitle = picked
        await self.outgoing.put((None, k, pcm, first))  # type: ignore[arg-type]
        reason = None
        if self._rendering is not None and not self._rendering.done():
            reason = "busy"
        elif late > self.max_late / self.media.fps and self._last is not None:
            reason = "late"
        elif k % self.stride and self._last is not None and not self._fresh(k):
            reason = "rate"
        elif (
            self._on_air is None
            and self._last is not None
            and k - self._rendered < VOICE_STRIDE
            and self.voice_busy()
        ):
            # Nobody is talking and the visitor waits on the voice: the idle face can wait.
            reason = "voice"
        if reason is not None:
            self.stats.video_skipped += 1
            VIDEO_SKIPPED.labels(reason).inc()
            return
        self._rendered = k
        self._rendering = asyncio.create_task(
            self._render_after(k, first, shape, speaking, subtitle), name="air-render"
        )

    def _fresh(self, k: int) -> bool:
        """Frame ``k`` starts an utterance: its first picture follows its audio at once."""
        return self._on_air is not None and self._on_air.started_frame == k

    async def _render_after(
        self, k: int, first: int, shape: MouthShape, speaking: bool, subtitle: str | None
    ) -> None:
        t0 = self.clock.now()
        if self.offload:
            image = await run_blocking(self.render_frame, k, shape, speaking, subtitle)
        else:
            image = self.render_frame(k, shape, speaking, subtitle)
        self._shed(self.clock.now() - t0)
        self._last = image
        await self.outgoing.put((image, k, None, first))  # type: ignore[arg-type]

    def _shed(self, seconds: float) -> None:
        """Choose the frame rate from the smoothed render time against the frame time.

        Rendering may use about 70 % of each rendered frame's time, so the voice's own work
        (TTS, ASR, encoding) keeps room on the cores; the rate comes back when renders are fast.
        """
        self._render_cost += (seconds - self._render_cost) * 0.3
        frame = 1.0 / self.media.fps
        self.stride = max(1, min(MAX_STRIDE, math.ceil(self._render_cost / (0.7 * frame))))

    # -- choosing what plays ---------------------------------------------------------------

    async def pick(self, k: int, n: int) -> Picked | None:
        """What frame ``k`` plays: mouth, speaking, exactly ``n`` audio samples, subtitle.

        The hook that chooses content. Returns None when the program is over (the loop then
        plays the lead-out and goes off air). Live, it never waits: idle with silence fills
        in. Offline it may wait via :meth:`wait_for_input`, whose :class:`Stopped` ends the
        loop. Overrides must return exactly ``n`` samples and call :meth:`end_speech` when
        what was on air stops.
        """
        idle = (REST, False, np.zeros(n, np.int16), None)
        while True:
            self.program.arm()
            seg = self.program.current()
            if seg is None:
                self.end_speech(k)
                if self.program.done:
                    return None
                if self.realtime:
                    return idle
                await self.wait_for_input()
                continue
            if isinstance(seg, Silence):
                self.end_speech(k)
                seg.played += 1
                return idle
            if seg.started_frame is None:
                if not seg.ready(n) or (
                    self.realtime and not seg.closed and seg.buffered_frames < self.preroll
                ):
                    if self.realtime:
                        return idle  # not on air yet: the idle face waits for it
                    await self.wait_for_input()
                    continue
                self.end_speech(k)
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
            await self.wait_for_input()

    async def wait_for_input(self) -> None:
        """Wait until the program changes (since its last ``arm()``) or :attr:`stop` is set.

        The hook the offline loop's :meth:`pick` calls when nothing can play yet. Raises
        :class:`Stopped` when the loop was stopped; overrides must keep that contract.
        """
        await wait_any(self.stop.wait(), self.program.wait())
        if self.stop.is_set():
            raise Stopped

    def end_speech(self, k: int) -> None:
        """The utterance on air (if any) went off air before frame ``k``: record it, clear it.

        Called by :meth:`pick` and at the end of :meth:`run`, also when nothing is on air.
        Overrides that watch utterances end must call ``super()`` and read :attr:`on_air`
        before doing so.
        """
        if self._on_air is not None and self._on_air.started_frame is not None:
            self.stats.speech.append((self._on_air.text, self._on_air.started_frame, k))
        self._on_air = None

    # -- making and sending frames ---------------------------------------------------------

    def render_frame(
        self, k: int, shape: MouthShape, speaking: bool, subtitle: str | None
    ) -> np.ndarray:
        """The picture of frame ``k`` (rendered face, actions, overlays); may run in an executor.

        The hook that makes the payload handed to the sink. Runs in a worker thread when
        ``offload`` is set, so overrides must not touch the event loop.
        """
        t0 = time.perf_counter()
        image = self.actions.apply(self.render(k, shape, speaking), k)
        if self.compositor is not None:
            image = self.compositor.compose(image, subtitle)
        elapsed = time.perf_counter() - t0
        self.stats.render_seconds += elapsed
        FRAME_SECONDS.observe(elapsed)
        return image

    async def write_frames(self) -> None:
        """Hand everything in :attr:`outgoing` to the sink, in order, until None arrives.

        The hook that runs as the loop's writer task. Overrides must count each frame in
        :attr:`stats` (``frames``, ``samples``) and return on None.
        """
        rate = self.media.sample_rate
        while (item := await self.outgoing.get()) is not None:
            image, k, pcm, pts = item
            if pcm is None:  # audio first: the picture of a frame whose audio already left
                write, args = self.sink.write_video, (image, k)  # type: ignore[attr-defined]
            elif image is None:
                write, args = self.sink.write_audio, (k, pcm, pts, rate)  # type: ignore[attr-defined]
            else:
                write, args = self.sink.write, (image, k, pcm, pts, rate)
            if self.offload:
                await run_blocking(write, *args)
            else:
                write(*args)
            if pcm is not None:
                self.stats.frames += 1
                self.stats.samples += len(pcm)
