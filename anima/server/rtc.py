"""One browser conversation: an aiortc peer connection around one engine session.

In: the user's microphone track (→ 16 kHz → ``session.push_audio``) and the ``events`` data
channel (typed text, interrupt, ping). Out: the avatar's audio and video tracks and every
session event as JSON on the data channel. A pump task moves ``session.frames()`` into the
bounded track queues; the tracks release them on the shared audio-clock pacer.

The ``latency`` event measures to the wire: the engine's event is held until the first loud
audio of its turn has left in an RTP packet, and goes out with the output path's parts added
(``out_queue``, ``out_pacing``, ``out_encode``, ``out_send``, their sum ``output``); ``total``
then ends on the wire and ``engine_total`` keeps the engine's own figure. An event whose audio
never leaves (the turn was cut) goes out unchanged after ``WIRE_WAIT`` seconds.

The microphone is read without a jitter buffer's hold (:func:`low_latency_input`): aiortc's
default holds four 20 ms packets back (80 ms), and any of its buffers one (20 ms), before the
listener hears them, which is time added to every reply; the listener needs its audio in order,
not smoothed for playout.

The voice first on the cores too: speech synthesis and recognition run on their own threads
(:func:`anima.pipeline.run_voice`) and the renderer on a niced one. The loop's default
executor, where aiortc encodes video, is left as it is: a thread's niceness is inherited by
the threads it starts, and models loaded there (Whisper's and Piper's thread pools) would then
run below every other process on the machine.

Teardown (:meth:`RtcSession.close`) is one idempotent path taken on every way a conversation
ends — connection failed or closed, data channel closed, page-unload beacon, DELETE, idle
timeout, server shutdown: it stops the tracks (so aiortc stops encoding at once rather than for
~30 s after a tab closes), closes the peer connection, cancels the pump and microphone tasks
and closes the engine session.

Limits: every data-channel message spends from the client's and the session's token buckets
(``allow``; over them it is dropped with one ``rate_limited`` error per episode), microphone
audio past ``max_speech_seconds`` is ignored after one ``speech_limit`` error, and while the
server drains (``draining``) new ``ask``/``say`` requests get a ``busy`` error. A drive session
speaks only with the page's microphone: its ``ask``/``say`` get an ``unavailable`` error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.sdp import candidate_from_sdp

from anima.events import Interrupted, StateChanged, TranscriptEvent, TurnLatency
from anima.frames import AudioFrame, VideoFrame
from anima.levels import INT16_FULL_SCALE, rms
from anima.server import metrics
from anima.server.tracks import (
    AudioOutTrack,
    MediaPacer,
    Rechunker,
    VideoOutTrack,
    WireTiming,
    read_microphone,
)

log = logging.getLogger(__name__)

MAX_SDP_BYTES = 64 * 1024
# What :func:`check_offer` demands of an offer's text, as one pattern (the API schema carries it):
# "v=0" first, then lines, with an audio and a video m-line in either order.
SDP_OFFER_PATTERN = (
    r"^v=0\r?\n(?:[^\r\n]*\r?\n)*?m=(?:audio(?: [^\r\n]*)?\r?\n(?:[^\r\n]*\r?\n)*?m=video"
    r"|video(?: [^\r\n]*)?\r?\n(?:[^\r\n]*\r?\n)*?m=audio)(?: |\r?\n|$)"
)
_OFFER_SHAPE = re.compile(SDP_OFFER_PATTERN)
MAX_DC_MESSAGE = 8 * 1024
WIRE_WAIT = 2.0  # seconds a latency event waits for its first audio to leave
MAX_PENDING = 8  # data-channel requests waiting on the session (``say`` waits when it is full)
AUDIBLE_RMS = 0.005  # -46 dBFS over 20 ms: the level the peer kit's client counts as heard


class AudioAtOnce(JitterBuffer):
    """A microphone jitter buffer that releases each packet the moment it arrives.

    An Opus RTP packet is a whole frame, but aiortc's buffer only knows a frame is complete
    when the next packet arrives, so even with no prefetch it holds every packet for 20 ms.
    The listener needs audio soon and in order, not smoothed for playout: a packet older than
    one already released (late or duplicated) is dropped; a gap (a lost packet) is not waited for.
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity=capacity)
        self._next: int | None = None

    def add(self, packet: Any) -> tuple[bool, JitterFrame | None]:
        """(no picture-loss request, the packet as a frame) — or no frame for a late packet."""
        seq = int(packet.sequence_number)
        if self._next is not None and (seq - self._next) & 0xFFFF >= 0x8000:
            return False, None  # older than what the listener already has
        self._next = (seq + 1) & 0xFFFF
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)


def low_latency_input(receiver: Any) -> bool:
    """Give an audio receiver a jitter buffer that releases each packet as it arrives.

    Returns whether it could (aiortc keeps the buffer private; another version may not have
    it, and then its default stays).
    """
    name = "_RTCRtpReceiver__jitter_buffer"
    old = getattr(receiver, name, None)
    if (
        not isinstance(old, JitterBuffer)
        or getattr(receiver, "_RTCRtpReceiver__kind", "") != "audio"
    ):
        return False
    setattr(receiver, name, AudioAtOnce(capacity=old.capacity))
    return True


class SignallingError(ValueError):
    """The client's offer or candidate cannot be used; the message says why in one line."""


def rtc_configuration(ice: list[dict[str, Any]]) -> RTCConfiguration:
    """The server side's ICE servers (the same list the browser gets)."""
    servers = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
        for s in ice
    ]
    return RTCConfiguration(iceServers=servers or None)


def check_offer(sdp: str) -> None:
    """Refuse an offer that cannot work before any peer connection is built."""
    if len(sdp) > MAX_SDP_BYTES:
        raise SignallingError(f"the SDP is {len(sdp)} bytes; the limit is {MAX_SDP_BYTES}")
    if not sdp.startswith("v=0"):
        raise SignallingError("the SDP must start with 'v=0' (is this an SDP offer?)")
    kinds = {line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")}
    missing = {"audio", "video"} - kinds
    if missing:
        raise SignallingError(
            f"the offer has no {' and no '.join(sorted(missing))} m-line; add recvonly or "
            "sendrecv audio and video transceivers"
        )
    if not _OFFER_SHAPE.match(sdp):
        raise SignallingError(
            "the SDP is malformed: 'v=0', then one line each, with 'm=audio …' and 'm=video …'"
        )


class RtcSession:
    """A peer connection, its tracks and tasks, and the engine session they serve."""

    def __init__(
        self,
        sid: str,
        engine_session: Any,
        *,
        ice: list[dict[str, Any]],
        queue_seconds: float = 0.5,
        avatar: str = "sample",
        on_closed: Callable[[RtcSession], Awaitable[None] | None] | None = None,
        client: str = "?",
        allow: Callable[[], bool] | None = None,
        max_speech_seconds: float = float("inf"),
    ) -> None:
        self.id = sid
        self.client = client  # the address that opened it (per-client limits)
        self.holds_slot = False  # holds one of the client's session slots (the registry's)
        self.draining = False  # the server is shutting down: no new turns
        self.speech_seconds = 0.0  # microphone audio received
        self.max_speech_seconds = max_speech_seconds
        self._allow = allow or (lambda: True)
        self._limited = False  # told the page it is over its rate (once per episode)
        self.session = engine_session
        self.avatar = avatar
        self.created = time.time()
        self.last_activity = time.monotonic()
        self.last_ping: float | None = None  # pages ping every 2 s; silence means it is gone
        self.pc = RTCPeerConnection(rtc_configuration(ice))
        self.pacer = MediaPacer()
        self.audio = AudioOutTrack(self.pacer, queue_seconds, encode=True, on_wire=self._on_wire)
        self.video = VideoOutTrack(self.pacer, engine_session.fps, queue_seconds)
        self.channel = None
        self.close_reason = ""
        self.latencies: list[dict[str, float]] = []
        self._rechunk = Rechunker()
        self._early: deque[dict[str, Any]] = deque(maxlen=32)  # events before the channel opens
        self._audio_started = False
        # The engine's latency event waiting for its audio to leave: (event, when it came,
        # the fallback timer), and whether the next loud audio frame should be marked.
        self._held: tuple[TurnLatency, float, asyncio.TimerHandle] | None = None
        self._mark_next = False
        self._tasks: set[asyncio.Task] = set()
        self._commands = 0  # ask/say/interrupt requests still being carried out
        self._closed = asyncio.Event()
        self._closing = False
        self._on_closed = on_closed
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", self._on_track)
        self.pc.on("datachannel", self._on_datachannel)

    # --- signalling ---------------------------------------------------------------------

    async def answer(self, sdp: str) -> RTCSessionDescription:
        """Apply the browser's offer and return the answer (ICE candidates gathered in it)."""
        check_offer(sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, KeyError… for bad SDP
            raise SignallingError(
                f"the SDP offer was refused: {exc or type(exc).__name__}"
            ) from exc
        # The offer's audio and video transceivers get our tracks (addTrack reuses them).
        self.pc.addTrack(self.audio)
        self.pc.addTrack(self.video)
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)  # aiortc gathers every candidate here
        await self.session.start()
        self._spawn(self._pump(), "pump")
        return self.pc.localDescription

    async def add_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        """A trickled remote ICE candidate (``candidate:...`` line); empty means end of list."""
        if not candidate:
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (ValueError, IndexError, AssertionError) as exc:  # aiortc asserts on bad lines
            raise SignallingError(f"the ICE candidate is malformed: {candidate[:80]!r}") from exc
        parsed.sdpMid = sdp_mid
        # Everything is bundled on the first m-line: a candidate naming neither goes there.
        parsed.sdpMLineIndex = 0 if sdp_mid is None and index is None else index
        try:
            await self.pc.addIceCandidate(parsed)
        except ValueError as exc:  # aioice refuses a candidate it cannot use
            raise SignallingError(f"the ICE candidate was refused: {exc}") from exc

    # --- inbound ------------------------------------------------------------------------

    def _on_track(self, track) -> None:
        if track.kind != "audio":
            return  # a camera is not used (yet); its frames are simply not read
        for receiver in self.pc.getReceivers():
            if receiver.track is track:
                low_latency_input(receiver)
        self._spawn(read_microphone(track, self._push_mic), "mic")

    def _push_mic(self, pcm, rate: int) -> None:
        seconds = len(pcm) / rate
        if self.speech_seconds + seconds > self.max_speech_seconds:
            if self.speech_seconds <= self.max_speech_seconds:  # past the limit: told once
                self.speech_seconds += seconds
                metrics.REFUSED.labels("speech_limit").inc()
                self._error(
                    "speech_limit",
                    f"this session has sent {self.max_speech_seconds:g} s of audio, its limit; "
                    "further audio is ignored",
                )
            return
        self.speech_seconds += seconds
        try:
            self.session.push_audio(pcm, rate)
        except ValueError as exc:  # the engine refused the audio; it says why in the log
            log.warning("session %s: microphone audio refused: %s", self.id, exc)
        except RuntimeError:  # the session closed under us: teardown is already under way
            pass

    def _on_datachannel(self, channel) -> None:
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._spawn(self.close("data channel closed"), "close"))
        self._early.appendleft({"type": "ready", "session_id": self.id, "avatar": self.avatar})
        if channel.readyState == "open":
            self.send({"type": "state", "state": getattr(self.session, "state", "idle")})
        else:
            channel.on("open", lambda: self.send({"type": "connected"}))

    def _error(self, code: str, message: str) -> None:
        self.send({"type": "error", "stage": "input", "code": code, "message": message})

    def _on_message(self, message: str | bytes) -> None:
        if not self._allow():
            # Over the client's or the session's rate: dropped, the page told once.
            metrics.REFUSED.labels("rate").inc()
            if not self._limited:
                self._limited = True
                self._error("rate_limited", "too many messages a second; messages are dropped")
            return
        self._limited = False
        if isinstance(message, bytes) or len(message) > MAX_DC_MESSAGE:
            self.send({"type": "error", "stage": "input", "message": "send JSON text messages"})
            return
        try:
            msg = json.loads(message)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            self.send({"type": "error", "stage": "input", "message": "malformed JSON message"})
            return
        if kind == "ping":
            self.last_ping = time.monotonic()
            self.send({"type": "pong", "t": msg.get("t")})
            return
        self.touch()
        if kind in ("ask", "say", "interrupt") and self._commands >= MAX_PENDING:
            self.send({"type": "error", "stage": "input", "message": "too many requests at once"})
            return
        if kind in ("ask", "say") and self.draining:
            self._error("busy", "the server is shutting down; no new turns")
            return
        if kind in ("ask", "say") and self.session.drive:
            # As the kiosk WebSocket server: the driver's microphone is the only voice.
            self._error("unavailable", f"{kind!r} is not available in a drive session")
            return
        if kind == "ask" and isinstance(msg.get("text"), str) and msg["text"].strip():
            self._spawn(self._guard(self.session.ask(msg["text"]), "ask"), "ask")
        elif kind == "say" and isinstance(msg.get("text"), str) and msg["text"].strip():
            self._spawn(self._guard(self.session.say(msg["text"]), "say"), "say")
        elif kind == "interrupt":
            self._spawn(self._guard(self.session.interrupt("user"), "interrupt"), "interrupt")
        elif kind == "bye":
            self._spawn(self.close("page closed"), "close")
        else:
            self.send({"type": "error", "stage": "input", "message": f"unknown message {kind!r}"})

    async def _guard(self, work: Awaitable[Any], what: str) -> None:
        self._commands += 1
        try:
            await work
        except ValueError as exc:  # empty/over-long text and the like: the user's mistake
            self.send({"type": "error", "stage": "input", "message": f"{what}: {exc}"})
        except RuntimeError as exc:  # the session closed under the request (or is driven)
            self._error("unavailable", f"{what}: {exc}")
        finally:
            self._commands -= 1

    # --- outbound -----------------------------------------------------------------------

    def send(self, payload: dict[str, Any]) -> None:
        """Send one JSON event to the page; before the data channel opens, keep the last few."""
        ch = self.channel
        if ch is not None and ch.readyState == "open":
            while self._early:
                ch.send(json.dumps(self._early.popleft()))
            ch.send(json.dumps(payload))
        elif ch is None:
            self._early.append(payload)

    async def _pump(self) -> None:
        """``session.frames()`` → track queues and data channel, until the session ends."""
        try:
            async for item in self.session.frames():
                if isinstance(item, AudioFrame):
                    self._audio(item)
                elif isinstance(item, VideoFrame):
                    self.video.put_image(item.image, item.index)
                else:
                    self._event(item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing session ends this conversation, not the server
            log.exception("session %s: output failed", self.id)
            self.send({"type": "error", "stage": "server", "message": str(exc)})
        self._spawn(self.close("session ended"), "close")

    def _audio(self, frame: AudioFrame) -> None:
        if not self._audio_started:
            self._audio_started = True
            self.audio.start_at(frame.pts, frame.sample_rate)
        for chunk in self._rechunk.push(frame.pcm, frame.sample_rate):
            mark = None
            # The turn is timed to its first audible 20 ms, as a listener hears it: Piper's
            # onsets ramp up, and the chunk holding the first non-zero sample was silent to
            # the ear (RMS under -80 dBFS) in 6 of 10 turns measured; the next one was not.
            if self._mark_next and frame.turn and audible(chunk):
                self._mark_next, mark = False, frame.turn
            self.audio.put_pcm(chunk, mark)

    def _hold_latency(self, event: TurnLatency) -> None:
        """Keep the engine's latency event until its first loud audio is on the wire."""
        self._release_latency()  # an older one still waiting goes as it is
        timer = asyncio.get_running_loop().call_later(WIRE_WAIT, self._release_latency)
        self._held = (event, self.pacer.now(), timer)
        self._mark_next = True

    def _on_wire(self, timing: WireTiming) -> None:
        if self._held is None:
            return
        event, held_at, _ = self._held
        parts = dict(event.parts)
        out = timing.parts()
        # From the engine's event (the frame left the session) to the packet on the wire.
        out["output"] = max(0.0, timing.sent - held_at)
        parts.update({k: round(v, 4) for k, v in out.items()})
        if "total" in parts:
            parts["engine_total"] = parts["total"]
            parts["total"] = round(parts["total"] + out["output"], 4)
        self._release_latency(TurnLatency(parts))

    def _release_latency(self, event: TurnLatency | None = None) -> None:
        if self._held is None:
            return
        held, _, timer = self._held
        timer.cancel()
        self._held, self._mark_next = None, False
        event = event or held
        self.latencies.append(dict(event.parts))
        metrics.observe_latency(event.parts)
        self.send(event.to_json())

    def _event(self, event: Any) -> None:
        to_json = getattr(event, "to_json", None)
        if to_json is None:
            return
        if isinstance(event, TurnLatency):
            self._hold_latency(event)
            return
        if isinstance(event, Interrupted):
            self.audio.clear()
            self.video.clear()
        elif isinstance(event, TranscriptEvent) and event.final:
            self.touch()
        elif isinstance(event, StateChanged) and event.state != "idle":
            self.touch()
        self.send(to_json())

    # --- lifecycle ----------------------------------------------------------------------

    def touch(self) -> None:
        """The user did something: push the idle deadline back."""
        self.last_activity = time.monotonic()

    @property
    def connection_state(self) -> str:
        """The peer connection's state (new, connecting, connected, failed, closed)."""
        return self.pc.connectionState

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            metrics.CONNECTED.inc()
        if state in ("failed", "closed"):
            self._spawn(self.close(f"connection {state}"), "close")

    def _spawn(self, coro, name: str) -> None:
        if self._closing and name != "close":
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=f"rtc-{self.id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str = "closed") -> None:
        """Tear everything down once; later calls wait for the first to finish."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        if self._held is not None:
            self._held[2].cancel()
            self._held = None
        log.info("session %s closing: %s", self.id, reason)
        with contextlib.suppress(Exception):
            self.send({"type": "closed", "reason": reason})
        self.audio.stop()
        self.video.stop()
        current = asyncio.current_task()
        others = [t for t in self._tasks if t is not current]
        for t in others:
            t.cancel()
        try:
            await self.pc.close()
        except Exception:  # a half-built connection may fail to close; it is gone either way
            log.debug("session %s: pc.close failed", self.id, exc_info=True)
        await asyncio.gather(*others, return_exceptions=True)
        try:
            await self.session.aclose()
        finally:
            self._closed.set()
            if self._on_closed is not None:
                result = self._on_closed(self)
                if asyncio.iscoroutine(result):
                    await result

    @property
    def quiet(self) -> bool:
        """No turn in flight: the avatar is idle or listening and no request is pending."""
        if self._commands or self.session.state not in ("idle", "listening"):
            return False
        # A reply asked for but not yet started leaves the state at "listening" for a moment;
        # ``busy`` also counts replies queued or being produced.
        return not self.session.busy

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has started."""
        return self._closing

    def describe(self) -> dict[str, Any]:
        """What the sessions API shows about this conversation."""
        return {
            "id": self.id,
            "avatar": self.avatar,
            "state": getattr(self.session, "state", "idle"),
            "connection": self.pc.connectionState,
            "created": self.created,
            "idle_seconds": round(time.monotonic() - self.last_activity, 1),
            "audio_frames_sent": self.audio.sent,
            "video_frames_sent": self.video.sent,
            "dropped": {"audio": self.audio.dropped, "video": self.video.dropped},
            "skipped": {"audio": self.audio.skipped, "video": self.video.skipped},
            "turns": len(self.latencies),
        }


def audible(chunk: np.ndarray) -> bool:
    """Whether a chunk of int16 PCM is loud enough to be heard (:data:`AUDIBLE_RMS`)."""
    return len(chunk) > 0 and rms(chunk) / INT16_FULL_SCALE >= AUDIBLE_RMS
