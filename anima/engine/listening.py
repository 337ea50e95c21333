"""What the user said and whose turn it is: the microphone, the listener, barge-in, turns.

Mic audio is buffered (bounded: the oldest is dropped) and fed to the
:class:`~anima.asr.listener.Listener`; its partials and finals become transcript events, a final
becomes a reply job, barge-in and push-to-talk cut the avatar off, and presence greets a person
who approaches. A part of :class:`anima.engine.session.Session`: a mixin whose state lives in
``Session.__init__``, kept in its own file so each idea of the conversation has one room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import numpy as np
from prometheus_client import Counter

from anima.air.program import Utterance
from anima.asr.listener import BargeInEvent, DecodeFailed, Final, Partial
from anima.engine.output import Job, heard_chars
from anima.events import ErrorEvent, Interrupted, TranscriptEvent

log = logging.getLogger("anima.engine.session")  # one logger for the whole conversation

MIC_DROPPED = Counter("anima_session_mic_dropped_samples_total", "Mic samples dropped (full).")

_MIC_SECONDS = 5.0  # mic audio buffered ahead of the listener before the oldest is dropped
_PTT_TAIL = 0.8  # silence fed after push-to-talk release, so the utterance ends at once
_GREET_COOLDOWN = 20.0  # seconds before a new approach is greeted again


class TurnTaking:
    """The session's input side: mic audio, listening, interrupting, push-to-talk, presence."""

    def push_audio(self, pcm: np.ndarray, sample_rate: int, channels: int = 1) -> None:
        """Mic audio (int16 or float32, any rate); non-blocking; bounded (oldest dropped).

        In a drive session the audio is the avatar's voice: it is checked here (AudioError, a
        ValueError, says why it cannot be used) and plays about a frame later.
        """
        self._check_open()
        if self.drive:
            if not self._started:
                raise RuntimeError("start() the drive session before pushing audio")
            self._drive.push(np.asarray(pcm), int(sample_rate), int(channels))
            self.dropped_audio = self._drive.dropped  # at the output rate: a live backlog
            return
        if self.listening == "ptt" and not self._ptt:
            return  # push-to-talk released: the microphone is not listened to
        self._queue_mic(np.asarray(pcm), int(sample_rate), int(channels))

    def _queue_mic(self, pcm: np.ndarray, rate: int, channels: int) -> None:
        if rate <= 0 or channels <= 0:
            raise ValueError("sample_rate and channels must be positive")
        self._mic.append((pcm, rate, channels, self.clock.now()))
        self._mic_samples += pcm.size // channels * 16_000 // rate
        limit = int(_MIC_SECONDS * 16_000)
        while self._mic_samples > limit and len(self._mic) > 1:
            old, r, c, _ = self._mic.popleft()
            n = old.size // c * 16_000 // r
            self._mic_samples -= n
            self.dropped_audio += n
            MIC_DROPPED.inc(n)
        if self._mic_ready is not None:
            self._mic_ready.set()

    async def interrupt(self, reason: str = "user") -> None:
        """Stop speaking now: the turn's remaining frames are discarded, queued speech dropped."""
        self._check_open()
        if not self._started or self.drive:  # a drive session has no speech of its own to cut
            return
        jobs = self._jobs
        assert jobs is not None
        while not jobs.empty():
            jobs.get_nowait()
        taken = self._program.take_pending()
        on_air = self._program.cut_playing()
        working = self._producing
        if working is not None and (working is on_air or any(s is working for s in taken)):
            await self._pipe.interrupt(reason)
        self._listener.stop_playback()
        for seg in [on_air, *taken]:
            if not isinstance(seg, Utterance) or not isinstance(seg.source, Job):
                continue
            job = seg.source
            heard = (
                heard_chars(seg, self._mediaclock.sample_of_frame(seg.played))
                if seg is on_air
                else 0
            )
            if job.kind == "reply":
                self._agent.interrupted(heard)
            self._outbox.drop_media(job.turn)
            self._by_turn.pop(job.turn, None)
            self._event(Interrupted(job.turn, reason, heard))
        self._set_state(self._rest_state())

    async def _interrupt_if_busy(self, reason: str) -> None:
        if self.busy:
            await self.interrupt(reason)

    @property
    def busy(self) -> bool:
        """A reply is queued, being produced or on air (False before start and after close)."""
        if not self._started or self._closed:
            return False
        queued = self._jobs is not None and not self._jobs.empty()
        return bool(
            queued or self._producing is not None or self.state == "speaking" or len(self._program)
        )

    def presence(self, present: bool) -> None:
        """A person approached / left (kiosk sensor): greet on approach when idle."""
        self._check_open()
        if self.drive:  # the driver does the talking
            self._present = present
            return
        if present and not self._present:
            self._present = True
            queued = self._jobs is not None and not self._jobs.empty()
            quiet = self._started and self.state in ("idle", "listening") and not queued
            if quiet and self.clock.now() - self._last_greet >= _GREET_COOLDOWN:
                with contextlib.suppress(asyncio.QueueFull):
                    self._greet_nowait()
        elif not present and self._present:
            self._present = False
            if self._started:
                self._agent.reset()  # the next person is a new visitor

    def ptt_start(self) -> None:
        """Push-to-talk pressed: listen (and stop the avatar if it is speaking)."""
        self._check_open()
        if self.drive:
            raise RuntimeError("a drive session has no push-to-talk")
        self._ptt = True
        if self._started and self.state == "speaking":
            task = asyncio.get_running_loop().create_task(self.interrupt("ptt"))
            self._feeders.add(task)
            task.add_done_callback(self._feeders.discard)
        self._set_state("listening")

    def ptt_stop(self) -> None:
        """Push-to-talk released: what was said is answered now (no endpoint wait)."""
        self._check_open()
        if not self._ptt:
            return
        self._ptt = False
        # Silence ends the open utterance at once; the microphone is then ignored.
        self._queue_mic(np.zeros(int(_PTT_TAIL * 16_000), np.int16), 16_000, 1)
        if self.state == "listening":
            self._set_state("idle")

    async def _listen(self) -> None:
        assert self._mic_ready is not None
        from anima.asr.audio import AudioError

        while True:
            if not self._mic:
                # No audio coming: still deliver what a decode in flight finds (a final after
                # the client stopped streaming), without delaying new audio behind it.
                await self._wait_mic_or_decode()
                continue
            pcm, rate, channels, at = self._mic.popleft()
            self._mic_samples -= pcm.size // channels * 16_000 // rate
            try:
                events = await self._listener.feed(pcm, rate, channels, at)
            except AudioError as exc:
                self._event(ErrorEvent("input", str(exc), True))
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the recogniser failing must not end the session
                log.warning("listening failed: %s", exc)
                self._event(ErrorEvent("listen", str(exc), True))
                continue
            for ev in events:
                await self._on_listen(ev)

    async def _wait_mic_or_decode(self) -> None:
        assert self._mic_ready is not None
        self._mic_ready.clear()
        if self._mic:
            return
        mic = asyncio.ensure_future(self._mic_ready.wait())
        decoding = self._listener._task is not None  # noqa: SLF001 - a decode is in flight
        drain = asyncio.ensure_future(self._listener.drain()) if decoding else None
        try:
            waiting = {mic} if drain is None else {mic, drain}
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            mic.cancel()
            if drain is not None and not drain.done():
                drain.cancel()
        if drain is not None and drain.done() and not drain.cancelled():
            for ev in drain.result():
                await self._on_listen(ev)

    async def _on_listen(self, ev: Any) -> None:
        if isinstance(ev, Partial):
            t = ev.transcript
            self._event(TranscriptEvent(t.text, False, t.start, t.end, t.language))
        elif isinstance(ev, Final):
            t, m = ev.transcript, ev.metrics
            self._event(TranscriptEvent(t.text, True, t.start, t.end, t.language))
            if not t.text.strip():
                return
            await self._interrupt_if_busy("user")
            now = self.clock.now()
            job = Job(
                "reply",
                t.text,
                started=now - m.asr_latency - m.endpoint_delay,
                parts={"endpoint": m.endpoint_delay, "asr": m.asr_latency},
            )
            await self._enqueue(job)
        elif isinstance(ev, DecodeFailed):
            # The user spoke but could not be understood: say so, and keep listening.
            self._event(ErrorEvent("listen", ev.message, True))
            await self._interrupt_if_busy("error")
            assert self._jobs is not None
            with contextlib.suppress(asyncio.QueueFull):
                self._jobs.put_nowait(
                    Job("apology", self._agent.persona.apology, started=self.clock.now())
                )
        elif isinstance(ev, BargeInEvent):
            on_air = self._program.playing()
            job = on_air.source if isinstance(on_air, Utterance) else None
            if isinstance(job, Job) and job.turn == ev.turn:
                await self.interrupt("barge-in")
