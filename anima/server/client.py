"""A Python WebRTC client of ``anima serve`` (aiortc), for tests and ``anima bench rtc``.

It does what the page does: offers a microphone track (fed from PCM you queue, silence
otherwise), receives the avatar's audio and video, opens the ``events`` data channel, and
measures voice-to-face latency where the user is: from the moment the last sample of a queued
utterance is sent to the first received avatar audio frame with sound in it.

Audio is counted when it arrives: the client's receiver hands each packet on at once
(:func:`anima.server.rtc.low_latency_input`) instead of through aiortc's playout buffer, which
holds every frame until four newer packets are in (80 ms on every reply, the client's own
delay, measured with the peer kit: docs/bench/peer-2026-12-06c). A browser adds its own playout
delay on top, adaptive and usually shorter.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections import deque
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

RATE = 48_000
FRAME = 960  # 20 ms
SOUND = 300  # peak int16 level that counts as sound in received audio


class MicTrack(MediaStreamTrack):
    """A fake microphone: queued PCM at real-time pace, silence in between."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[tuple[np.ndarray, int | None]] = deque()
        self._pts = 0
        self._start: float | None = None
        self.speech_end: float | None = None  # monotonic time the last queued sample left
        self._time_base = fractions.Fraction(1, RATE)

    def speak(self, pcm: np.ndarray, sample_rate: int) -> None:
        """Queue ``pcm`` (int16 mono) to be "spoken" into the microphone."""
        if sample_rate != RATE:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm, np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            frame.sample_rate = sample_rate
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in resampler.resample(frame)])
        loud = np.flatnonzero(np.abs(pcm) > SOUND)
        last = int(loud[-1]) + 1 if len(loud) else 0  # the end of the speech, not of its tail
        pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, np.int16)])
        for i in range(0, len(pcm), FRAME):
            end = last - i if i < last <= i + FRAME else None
            self._pending.append((pcm[i : i + FRAME], end))
        self.speech_end = None

    @property
    def speaking(self) -> bool:
        """True until the last sample of queued speech has been sent."""
        return bool(self._pending) and self.speech_end is None

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms, paced on the wall clock."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._pts / RATE
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._pending:
            pcm, end = self._pending.popleft()
            if end is not None:  # this frame holds the last sample of speech
                self.speech_end = time.monotonic() + end / RATE
        else:
            pcm = np.zeros(FRAME, np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += FRAME
        return frame


class RtcClient:
    """One conversation with an ``anima serve`` at ``base_url``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        avatar: str | None = None,
        greet: bool = True,
        send_audio: bool = True,
        drive: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.avatar = avatar
        self.greet = greet
        self.send_audio = send_audio
        self.drive = drive  # the microphone is the avatar's voice (no answers)
        self.pc = RTCPeerConnection()
        self.mic = MicTrack()
        self.session_id: str | None = None
        self.answer: dict[str, Any] = {}
        self.events: list[dict[str, Any]] = []
        self.video_frames = 0
        self.video_sizes: set[tuple[int, int]] = set()
        self.audio_frames = 0
        self.sound_frames = 0
        self.latencies: list[float] = []  # seconds, voice-to-face as heard here
        self._sound_since: float | None = None
        self._cursor: dict[str, int] = {}
        self._new_event = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.channel = None
        self.opened = asyncio.Event()
        self.replied = asyncio.Event()  # set when a voice-to-face latency was measured

    async def connect(self, within: float = 20.0) -> dict[str, Any]:
        """Offer, get the answer, and wait for the data channel to open; returns the answer."""
        if self.send_audio:
            self.pc.addTransceiver(self.mic, direction="sendrecv")
        else:  # a client without a microphone (or one that never sends any audio)
            self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("open", self.opened.set)
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {
            "sdp": self.pc.localDescription.sdp,
            "type": "offer",
            "avatar": self.avatar,
            "greet": self.greet,
        }
        if self.drive:
            body["drive"] = True
        if self.token:
            body["token"] = self.token
        async with httpx.AsyncClient(timeout=within) as http:
            r = await http.post(f"{self.base_url}/api/offer", json=body)
        if r.status_code != 200:
            raise ConnectionError(f"{r.status_code}: {r.text}")
        answer = r.json()
        self.answer = answer
        self.session_id = answer["session_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(self.opened.wait(), within)
        return answer

    def _on_track(self, track: MediaStreamTrack) -> None:
        from anima.server.rtc import low_latency_input

        if track.kind == "audio":
            for receiver in self.pc.getReceivers():
                if receiver.track is track:
                    low_latency_input(receiver)
        reader = self._read_audio if track.kind == "audio" else self._read_video
        self._tasks.append(asyncio.get_running_loop().create_task(reader(track)))

    async def _read_video(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.video_frames += 1
                self.video_sizes.add((frame.width, frame.height))

    async def _read_audio(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.audio_frames += 1
                loud = int(np.abs(frame.to_ndarray()).max(initial=0)) > SOUND
                if loud:
                    self.sound_frames += 1
                    end = self.mic.speech_end
                    if end is not None and not self.mic.speaking:
                        self.latencies.append(time.monotonic() - end)
                        self.replied.set()
                        self.mic.speech_end = None

    def _on_message(self, message: str) -> None:
        self.events.append(json.loads(message))
        self._new_event.set()

    async def wait_event(self, kind: str, within: float = 30.0, **match: Any) -> dict[str, Any]:
        """The first event of type ``kind`` (fields equal to ``match``) not yet returned by an
        earlier call for ``kind``; waits up to ``within`` seconds for it to arrive."""
        deadline = time.monotonic() + within
        while True:
            start = self._cursor.get(kind, 0)
            for i in range(start, len(self.events)):
                event = self.events[i]
                if event.get("type") == kind and all(event.get(k) == v for k, v in match.items()):
                    self._cursor[kind] = i + 1
                    return event
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [e.get("type") for e in self.events[-20:]]
                raise TimeoutError(f"no {kind!r} event {match or ''} in {within} s; last: {seen}")
            self._new_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), left)

    def send(self, payload: dict[str, Any]) -> None:
        """Send a JSON message on the data channel."""
        self.channel.send(json.dumps(payload))

    async def close(self) -> None:
        """Hang up (the server sees the data channel and connection close)."""
        self.mic.stop()
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
