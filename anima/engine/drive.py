"""Drive mode: a live human's microphone speaks through the avatar.

The driver's audio is the avatar's voice (passed through, resampled to the session's output
rate) and the shipped audio-to-mouth network (:mod:`anima.lipsync.neural`) moves the lips to
it. No recogniser, brain or voice synthesis runs.

How a frame is made: :class:`DriveFeed` resamples each pushed block twice with stateful
FFmpeg filters (to 16 kHz for the network, to the output rate for the listener) and streams
the 16 kHz audio through :class:`~anima.lipsync.neural.NeuralMouth`. Output frame ``k`` takes
the next ``n`` buffered output samples (its audio span) and the mouth parameters the network
gives for the first of them, so picture and sound stay in sync by construction. The network's
look-ahead (32.5 ms past a frame's time) lies inside the frame's own 40 ms audio span, so a
frame is complete as soon as its audio is: the mouth adds no delay beyond buffering one frame.

:class:`DriveAir` is the session's on-air loop for this mode: when a whole frame of driver
audio is buffered it plays it, otherwise (the driver is silent or late) the idle face with
silence, so audio out never has gaps. Offline (``realtime=False``) it waits for the driver
instead. Either way it ends once :meth:`DriveFeed.end` has been called and everything is played.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

import av
import numpy as np

from anima.air.loop import Picked
from anima.air.program import REST
from anima.asr.audio import check_pcm, to_float
from anima.engine.output import FrameNote, SessionAir
from anima.frames import MediaClock, MouthShape
from anima.lipsync.neural import FPS as MODEL_FPS
from anima.lipsync.neural import SAMPLE_RATE as MODEL_RATE
from anima.lipsync.neural import Audio2MouthModel, NeuralMouth, is_speaking
from anima.pipeline import wait_any

MAX_LAG = 0.3  # seconds of driver audio buffered (live) before the oldest frames are dropped
QUIET = 64  # peak below which (-54 dBFS) a frame is silence that a late live feed may skip
HANGOVER = 0.5  # seconds of mouth rest before a drive session's state returns to idle


class StreamResampler:
    """Streaming conversion of checked PCM (any rate, channels) to mono float32 at ``rate``.

    FFmpeg's swresample keeps its filter state between calls, so block boundaries leave no
    clicks; its output is time-aligned with the input (it holds back about a millisecond of
    samples, released by the next block or :meth:`flush`). Input already at ``rate`` passes
    through without filtering.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._in_rate: int | None = None
        self._swr: av.AudioResampler | None = None

    def __call__(self, mono: np.ndarray, sample_rate: int) -> np.ndarray:
        """``mono`` (float32, -1..1) at ``sample_rate`` as float32 at :attr:`rate`."""
        if sample_rate != self._in_rate:
            # A driver switching rates mid-stream: the held samples of the old rate go first.
            head = self.flush()
            self._in_rate = sample_rate
            self._swr = (
                None
                if sample_rate == self.rate
                else av.AudioResampler(format="flt", layout="mono", rate=self.rate)
            )
            if len(head):
                return np.concatenate([head, self(mono, sample_rate)])
        if self._swr is None or not len(mono):
            return mono
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(mono).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = sample_rate
        return _collect(self._swr.resample(frame))

    def flush(self) -> np.ndarray:
        """The samples still held in the filter (end of the stream or a rate change)."""
        swr, self._swr, self._in_rate = self._swr, None, None
        return _collect(swr.resample(None)) if swr is not None else np.zeros(0, np.float32)


def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
    if not frames:
        return np.zeros(0, np.float32)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float audio in -1..1 as int16 (rounded, clipped)."""
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


class DriveFeed:
    """The driver's audio turned into output frames: (mouth, speaking, audio span) each.

    ``realtime`` feeds are a jitter buffer that keeps the delay at its floor: when a whole
    frame more than needed is buffered (the driver's audio came late once, and an idle frame
    filled in) the next silent frame is skipped, winning the frame back unheard; and at most
    :data:`MAX_LAG` seconds are held, older whole frames are dropped. Both count in
    :attr:`dropped`. Offline feeds keep everything; the caller paces its pushes. All methods run on the event loop's
    thread (the session calls them from ``push_audio`` and the on-air loop).
    """

    def __init__(
        self,
        media: MediaClock,
        model: Audio2MouthModel | None = None,
        *,
        realtime: bool = True,
        max_lag: float = MAX_LAG,
    ) -> None:
        self.media = media
        self.rate = media.sample_rate
        self.realtime = realtime
        self._max_held = int(max_lag * self.rate)
        self._frame = max(1, round(self.rate / media.fps))  # samples dropped at a time
        self._to_out = StreamResampler(self.rate)
        self._to_model = StreamResampler(MODEL_RATE)
        self._mouth = NeuralMouth(model)
        self._pcm: deque[np.ndarray] = deque()
        self._head = 0  # samples of _pcm[0] already taken
        self._held = 0  # output samples buffered
        self._pos = 0  # driver-stream index (output rate) of the first buffered sample
        self._params = np.zeros((0, 4), np.float32)  # model frames from _base on
        self._base = 0
        self.received = 0  # driver samples (output rate) buffered so far
        self.dropped = 0  # driver samples (output rate) dropped because output fell behind
        self.ended = False
        self.on_change: Callable[[], None] = lambda: None

    @property
    def held_seconds(self) -> float:
        """Driver audio buffered and not yet on air."""
        return self._held / self.rate

    @property
    def exhausted(self) -> bool:
        """:meth:`end` was called and every sample has been taken."""
        return self.ended and self._held == 0

    def push(self, pcm: np.ndarray, sample_rate: int, channels: int = 1) -> None:
        """Add a block of driver audio (int16 or float32, interleaved if ``channels`` > 1).

        Raises :class:`~anima.asr.audio.AudioError` (a ValueError) with a one-line reason for
        audio that cannot be used (rate outside 8–192 kHz, wrong dtype, NaN, ragged channels).
        """
        if self.ended:
            raise RuntimeError("the driver's audio has ended; open a new session to drive again")
        data = check_pcm(pcm, sample_rate, channels)
        if not len(data):
            return
        mono = to_float(data[:, 0]) if channels == 1 else to_float(data).mean(axis=1)
        if sample_rate == self.rate and channels == 1 and data.dtype == np.int16:
            out = np.array(data[:, 0])  # bit-exact pass-through at the output rate
        else:
            out = to_int16(self._to_out(mono, int(sample_rate)))
        self._add(out, self._to_model(mono, int(sample_rate)))

    def end(self) -> None:
        """No more driver audio: release what the filters and the look-ahead still hold."""
        if self.ended:
            return
        tail = to_int16(self._to_out.flush())
        model_tail = self._to_model.flush()
        self._add(tail, model_tail)
        self._params = np.concatenate([self._params, self._mouth.flush()])
        self.ended = True
        self.on_change()

    def _add(self, out: np.ndarray, model_audio: np.ndarray) -> None:
        if len(model_audio):
            self._params = np.concatenate([self._params, self._mouth.push(model_audio)])
        if len(out):
            self._pcm.append(out)
            self._held += len(out)
            self.received += len(out)
        if self.realtime:
            while self._held > self._max_held + self._frame:
                self._skip(self._frame)  # live: play the newest audio, not a growing backlog
        self.on_change()

    def take(self, n: int) -> tuple[MouthShape, bool, np.ndarray] | None:
        """The next output frame of ``n`` samples, or None until its audio and mouth are here.

        After :meth:`end` the last frame is padded with silence, then None (:attr:`exhausted`).
        """
        if self.realtime:
            while self._held >= 2 * n and self._quiet(n):
                self._skip(n)  # a frame behind the floor: lose it where nobody hears it
        m = self._model_frame(self._pos)
        have_mouth = m < self._base + len(self._params)
        if not self.ended and (self._held < n or not have_mouth):
            return None
        if self._held == 0:
            return None
        pcm = self._pop(n)
        if have_mouth:
            p = np.clip(self._params[m - self._base], 0.0, 1.0)
            shape, speaking = MouthShape(*map(float, p)), bool(is_speaking(p[None])[0])
        else:
            shape, speaking = REST, False
        self._pos += n
        self._forget()
        return shape, speaking, pcm

    def _model_frame(self, pos: int) -> int:
        """The network frame for driver sample ``pos`` (the nearest one at other frame rates)."""
        return (pos * MODEL_FPS * 2 + self.rate) // (2 * self.rate)

    def _pop(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.int16)
        filled = 0
        while filled < n and self._pcm:
            head = self._pcm[0]
            k = min(n - filled, len(head) - self._head)
            out[filled : filled + k] = head[self._head : self._head + k]
            filled += k
            self._head += k
            if self._head >= len(head):
                self._pcm.popleft()
                self._head = 0
        self._held -= filled
        return out

    def _quiet(self, n: int) -> bool:
        """Are the next ``n`` buffered samples silence?"""
        seen = 0
        for i, block in enumerate(self._pcm):
            part = block[self._head :] if i == 0 else block
            part = part[: n - seen]
            if len(part) and int(np.abs(part.astype(np.int32)).max()) >= QUIET:
                return False
            seen += len(part)
            if seen >= n:
                break
        return True

    def _skip(self, n: int) -> None:
        self._pop(n)
        self._pos += n
        self.dropped += n
        self._forget()

    def _forget(self) -> None:
        keep = self._model_frame(self._pos) - self._base
        if keep > 0:
            self._params = self._params[keep:]
            self._base += keep


class DriveAir(SessionAir):
    """A drive session's on-air loop: the driver's frames when buffered, else idle + silence.

    ``on_state`` is told "speaking" at the first frame the mouth moves and "idle" after
    :data:`HANGOVER` seconds of rest; it returns the events to send with that frame. Frames
    from a speaking spell carry a turn id (one per spell), idle ones turn 0.
    """

    def __init__(self, feed: DriveFeed, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feed = feed
        self.on_state: Callable[[str], list[Any]] = lambda state: []
        self.driven = 0  # frames that carried driver audio
        self._changed = asyncio.Event()
        feed.on_change = self._changed.set
        self._hang = max(1, round(HANGOVER * self.media.fps))
        self._left = 0  # frames of the speaking spell left before going idle
        self._turn = 0

    async def pick(self, k: int, n: int) -> Picked | None:
        """The driver's next frame, idle when it is not here (live) or waiting for it (offline)."""
        while True:
            self._changed.clear()
            got = self.feed.take(n)
            if got is not None:
                self.driven += 1
                break
            if self.feed.exhausted:
                return None  # the driver ended and everything is played: off air
            if self.realtime:
                got = (REST, False, np.zeros(n, np.int16))
                break
            if not await self._wait_feed():
                return None
        shape, speaking, pcm = got
        events: list[Any] = []
        if speaking:
            if self._left == 0:
                self._turn += 1
                events += self.on_state("speaking")
            self._left = self._hang
        elif self._left > 0:
            self._left -= 1
            if self._left == 0:
                events += self.on_state("idle")
        self.notes[k] = FrameNote(self._turn if self._left else 0, False, "neutral", events)
        return shape, speaking, pcm, None

    async def _wait_feed(self) -> bool:
        """Wait for driver audio; False when the loop was stopped meanwhile."""
        await wait_any(self.stop.wait(), self._changed.wait())
        return not self.stop.is_set()


__all__ = ["HANGOVER", "MAX_LAG", "QUIET", "DriveAir", "DriveFeed", "StreamResampler", "to_int16"]
