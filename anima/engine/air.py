"""A session's continuous output, built on the live show's on-air loop.

The :class:`~anima.live.broadcast.Broadcaster` already plays a :class:`~anima.live.program.Program`
at a constant frame rate with idle fill, integer timestamps and cutting. A session only adds:

- :class:`SessionAir`, which notes per frame what a client must hear about at that frame's
  presentation time (the avatar started or stopped speaking, a new subtitle) and which turn the
  frame belongs to;
- :class:`Outbox`, the bounded queue between the loop and the session's one consumer: when the
  consumer is slow, pictures are dropped first (never audio ahead of pictures), and the oldest
  of anything when only audio and events are left;
- :class:`ParamsFace`, the "params" media mode's renderer: the face as numbers (mouth, blink,
  head pose) instead of pixels, so a client draws its own character.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from anima.events import FaceParams, Subtitle
from anima.frames import AudioFrame, MouthShape, VideoFrame
from anima.live.broadcast import Broadcaster, Picked
from anima.live.program import Utterance
from anima.render.idle import IdleMotion

# Degrees of head turn per pixel-fraction of the idle sway (IdleMotion moves the image ~1 % of
# its size): about ±3° of yaw and ±2° of pitch, what a 2D client can show as a small tilt.
_YAW_PER_SHIFT = 300.0
_PITCH_PER_SHIFT = 300.0


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


__all__ = ["FrameNote", "Job", "Outbox", "ParamsFace", "SessionAir", "heard_chars", "silent"]
