"""aiortc media tracks: the avatar's audio and video out, the user's microphone in.

Outgoing media is pulled: aiortc's sender calls ``recv()``, which takes the next frame from a
small bounded queue filled by the session pump (:mod:`anima.server.rtc`). Both tracks release
their frames on one shared :class:`MediaPacer`, anchored to the audio clock: a frame leaves when
the wall clock reaches ``anchor + media time``. aiortc stamps RTCP sender reports with the wall
time of sending, so releasing audio and video on one clock is what keeps them in sync at the
browser. Audio is 48 kHz, 20 ms frames (what Opus wants); video pts are on the 90 kHz RTP clock.

The voice goes first. With ``encode=True`` the audio track encodes Opus itself, on the event
loop (about 0.1 ms a 20 ms frame), and hands aiortc a finished packet: aiortc would otherwise
encode audio in the loop's default executor, in a queue behind video encodes and whatever else
runs there, which under CPU pressure delayed the voice by hundreds of milliseconds. The first
loud audio of each reply is timed through the output path (:class:`WireTiming`): queued,
released by the pacer, encoded, and on the wire (aiortc asks for the next frame only after it
has sent the packets of the last one).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from prometheus_client import Histogram

log = logging.getLogger(__name__)

QUEUED = Histogram(
    "anima_rtc_track_queue_seconds",
    "Time a frame waited in an outgoing track queue before aiortc took it to encode",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64),
)

OUT_RATE = 48_000  # Opus works at 48 kHz
OUT_FRAME = 960  # 20 ms at 48 kHz: one Opus packet
VIDEO_CLOCK = 90_000  # RTP video clock
IN_RATE = 16_000  # what the listener works on (Silero VAD and Whisper)
# A queued item this late is skipped when a newer one is already queued (it would only add
# delay: what was missed while the connection came up, or while the encoder lagged). A late
# picture is worthless after about one frame; audio is cut only when far behind (a click).
STALE_VIDEO = 0.06
STALE_AUDIO = 0.2


@dataclass
class WireTiming:
    """How the first loud audio frame of a reply went through the output path.

    Times are on the pacer's clock (monotonic seconds); ``rtp_pts`` is its 48 kHz media
    timestamp (aiortc adds its random RTP origin). The parts: ``queue`` (queued until the
    track took it, including waiting for older frames), ``pacing`` (held back for its slot),
    ``encode`` (Opus) and ``send`` (packetised and handed to the transport).
    """

    turn: int
    queued: float
    rtp_pts: int = 0
    taken: float = 0.0  # picked from the queue, before the pacer's wait
    released: float = 0.0  # after the pacer's wait
    encoded: float = 0.0
    sent: float = 0.0

    def parts(self) -> dict[str, float]:
        """The output path's parts and their sum, in seconds."""
        return {
            "out_queue": max(0.0, self.taken - self.queued),
            "out_pacing": max(0.0, self.released - self.taken),
            "out_encode": max(0.0, self.encoded - self.released),
            "out_send": max(0.0, self.sent - self.encoded),
            "output": max(0.0, self.sent - self.queued),
        }


class MediaPacer:
    """Releases media at ``anchor + media_time`` on one monotonic clock shared by all tracks.

    The session already emits at real-time pace, so the anchor follows the earliest
    ``arrival - media_time`` seen on any track: a frame that arrives on time goes out at once
    (no added latency), a late one too (a stall never adds lasting delay), and frames that
    arrive early — a burst — wait for their slot. After a ``warmup`` the anchor may move
    earlier only by ``drift`` seconds per second, so a burst cannot redefine the clock.
    Audio and video share the anchor, so they leave on one clock.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        warmup: float = 1.0,
        drift: float = 0.02,
    ) -> None:
        self._clock = clock
        self._anchor: float | None = None
        self._start = 0.0
        self._last = 0.0
        self._warmup = warmup
        self._drift = drift
        self.waits = 0  # frames held back because they came early

    def now(self) -> float:
        """The pacer's clock."""
        return self._clock()

    def arrived(self, media_time: float) -> None:
        """A frame for ``media_time`` (seconds on the audio clock) has just been queued."""
        now = self._clock()
        candidate = now - media_time
        if self._anchor is None:
            self._anchor, self._start = candidate, now
        elif candidate < self._anchor:
            if now - self._start < self._warmup:
                self._anchor = candidate
            else:
                self._anchor = max(candidate, self._anchor - self._drift * (now - self._last))
        self._last = now

    def late(self, media_time: float) -> float:
        """Seconds ``media_time`` is behind its slot (negative when early)."""
        if self._anchor is None:
            self.arrived(media_time)
        return self._clock() - (self._anchor + media_time)  # type: ignore[operator]

    async def wait(self, media_time: float) -> None:
        """Sleep until ``media_time`` is due."""
        late = self.late(media_time)
        if late < 0:
            self.waits += 1
            await asyncio.sleep(-late)


class _QueueTrack(MediaStreamTrack):
    """A track whose ``recv`` takes frames from a bounded queue (oldest dropped when full)."""

    stale = STALE_VIDEO

    def __init__(self, pacer: MediaPacer, maxlen: int) -> None:
        super().__init__()
        self._pacer = pacer
        self._queue: deque = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self.dropped = 0  # overwritten in a full queue
        self.skipped = 0  # passed over because a newer item was already due
        self.sent = 0
        self.taken = 0.0  # when the last item was taken from the queue (pacer clock)

    def put(self, item, media_time: float) -> None:
        """Queue ``item`` shown at ``media_time``; when full, the oldest is dropped."""
        if self.readyState != "live":
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._passed_over(self._queue[0][0])
        self._queue.append((item, media_time, self._pacer.now()))
        self._pacer.arrived(media_time)
        self._ready.set()

    def _passed_over(self, item) -> None:
        """``item`` will never be sent (dropped from a full queue, or skipped as stale)."""

    def clear(self) -> None:
        """Drop everything queued (on interruption)."""
        self._queue.clear()

    async def _next(self):
        """The next (item, media_time) once due; stale ones are skipped for a newer one due."""
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        if self.readyState != "live":
            raise MediaStreamError
        item, media_time, queued = self._queue.popleft()
        # Behind (the connection came up after output began, or the encoder lagged): what is
        # already late goes; the newest due item is sent.
        while self._queue and self._pacer.late(self._queue[0][1]) >= self.stale:
            self._passed_over(item)
            item, media_time, queued = self._queue.popleft()
            self.skipped += 1
        self.taken = self._pacer.now()
        await self._pacer.wait(media_time)
        QUEUED.labels(self.kind).observe(self._pacer.now() - queued)
        return item, media_time

    def stop(self) -> None:
        """End the track: ``recv`` raises, so aiortc's sender stops encoding."""
        super().stop()
        self._queue.clear()
        self._ready.set()


class VideoOutTrack(_QueueTrack):
    """The avatar's video: RGB frames with index ``k`` shown at ``k / fps`` seconds."""

    kind = "video"

    def __init__(self, pacer: MediaPacer, fps: int, queue_seconds: float = 0.5) -> None:
        super().__init__(pacer, max(2, round(fps * queue_seconds)))
        self.fps = fps
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK)

    def put_image(self, image: np.ndarray, index: int) -> None:
        """Queue an RGB uint8 (H, W, 3) image for video frame number ``index``."""
        self.put((image, index), index / self.fps)

    async def recv(self) -> av.VideoFrame:
        """The next frame, released at its presentation time."""
        (image, index), _ = await self._next()
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index * VIDEO_CLOCK // self.fps
        frame.time_base = self._time_base
        self.sent += 1
        return frame


class AudioOutTrack(_QueueTrack):
    """The avatar's voice: 20 ms 48 kHz mono s16 frames with continuous sample pts.

    With ``encode=True``, ``recv`` returns Opus packets (encoded here, see the module's
    docstring) instead of raw frames. ``on_wire`` receives the :class:`WireTiming` of each
    frame queued with a ``mark`` once that frame is on the wire.
    """

    kind = "audio"
    stale = STALE_AUDIO

    def __init__(
        self,
        pacer: MediaPacer,
        queue_seconds: float = 0.5,
        *,
        encode: bool = False,
        on_wire: Callable[[WireTiming], None] | None = None,
    ) -> None:
        super().__init__(pacer, max(4, round(queue_seconds * OUT_RATE / OUT_FRAME)))
        self._time_base = fractions.Fraction(1, OUT_RATE)
        self._pts = 0
        self.energy_samples = 0  # non-silent samples sent (for tests and metrics)
        self.on_wire = on_wire
        self._encoder: av.CodecContext | None = None
        if encode:
            self._encoder = av.CodecContext.create("libopus", "w")
            self._encoder.bit_rate = 64_000
            self._encoder.format = "s16"
            self._encoder.layout = "stereo"  # what the SDP's opus/48000/2 announces
            self._encoder.sample_rate = OUT_RATE
            self._encoder.time_base = self._time_base
            self._encoder.options = {"application": "voip"}
        self._in_flight: WireTiming | None = None  # handed to aiortc, not yet on the wire
        self._orphan: WireTiming | None = None  # a timed frame was never sent: the next is

    def _passed_over(self, item) -> None:
        if item[2] is not None:
            self._orphan = item[2]

    def start_at(self, pts: int, sample_rate: int) -> None:
        """Number the first frame from the session's audio pts (``pts`` at ``sample_rate``).

        Video frame ``k`` is due at ``k / fps`` on the same clock, so starting the 48 kHz count
        where the session's audio starts keeps the two tracks aligned on the shared pacer.
        """
        self._pts = pts * OUT_RATE // sample_rate

    def put_pcm(self, pcm: np.ndarray, mark: int | None = None) -> None:
        """Queue exactly one 20 ms frame of int16 mono PCM at 48 kHz (the next on the clock).

        ``mark`` (a turn id) asks for this frame's :class:`WireTiming` via ``on_wire``.
        """
        timing = None if mark is None else WireTiming(mark, self._pacer.now(), self._pts)
        self.put((pcm, self._pts, timing), self._pts / OUT_RATE)
        self._pts += len(pcm)

    def _wired(self) -> None:
        # aiortc asks for the next frame only after sending the last one: it is on the wire.
        timing, self._in_flight = self._in_flight, None
        if timing is not None:
            timing.sent = self._pacer.now()
            if self.on_wire is not None:
                self.on_wire(timing)

    async def recv(self) -> av.AudioFrame | av.Packet:
        """The next 20 ms, released at its presentation time (an Opus packet if encoding)."""
        self._wired()
        while True:
            (pcm, pts, timing), _ = await self._next()
            if timing is None and self._orphan is not None:  # its timed frame was passed over
                timing, self._orphan = self._orphan, None
            if timing is not None:
                timing.taken, timing.released = self.taken, self._pacer.now()
            frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = OUT_RATE
            frame.pts = pts
            frame.time_base = self._time_base
            if np.abs(pcm).max(initial=0) > 64:
                self.energy_samples += len(pcm)
            self.sent += 1
            out: av.AudioFrame | av.Packet = frame
            if self._encoder is not None:
                stereo = np.repeat(pcm, 2).reshape(1, -1)
                frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
                frame.sample_rate = OUT_RATE
                frame.pts = pts
                frame.time_base = self._time_base
                packets = self._encoder.encode(frame)
                if not packets:  # libopus holds nothing back at 20 ms, but be safe
                    continue
                out = packets[0]
                out.pts = pts  # the RTP timestamp follows the media clock, not the lookahead
                out.time_base = self._time_base
            if timing is not None:
                timing.encoded = self._pacer.now()
                self._in_flight = timing
            return out


class Rechunker:
    """Any-rate int16 mono PCM → 48 kHz, cut into whole 20 ms frames (remainder carried)."""

    def __init__(self) -> None:
        self._rate: int | None = None
        self._resampler: av.AudioResampler | None = None
        self._pending = np.zeros(0, np.int16)

    def push(self, pcm: np.ndarray, sample_rate: int) -> list[np.ndarray]:
        """Resample ``pcm`` and return the whole 20 ms frames now available."""
        if sample_rate != self._rate:
            self._rate = sample_rate
            self._resampler = (
                None
                if sample_rate == OUT_RATE
                else av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
            )
        data = np.ascontiguousarray(pcm, dtype=np.int16).reshape(-1)
        if self._resampler is not None and len(data):
            frame = av.AudioFrame.from_ndarray(data.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = sample_rate
            parts = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
            data = np.concatenate(parts) if parts else np.zeros(0, np.int16)
        buf = np.concatenate([self._pending, data]) if len(self._pending) else data
        whole = len(buf) // OUT_FRAME * OUT_FRAME
        self._pending = buf[whole:].copy()
        return [buf[i : i + OUT_FRAME] for i in range(0, whole, OUT_FRAME)]

    def reset(self) -> None:
        """Forget the carried remainder (after an interruption)."""
        self._pending = np.zeros(0, np.int16)


async def read_microphone(track: MediaStreamTrack, push: Callable[[np.ndarray, int], None]) -> int:
    """Feed the user's audio track to ``push(pcm16k, 16000)`` until the track ends.

    WebRTC delivers Opus decoded to 48 kHz (usually stereo); the listener wants 16 kHz mono,
    so it is resampled here, once, in C. Returns the number of frames read.
    """
    resampler = av.AudioResampler(format="s16", layout="mono", rate=IN_RATE)
    frames = 0
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return frames
        frames += 1
        for out in resampler.resample(frame):
            push(out.to_ndarray().reshape(-1), IN_RATE)
