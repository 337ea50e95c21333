"""What goes on air in a session: its continuous output, built on the shared on-air loop.

The :class:`~anima.air.loop.Broadcaster` already plays a :class:`~anima.air.program.Program`
at a constant frame rate with idle fill, integer timestamps and cutting. A session only adds:

- :class:`SessionAir`, which notes per frame what a client must hear about at that frame's
  presentation time (the avatar started or stopped speaking, a new subtitle) and which turn the
  frame belongs to;
- :class:`Outbox`, the bounded queue between the loop and the session's one consumer: when the
  consumer is slow, pictures are dropped first (never audio ahead of pictures), and the oldest
  of anything when only audio and events are left;
- :class:`ParamsFace`, the "params" media mode's renderer: the face as numbers (mouth, blink,
  head pose) instead of pixels, so a client draws its own character;
- :class:`OnAir`, the part of :class:`~anima.engine.session.Session` that is the loop's sink:
  each frame goes out with the events due at it, the session's state, and the renderer.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from anima.air.loop import Broadcaster, Picked
from anima.air.program import Utterance
from anima.events import ErrorEvent, FaceParams, StateChanged, Subtitle
from anima.frames import AudioFrame, MouthShape, VideoFrame
from anima.pipeline import lower_priority
from anima.render.idle import IdleMotion

if TYPE_CHECKING:
    from anima.render.avatar import Avatar

log = logging.getLogger("anima.engine.session")  # one logger for the whole conversation

# Degrees of head turn per pixel-fraction of the idle sway (IdleMotion moves the image ~1 % of
# its size): about ±3° of yaw and ±2° of pitch, what a 2D client can show as a small tilt.
_YAW_PER_SHIFT = 300.0
_PITCH_PER_SHIFT = 300.0
# Render threads run below the voice's (see anima.pipeline.lower_priority). Nice 4 is about
# 40 % of a normal thread's share under contention: the voice goes first, but the face still
# gets frames when other processes (a browser, another job) are busy. Nice 10 (~10 %) starved
# the video to 2-8 fps whenever anything else ran on the machine.
RENDER_NICENESS = 4


@dataclass
class Job:
    """Something for the avatar to say: a reply to the user, exact text, or the greeting."""

    kind: str  # reply | say | greet | apology
    text: str
    emotion: str = "neutral"
    turn: int = 0  # the session turn its frames carry (set when production starts)
    started: float = 0.0  # clock time the job was asked for (latency)
    parts: dict[str, float] = field(default_factory=dict)  # latency parts known so far
    first_audio: float | None = None  # clock time its first audio was synthesised
    reported: bool = False  # its TurnLatency was sent


@dataclass
class FrameNote:
    """What the loop learnt about frame ``k`` when it picked it."""

    turn: int
    speaking: bool  # the frame carries the avatar's speech (the echo reference)
    emotion: str
    events: list[Any]


class SessionAir(Broadcaster):
    """The on-air loop of one session; ``on_start``/``on_end`` see utterances go on and off air.

    Their events travel with the frames through the loop's output queue, so they reach the
    client at their presentation time: attached to the frame where an utterance starts, or
    (when speech ends) to the next frame, or queued on their own when the offline loop stops
    to wait for more speech. ``on_events`` receives the events that travel on their own.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notes: dict[int, FrameNote] = {}
        # (turn, emotion) of frames whose audio left before their picture (audio first).
        self.video_notes: dict[int, tuple[int, str]] = {}
        self.on_start: Callable[[Utterance, int], list[Any]] = lambda utt, k: []
        self.on_end: Callable[[Utterance, int], list[Any]] = lambda utt, k: []
        self.on_events: Callable[[list[Any]], None] = lambda events: None
        self._subtitle: str | None = None
        self._ended: list[Any] = []

    async def pick(self, k: int, n: int) -> Picked | None:
        """The parent's choice, plus the frame's note (state, subtitle, turn)."""
        before = self.on_air
        picked = await super().pick(k, n)
        after = self.on_air
        events, self._ended = self._ended, []
        if after is not None and after is not before:
            events += self.on_start(after, k)
        turn, emotion = 0, "neutral"
        if after is not None:
            job = after.source
            turn = job.turn if isinstance(job, Job) else 0
            emotion = after.emotion
            text = after.subtitle() if after.sentences else None
            if text and text != self._subtitle:
                self._subtitle = text
                events.append(Subtitle(text, emotion, turn))
        self.notes[k] = FrameNote(turn, after is not None, emotion, events)
        return picked

    def end_speech(self, k: int) -> None:
        """The parent's record, then ``on_end``'s events, which go out with the next frame."""
        ended = self.on_air
        super().end_speech(k)
        if ended is not None:
            self._subtitle = None
            self._ended += self.on_end(ended, k)

    async def wait_for_input(self) -> None:
        """Send the events held for the next frame on their own, then the parent's wait."""
        if self._ended:  # the offline loop pauses: what happened so far goes out now
            events, self._ended = self._ended, []
            await self.outgoing.put(_Events(events))  # type: ignore[arg-type]
        await super().wait_for_input()

    async def write_frames(self) -> None:
        """Hand frames to the session inline: its sink never blocks, an executor hop is waste."""
        rate = self.media.sample_rate
        while (item := await self.outgoing.get()) is not None:
            if isinstance(item, _Events):
                self.on_events(item.events)
                continue
            image, k, pcm, pts = item
            if pcm is None:  # audio first: the picture of a frame whose audio already left
                self.sink.write_video(image, k)
                continue
            if image is None:
                self.sink.write_audio(k, pcm, pts, rate)
            else:
                self.sink.write(image, k, pcm, pts, rate)
            self.stats.frames += 1
            self.stats.samples += len(pcm)

    def render_frame(self, k: int, shape: MouthShape, speaking: bool, subtitle: str | None) -> Any:
        """The rendered payload (no overlays, no actions: the client composes its own UI)."""
        return self.render(k, shape, speaking)


@dataclass
class _Events:
    events: list[Any]


class Outbox:
    """Bounded, thread-safe queue of everything for the client, in presentation order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._items: deque[Any] = deque()
        self._maxsize = maxsize
        self._ready = asyncio.Event()
        self.dropped = 0  # items dropped because the consumer was slow
        self.closed = False

    def put(self, item: Any) -> None:
        """Queue ``item`` from any thread; never blocks."""
        if threading.get_ident() == self._thread:
            self._put(item)
        else:
            self._loop.call_soon_threadsafe(self._put, item)

    def _put(self, item: Any) -> None:
        if self.closed:
            return
        if len(self._items) >= self._maxsize:
            self._make_room()
        self._items.append(item)
        self._ready.set()

    def _make_room(self) -> None:
        # Pictures go first: a late picture is worthless, a missing audio frame is a click.
        for i, old in enumerate(self._items):
            if isinstance(old, VideoFrame | FaceParams):
                del self._items[i]
                self.dropped += 1
                return
        self._items.popleft()
        self.dropped += 1

    async def get(self) -> Any:
        """The next item; None once closed and empty."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        return self._items.popleft()

    def drop_media(self, turn: int) -> int:
        """Discard queued output of ``turn`` (cut off); returns how many items.

        Its pictures go; its audio is replaced by silence of the same span, so audio
        timestamps stay continuous for the client.
        """
        keep: deque[Any] = deque()
        n = 0
        for x in self._items:
            if isinstance(x, VideoFrame | FaceParams) and x.turn == turn:
                n += 1
                continue
            if isinstance(x, AudioFrame) and x.turn == turn:
                n += 1
                x = AudioFrame(
                    turn=0, pcm=np.zeros_like(x.pcm), sample_rate=x.sample_rate, pts=x.pts
                )
            keep.append(x)
        self._items = keep
        return n

    def close(self) -> None:
        """No more items; queued ones are discarded and the consumer ends."""
        self.closed = True
        self._items.clear()
        self._ready.set()

    def finish(self) -> None:
        """No more items; the consumer ends after the queued ones."""
        self.closed = True
        self._ready.set()

    def __len__(self) -> int:
        return len(self._items)


class ParamsFace:
    """The "params" renderer: mouth, blink and head pose per frame, no pixels."""

    def __init__(self, fps: int, seed: int | None, blink_interval: float, head_motion: float):
        self.fps = fps
        self.idle = IdleMotion(seed, blink_interval, head_motion)
        self._talk = 0.0

    def __call__(self, index: int, shape: MouthShape, speaking: bool) -> FaceParams:
        """The face at frame ``index`` (turn and emotion are filled in by the sink)."""
        t = index / self.fps
        # The same smoothed talking activity the pixel renderer nods with (~0.3 s).
        self._talk += (float(shape.jaw_open) * (1.0 if speaking else 0.0) - self._talk) * min(
            1.0, 4.0 / self.fps
        )
        pose = self.idle.pose(t, 1, self._talk)
        return FaceParams(
            index=index,
            jaw_open=round(float(shape.jaw_open), 3),
            lip_width=round(float(shape.lip_width), 3),
            lip_round=round(float(shape.lip_round), 3),
            lip_closure=round(float(shape.lip_closure), 3),
            blink=round(self.idle.blink(t), 3),
            head_yaw=round(pose.dx * _YAW_PER_SHIFT, 2),
            head_pitch=round(pose.dy * _PITCH_PER_SHIFT, 2),
            head_roll=round(pose.roll, 2),
            speaking=speaking,
        )


def silent(n: int) -> np.ndarray:
    """``n`` samples of silence."""
    return np.zeros(n, np.int16)


def heard_chars(utt: Utterance, samples_played: int) -> int:
    """Characters of ``utt`` heard after ``samples_played`` samples (sentences joined by spaces).

    A sentence counts in proportion to how much of its audio played; the brain's history keeps
    only that much of the reply.
    """
    sentences = utt.sentences
    total = 0
    for i, (start, text) in enumerate(sentences):
        if samples_played <= start:
            break
        end = sentences[i + 1][0] if i + 1 < len(sentences) else None
        if end is None or samples_played >= end:
            fraction = 1.0 if end is not None else min(1.0, _fraction(utt, start, samples_played))
        else:
            fraction = (samples_played - start) / max(1, end - start)
        total += (1 if i else 0) + math.floor(len(text) * fraction)
    return total


def _fraction(utt: Utterance, start: int, played: int) -> float:
    length = utt._audio_len - start  # noqa: SLF001 - the last sentence ends with the audio
    return (played - start) / length if length > 0 else 1.0


class OnAir:
    """The session's output side: the on-air loop's sink, events, state and the renderer.

    A part of :class:`anima.engine.session.Session`: a mixin whose state lives in
    ``Session.__init__``, kept in its own file so each idea of the conversation has one room.
    """

    async def frames(self) -> AsyncIterator[VideoFrame | AudioFrame | FaceParams | Any]:
        """Everything for the client in presentation order (see :mod:`anima.engine.session`)."""
        if not self._started:
            raise RuntimeError("start() the session before reading its frames")
        while (item := await self._outbox.get()) is not None:
            yield item

    def write(self, image: Any, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        """Sink of the on-air loop (any thread): frame ``index`` and its audio go out."""
        if threading.get_ident() == self._loop_thread:
            self._emit(image, index, pcm, pts, rate)
        else:
            self._loop.call_soon_threadsafe(self._emit, image, index, pcm, pts, rate)

    def write_audio(self, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        """Sink of an audio-first loop (its thread): frame ``index``'s audio, before its picture."""
        self._emit(None, index, pcm, pts, rate)

    def write_video(self, image: Any, index: int) -> None:
        """Sink of an audio-first loop (its thread): the picture of frame ``index``, or none."""
        if self._closed:
            return
        notes = self._air.video_notes
        turn, emotion = notes.pop(index, (0, "neutral"))
        for old in [i for i in notes if i < index]:  # frames whose picture was shed
            del notes[old]
        if self.media == "video":
            self._outbox.put(VideoFrame(turn=turn, image=image, index=index))
        elif self.media == "params":
            self._outbox.put(dataclasses.replace(image, turn=turn, emotion=emotion))

    def _emit(self, image: Any, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        if self._closed:
            return
        note = self._air.notes.pop(index, None) or FrameNote(0, False, "neutral", [])
        for ev in note.events:
            self._event(ev)
        if note.speaking and note.turn:
            job = self._by_turn.get(note.turn)
            if job is not None and not job.reported and np.any(pcm):
                self._report_latency(job)
            if self.realtime and self.media != "events":
                self._listener.play(pcm, rate, note.turn)  # the echo reference, as it leaves
        if self.media == "events":
            return
        self._outbox.put(AudioFrame(turn=note.turn, pcm=pcm, sample_rate=rate, pts=pts))
        if image is None:  # audio first: the picture follows (write_video)
            self._air.video_notes[index] = (note.turn, note.emotion)
            return
        if self.media == "video":
            self._outbox.put(VideoFrame(turn=note.turn, image=image, index=index))
        else:
            self._outbox.put(dataclasses.replace(image, turn=note.turn, emotion=note.emotion))

    def _event(self, event: Any) -> None:
        if not self._closed and self._started:
            self._outbox.put(event)

    async def _run_air(self) -> None:
        try:
            await self._air.run()
            if self.drive and not self._closed:
                self._outbox.finish()  # the driver ended: frames() ends after the last frame
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the output loop is the session: say why it ended
            log.exception("session %s output failed", self.id)
            self._event(ErrorEvent("output", str(exc), False))

    def _on_air_start(self, utt: Utterance, k: int) -> list[Any]:
        return self._state_events("speaking")

    def _on_air_events(self, events: list[Any]) -> None:
        for ev in events:
            self._event(ev)

    def _on_air_end(self, utt: Utterance, k: int) -> list[Any]:
        job = utt.source
        if isinstance(job, Job):
            self._by_turn.pop(job.turn, None)
        if self._producing is None and self._jobs is not None and self._jobs.empty():
            if len(self._program) == 0:
                return self._state_events(self._rest_state())
        return []

    def _state_events(self, state: str) -> list[Any]:
        if state == self.state:
            return []
        self.state = state
        return [StateChanged(state)]

    def _set_state(self, state: str) -> None:
        for ev in self._state_events(state):
            self._event(ev)

    def _rest_state(self) -> str:
        if self.drive:
            return "idle"
        return "listening" if self.listening == "always" or self._ptt else "idle"

    async def _renderer(self, spec: str | Avatar | None) -> Any:
        s = self.engine.settings.render
        if self.media == "params":
            return ParamsFace(self.fps, s.seed, s.blink_interval, s.head_motion)
        if self.media == "events":
            return lambda k, shape, speaking: None
        animator = await self.engine.animator(spec)
        if s.backend != "default" and self.drive:
            # The neural mouth reads the utterance on air, and a drive session has none: it
            # would paint silence over the driver's moving mouth. The rig follows the network.
            log.info("drive session %s renders with the default face, not %s", self.id, s.backend)
        elif s.backend != "default":  # the neural mouth (GPU); on the CPU it keeps the animator
            from anima.render.neural_mouth import session_face

            program = lambda: getattr(self, "_program", None)  # noqa: E731 - set after this
            animator = await session_face(animator, s, program, self.sample_rate)
        last: list[np.ndarray] = [np.full((s.size, s.size, 3), 128, np.uint8)]
        want = (s.size, s.size, 3)
        timeout = s.frame_timeout
        if self._render_pool is None:
            # Pictures yield the cores to the voice (TTS, ASR, audio): a niced thread.
            self._render_pool = concurrent.futures.ThreadPoolExecutor(
                1,
                thread_name_prefix=f"render-{self.id}",
                initializer=lower_priority,
                initargs=(RENDER_NICENESS,),
            )
        pool = self._render_pool

        def render(k: int, shape: MouthShape, speaking: bool) -> np.ndarray:
            # Runs on the air loop's thread; the renderer itself runs on the session's own
            # render thread so a hang is bounded by ``render.frame_timeout``.
            job = self._render_job
            if job is not None and not job.done():
                return last[0]  # still stuck on an earlier frame: repeat the last picture
            try:
                job = self._render_job = pool.submit(animator.render, k, shape, speaking)
                image = job.result(timeout=timeout)
                if not isinstance(image, np.ndarray) or image.shape != want:
                    got = getattr(image, "shape", type(image).__name__)
                    raise ValueError(f"the renderer returned {got}, not a {want} picture")
                if image.dtype != np.uint8:
                    raise ValueError(f"the renderer returned {image.dtype} pixels, not uint8")
                last[0] = image
            except concurrent.futures.TimeoutError:
                self._fault_threadsafe("render", f"a frame took over {timeout:g} s to render")
            except RuntimeError as exc:
                if self._closed:  # the pool was shut down under a frame at close
                    return last[0]
                self._fault_threadsafe("render", str(exc))
            except Exception as exc:  # a bad frame repeats the last picture, never stops air
                self._fault_threadsafe("render", str(exc))
            return last[0]

        return render


__all__ = [
    "FrameNote",
    "Job",
    "OnAir",
    "Outbox",
    "ParamsFace",
    "SessionAir",
    "heard_chars",
    "silent",
]
