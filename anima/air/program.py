"""What goes on air next: utterances being synthesised, and pauses, in order.

The producer (speech synthesis + lip-sync) appends audio and mouth shapes to an
:class:`Utterance` while the broadcaster plays it from the front; both sides only ever count
samples and frames, so an utterance plays at exactly the speed its audio was made for.
Utterance time is relative: sample 0 is its first sample, mouth shape ``r`` belongs to its
video frame ``r`` (``MediaClock.sample_of_frame(r)``).
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from anima.frames import MouthShape

REST = MouthShape()


@dataclass(eq=False)  # identity, not field equality: segments hold arrays
class Utterance:
    """Speech for one line or answer, filled by the producer while it plays."""

    text: str
    emotion: str = "neutral"
    action: str | None = None
    source: object = None  # the queue item it came from, so it can be requeued if cut early
    mouths: list[tuple[MouthShape, bool]] = field(default_factory=list)
    sentences: list[tuple[int, str]] = field(default_factory=list)  # (start sample, text)
    closed: bool = False  # everything has been produced (or production failed)
    cut: bool = False  # interrupted: stop playing it at once
    started_frame: int | None = None  # output frame where it went on air
    played: int = 0  # video frames played
    _audio: list[np.ndarray] = field(default_factory=list)
    _audio_len: int = 0
    _read: int = 0  # samples already played
    _head: int = 0  # samples already played of the first chunk in _audio

    # -- producer side ---------------------------------------------------------------------

    def add_audio(self, pcm: np.ndarray, text: str = "") -> None:
        """Append speech samples (one synthesised sentence)."""
        if text:
            self.sentences.append((self._audio_len, text))
        self._audio.append(np.asarray(pcm, np.int16))
        self._audio_len += len(pcm)

    def add_mouth(self, shape: MouthShape, speaking: bool) -> None:
        """Append the mouth shape of the next video frame."""
        self.mouths.append((shape, speaking))

    # -- player side -----------------------------------------------------------------------

    @property
    def buffered_frames(self) -> int:
        """Frames ready to play from the current position."""
        return len(self.mouths) - self.played

    @property
    def finished(self) -> bool:
        """Nothing is left to play."""
        return self.cut or (
            self.closed and self.played >= len(self.mouths) and self._read >= self._audio_len
        )

    def ready(self, samples: int) -> bool:
        """The next frame (mouth and ``samples`` of audio) can play now."""
        if self.closed:
            return True
        return self.played < len(self.mouths) and self._audio_len - self._read >= samples

    def take(self, samples: int) -> tuple[MouthShape, bool, np.ndarray]:
        """Mouth shape and exactly ``samples`` of audio for the next frame (zero-padded at the end)."""
        shape, speaking = (
            self.mouths[self.played] if self.played < len(self.mouths) else (REST, False)
        )
        self.played += 1
        out = np.zeros(samples, np.int16)
        filled = 0
        while filled < samples and self._audio:
            head = self._audio[0]
            n = min(samples - filled, len(head) - self._head)
            out[filled : filled + n] = head[self._head : self._head + n]
            filled += n
            self._read += n
            self._head += n
            if self._head >= len(head):
                self._audio.pop(0)
                self._head = 0
        return shape, speaking, out

    def peek(self, samples: int) -> np.ndarray:
        """Up to ``samples`` of the audio still to play (int16), without consuming it.

        For renderers that look at the sound of the coming frames (a neural mouth).
        """
        parts: list[np.ndarray] = []
        left = samples
        for i, chunk in enumerate(self._audio):
            if left <= 0:
                break
            part = chunk[self._head if i == 0 else 0 :][:left]
            parts.append(part)
            left -= len(part)
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def subtitle(self) -> str:
        """The sentence being spoken now (the whole text when sentences are unknown)."""
        current = self.text
        for start, text in self.sentences:
            if start <= self._read:
                current = text
        return current


@dataclass(eq=False)
class Silence:
    """A pause on air: ``frames`` video frames of idle face and silence."""

    frames: int
    source: object = None
    played: int = 0

    @property
    def finished(self) -> bool:
        """The pause is over."""
        return self.played >= self.frames


Segment = Utterance | Silence


class Program:
    """The segments queued for air, oldest first; bounded so production stays a little ahead."""

    def __init__(self, ahead: int = 2) -> None:
        self._segments: deque[Segment] = deque()
        self._ahead = ahead
        self._changed = asyncio.Event()
        self.done = False  # no more segments will come

    def _signal(self) -> None:
        self._changed.set()

    def arm(self) -> None:
        """Start watching for changes: call before looking, then :meth:`wait` if nothing fits.

        Clearing before the look (not after) means a change made in between is never missed.
        """
        self._changed.clear()

    async def wait(self) -> None:
        """Wait until something is added, produced, cut or finished since :meth:`arm`."""
        await self._changed.wait()

    def notify(self) -> None:
        """Tell the player that a segment got new content."""
        self._signal()

    async def room(self) -> None:
        """Wait while ``ahead`` queued segments are still waiting to go on air."""
        while True:
            self.arm()
            if sum(1 for s in self._segments if not _started(s)) < self._ahead:
                return
            await self.wait()

    def add(self, segment: Segment) -> None:
        """Queue a segment at the end (no waiting: call :meth:`room` first to stay bounded)."""
        self._segments.append(segment)
        self._signal()

    def finish(self) -> None:
        """No more segments: the show ends once the queued ones have played."""
        self.done = True
        self._signal()

    def current(self) -> Segment | None:
        """The segment at the front, dropping finished ones."""
        while self._segments and self._segments[0].finished:
            self._segments.popleft()
            self._signal()
        return self._segments[0] if self._segments else None

    def playing(self) -> Segment | None:
        """The segment on air now, if it has started."""
        seg = self.current()
        return seg if seg is not None and _started(seg) else None

    def take_pending(self) -> list[Segment]:
        """Remove and return the queued segments that have not started yet, in order."""
        pending = [s for s in self._segments if not _started(s)]
        self._segments = deque(s for s in self._segments if _started(s))
        self._signal()
        return pending

    def cut_playing(self) -> Segment | None:
        """Stop the segment on air now; returns it."""
        seg = self.playing()
        if isinstance(seg, Utterance):
            seg.cut = True
        elif isinstance(seg, Silence):
            seg.played = seg.frames
        self._signal()
        return seg

    def __len__(self) -> int:
        return len(self._segments)


def _started(seg: Segment) -> bool:
    if isinstance(seg, Utterance):
        return seg.started_frame is not None
    return seg.played > 0
