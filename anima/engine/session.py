"""One conversation: mic audio in; the avatar's audio, face and events out, continuously.

The wiring of a session::

    push_audio -> [bounded mic buffer] -> Listener -> transcripts, barge-in, finals
    final / ask -> Agent.respond (phrase by phrase) -> TTS -> captions -> lip-sync -> Utterance
    say / greeting ---------------------------------^
    Program (utterances, in order) -> SessionAir (paced loop, idle fill) -> Session.write
    Session.write -> listener.play (echo reference) + Outbox -> frames()

A drive session (``drive=True``, :mod:`anima.engine.drive`) replaces all of that with::

    push_audio -> DriveFeed (resample; audio-to-mouth network) -> DriveAir -> Session.write

Every queue is bounded: the mic buffer drops its oldest audio, the job queue makes ``say``
wait, the program keeps at most two utterances ahead of air, the outbox drops pictures first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import secrets
import threading
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from prometheus_client import Counter

from anima.asr.listener import BargeInEvent, DecodeFailed, Final, Listener, Partial
from anima.engine.air import FrameNote, Job, Outbox, ParamsFace, SessionAir, heard_chars
from anima.events import (
    ErrorEvent,
    FaceParams,
    HandoffEvent,
    Interrupted,
    LimitReached,
    StateChanged,
    TranscriptEvent,
    TurnLatency,
)
from anima.frames import (
    AudioFrame,
    MediaClock,
    MouthShape,
    TextChunk,
    TurnEnd,
    VideoFrame,
)
from anima.lipsync.stage import LipSyncStage
from anima.live.produce import fill_utterance
from anima.live.program import Program, Utterance
from anima.pipeline import Clock, MonotonicClock, Pipeline, cancel_and_wait, run_blocking
from anima.tts.stage import Captions, SpeechStage

if TYPE_CHECKING:
    from anima.engine import Engine
    from anima.render.avatar import Avatar

log = logging.getLogger(__name__)

Media = Literal["video", "params", "events"]
Listening = Literal["always", "ptt"]
MEDIA_MODES = ("video", "params", "events")

MIC_DROPPED = Counter("anima_session_mic_dropped_samples_total", "Mic samples dropped (full).")

_MIC_SECONDS = 5.0  # mic audio buffered ahead of the listener before the oldest is dropped
_OUT_SECONDS = 4.0  # output buffered for a slow consumer before pictures are dropped
_JOBS = 8  # things to say queued behind the current one
_PTT_TAIL = 0.8  # silence fed after push-to-talk release, so the utterance ends at once
_GREET_COOLDOWN = 20.0  # seconds before a new approach is greeted again


class SessionClosed(RuntimeError):
    """The session was closed; it cannot be used any more."""


class Session:
    """A conversation with the avatar; create with :meth:`Engine.session`, then :meth:`start`."""

    def __init__(
        self,
        engine: Engine,
        avatar: str | Avatar | None,
        *,
        user_id: str | None = None,
        media: Media = "video",
        realtime: bool = True,
        clock: Clock | None = None,
        greet: bool = True,
        listening: Listening = "always",
        drive: bool = False,
    ) -> None:
        if media not in MEDIA_MODES:
            raise ValueError(f"media must be one of {', '.join(MEDIA_MODES)}, not {media!r}")
        if listening not in ("always", "ptt"):
            raise ValueError(f"listening must be 'always' or 'ptt', not {listening!r}")
        if drive and listening == "ptt":
            raise ValueError("a drive session has no push-to-talk: the driver's audio always plays")
        self.engine = engine
        self.drive = drive  # the pushed audio is the avatar's voice (anima.engine.drive)
        self.id = secrets.token_urlsafe(9)
        self.media: Media = media
        self.realtime = realtime
        self.clock: Clock = clock or MonotonicClock()
        self.greet = greet and not drive
        self.listening: Listening = listening
        self.user_id = user_id
        self.state = "idle"
        self.fps = engine.settings.render.fps
        self.dropped_audio = 0  # mic samples dropped because the listener fell behind
        self._avatar_spec = avatar
        self._started = False
        self._closed = False
        self._tasks: list[asyncio.Task[Any]] = []
        self._feeders: set[asyncio.Task[Any]] = set()
        self._mic: deque[tuple[np.ndarray, int, int]] = deque()
        self._mic_samples = 0
        self._mic_ready: asyncio.Event | None = None
        self._jobs: asyncio.Queue[Job] | None = None
        self._by_turn: dict[int, Job] = {}
        self._producing: Utterance | None = None
        self._ptt = False
        self._present = False
        self._last_greet = -1e9
        self._render_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._render_job: concurrent.futures.Future[Any] | None = None
        self._faulted_turn = -1  # the last turn a fault was reported for (one report a turn)

    # -- properties --------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        """Output audio rate (the voice's)."""
        return self.engine.voice.sample_rate

    @property
    def dropped_frames(self) -> int:
        """Output items dropped because the consumer of :meth:`frames` was slow."""
        return self._outbox.dropped if self._started else 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start output (the idle avatar streams at once) and speak the greeting if ``greet``."""
        if self._closed:
            raise SessionClosed("the session is closed")
        if self._started:
            return
        if self.drive:
            await self._start_drive()
            return
        engine = self.engine
        await engine.load()
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._loop = loop
        voice = engine.voice
        self._mediaclock = MediaClock(voice.sample_rate, self.fps)
        render = await self._renderer(self._avatar_spec)
        self._captions = Captions()
        from anima.session import lipsync_for  # XTTS has no phoneme timings: audio network

        self._lipsync = LipSyncStage(self._mediaclock, lipsync_for(voice))
        self._pipe = Pipeline(
            [SpeechStage(voice, engine.settings.voice.timeout), self._captions, self._lipsync],
            maxsize=16,
        )
        self._program = Program(ahead=2)
        self._outbox = Outbox(loop, maxsize=int(_OUT_SECONDS * self.fps * 3))
        self._air = SessionAir(
            self._program,
            render,
            self,
            self._mediaclock,
            clock=self.clock,
            realtime=self.realtime,
            preroll=0.1,
            lead_out=0.0,
            offload=self.media == "video",
        )
        self._air.on_start = self._on_air_start
        self._air.on_end = self._on_air_end
        self._air.on_events = self._on_air_events
        self._agent = engine.new_agent(self.id)
        self._listener = Listener(engine.recognizer, engine.listener_config, clock=self.clock)
        self._jobs = asyncio.Queue(_JOBS)
        self._mic_ready = asyncio.Event()
        await self._pipe.__aenter__()
        self._started = True
        self._tasks = [
            asyncio.create_task(self._run_air(), name=f"session:{self.id}:air"),
            asyncio.create_task(self._produce(), name=f"session:{self.id}:produce"),
            asyncio.create_task(self._listen(), name=f"session:{self.id}:listen"),
        ]
        self.state = ""  # the first state is always announced, even "idle"
        self._set_state(self._rest_state())
        if self.greet:
            await self._greet()

    async def _start_drive(self) -> None:
        """Drive mode: the output loop plays the driver's audio and mouth (no listener, brain
        or voice synthesis, so none of their models are loaded)."""
        from anima.engine.drive import DriveAir, DriveFeed
        from anima.lipsync.neural import shared_model

        engine = self.engine
        self._loop_thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()
        voice = await run_blocking(lambda: engine.voice)  # only for the output rate
        model = await run_blocking(shared_model)
        self._mediaclock = MediaClock(voice.sample_rate, self.fps)
        render = await self._renderer(self._avatar_spec)
        self._program = Program(ahead=2)  # stays empty: nothing is synthesised
        self._outbox = Outbox(self._loop, maxsize=int(_OUT_SECONDS * self.fps * 3))
        self._drive = DriveFeed(self._mediaclock, model, realtime=self.realtime)
        self._air = DriveAir(
            self._drive,
            self._program,
            render,
            self,
            self._mediaclock,
            clock=self.clock,
            realtime=self.realtime,
            lead_out=0.0,
            offload=self.media == "video",
        )
        self._air.on_state = self._state_events
        self._air.on_events = self._on_air_events
        self._started = True
        self._tasks = [asyncio.create_task(self._run_air(), name=f"session:{self.id}:drive")]
        self.state = ""  # the first state is always announced
        self._set_state("idle")

    def end_audio(self) -> None:
        """Drive mode: the driver stopped for good; the audio held back for filtering and
        look-ahead plays out now and :meth:`frames` ends after the last frame."""
        self._check_open()
        if not self.drive or not self._started:
            raise RuntimeError("end_audio() is for a started drive session")
        self._drive.end()

    async def aclose(self) -> None:
        """Tear down: cancel every task, free buffers, release the engine slot. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._started:
                self._air.stop.set()
                await cancel_and_wait([*self._tasks, *self._feeders])
                self._tasks, self._feeders = [], set()
                if not self.drive:
                    await self._pipe.__aexit__(None, None, None)
                    await self._listener.aclose()
                self._outbox.close()
                if self._render_pool is not None:
                    # A hung render keeps its thread until it returns; nothing waits for it.
                    self._render_pool.shutdown(wait=False, cancel_futures=True)
                self._air.notes.clear()
            self._mic.clear()
            self._by_turn.clear()
        finally:
            self.engine._release(self)  # noqa: SLF001 - the engine owns the slot

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- input -------------------------------------------------------------------------------

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
        self._mic.append((pcm, rate, channels))
        self._mic_samples += pcm.size // channels * 16_000 // rate
        limit = int(_MIC_SECONDS * 16_000)
        while self._mic_samples > limit and len(self._mic) > 1:
            old, r, c = self._mic.popleft()
            n = old.size // c * 16_000 // r
            self._mic_samples -= n
            self.dropped_audio += n
            MIC_DROPPED.inc(n)
        if self._mic_ready is not None:
            self._mic_ready.set()

    async def ask(self, text: str) -> None:
        """Typed user text: answered like a final transcript (interrupts current speech)."""
        text = self._check_text(text)
        await self._interrupt_if_busy("ask")
        await self._enqueue(Job("reply", text, started=self.clock.now()))

    async def say(self, text: str, emotion: str = "neutral") -> None:
        """Make the avatar say exactly this (no brain), queued after current speech."""
        text = self._check_text(text)
        await self._enqueue(Job("say", text, emotion, started=self.clock.now()))

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

    async def set_avatar(self, avatar: str | Avatar) -> None:
        """Show another avatar from the next frame on (video mode; a no-op for params/events)."""
        self._check_open()
        if self._started and self.media == "video":
            self._air.render = await self._renderer(avatar)
        elif isinstance(avatar, str) and avatar != "sample":
            await run_blocking(self.engine.avatars.get, avatar)  # unknown names fail here too
        self._avatar_spec = avatar

    def set_persona(self, overrides: dict[str, Any]) -> None:
        """Change who the avatar is (keys of the ``persona`` settings) from the next reply on."""
        self._check_open()
        self.engine.check_persona(overrides)
        if self._started and not self.drive:
            self._agent.persona = self.engine.persona(overrides)

    # -- output ------------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[VideoFrame | AudioFrame | FaceParams | Any]:
        """Everything for the client in presentation order (see the module docstring)."""
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
        if self.media == "video":
            self._outbox.put(VideoFrame(turn=note.turn, image=image, index=index))
        else:
            self._outbox.put(dataclasses.replace(image, turn=note.turn, emotion=note.emotion))

    def _event(self, event: Any) -> None:
        if not self._closed and self._started:
            self._outbox.put(event)

    # -- the on-air loop ---------------------------------------------------------------------

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

    @property
    def busy(self) -> bool:
        """A reply is queued, being produced or on air (False before start and after close)."""
        if not self._started or self._closed:
            return False
        queued = self._jobs is not None and not self._jobs.empty()
        return bool(
            queued or self._producing is not None or self.state == "speaking" or len(self._program)
        )

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
            self._render_pool = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix=f"render-{self.id}"
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

    # -- faults ------------------------------------------------------------------------------

    def _fault_threadsafe(self, source: str, message: str) -> None:
        if self._closed:
            return
        if threading.get_ident() == self._loop_thread:
            self._fault(source, message)
        else:
            self._loop.call_soon_threadsafe(self._fault, source, message)

    def _fault(self, source: str, message: str) -> None:
        """A backend failed mid-turn: report it once, cut the turn, apologise (loop thread)."""
        if self._closed or not self._started:
            return
        on_air = self._program.playing()
        job = on_air.source if isinstance(on_air, Utterance) else None
        turn = job.turn if isinstance(job, Job) else 0
        if turn == self._faulted_turn:
            return  # one report per turn, not one per frame
        self._faulted_turn = turn
        log.warning("%s failed: %s", source, message)
        self._event(ErrorEvent(source, message, True))
        if isinstance(job, Job) and job.kind != "apology":
            task = self._loop.create_task(self._apologise(), name=f"session:{self.id}:fault")
            self._feeders.add(task)
            task.add_done_callback(self._feeders.discard)

    async def _apologise(self) -> None:
        """Cut what is being said and say the persona's apology instead."""
        if self._closed:
            return
        await self.interrupt("error")
        assert self._jobs is not None
        with contextlib.suppress(asyncio.QueueFull):
            self._jobs.put_nowait(
                Job("apology", self._agent.persona.apology, started=self.clock.now())
            )

    # -- production --------------------------------------------------------------------------

    async def _enqueue(self, job: Job) -> None:
        self._check_open()
        if not self._started:
            raise RuntimeError("start() the session first")
        assert self._jobs is not None
        await self._jobs.put(job)

    async def _greet(self) -> None:
        self._last_greet = self.clock.now()
        await self._enqueue(Job("greet", "", started=self.clock.now()))

    def _greet_nowait(self) -> None:
        assert self._jobs is not None
        self._jobs.put_nowait(Job("greet", "", started=self.clock.now()))
        self._last_greet = self.clock.now()

    async def _interrupt_if_busy(self, reason: str) -> None:
        if self.busy:
            await self.interrupt(reason)

    async def _produce(self) -> None:
        assert self._jobs is not None
        while True:
            job = await self._jobs.get()
            await self._program.room()
            try:
                await self._produce_job(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one failed answer must not end the conversation
                log.warning("producing %s failed: %s", job.kind, exc)
                self._event(ErrorEvent("tts", str(exc), True))

    async def _produce_job(self, job: Job) -> None:
        utt = Utterance(job.text, job.emotion, source=job)
        self._lipsync.samples = 0  # utterance time starts at 0 (see anima.live.program)
        turn = self._pipe.next_turn()
        job.turn = turn
        self._by_turn[turn] = job
        while len(self._by_turn) > 16:  # bounded: forget the oldest (cut, never played)
            self._by_turn.pop(next(iter(self._by_turn)))
        if job.kind == "reply" and self.state != "speaking":
            self._set_state("thinking")
        self._producing = utt
        self._program.add(utt)

        def first_audio(frame: AudioFrame) -> None:  # latency: first phrase -> its first audio
            if job.first_audio is None:
                job.first_audio = self.clock.now()
                if "phrase_at" in job.parts:
                    job.parts["tts_first_chunk"] = job.first_audio - job.parts.pop("phrase_at")

        feeder = asyncio.create_task(self._feed(job, turn), name=f"session:{self.id}:feed")
        try:
            errors = await fill_utterance(
                self._pipe.frames(),
                utt,
                turn,
                feeder=feeder,
                program=self._program,
                caption=self._captions.take,
                on_audio=first_audio,
            )
        finally:
            self._producing = None
        failed = [f"{e.stage}: {e.message}" for e in errors]
        if failed:
            self._event(ErrorEvent("tts", failed[0], True))
            if job.kind != "apology":
                with contextlib.suppress(asyncio.QueueFull):
                    assert self._jobs is not None
                    self._jobs.put_nowait(
                        Job("apology", self._agent.persona.apology, started=self.clock.now())
                    )
        if not utt.mouths and utt.started_frame is None:
            self._by_turn.pop(turn, None)
            if self._jobs is not None and self._jobs.empty() and self.state != "speaking":
                self._set_state(self._rest_state())

    async def _feed(self, job: Job, turn: int) -> None:
        push = self._pipe.push
        try:
            if job.kind == "greet":
                for phrase in self._agent.greeting(self.user_id):
                    await push(TextChunk(turn=turn, text=phrase.text, emotion=phrase.emotion))
            elif job.kind == "reply":
                await self._feed_reply(job, turn)
            else:
                await push(TextChunk(turn=turn, text=job.text, emotion=job.emotion))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing brain ends the answer with an apology
            log.warning("brain failed: %s", exc)
            self._event(ErrorEvent("brain", str(exc), True))
            await push(TextChunk(turn=turn, text=self._agent.persona.apology))
        finally:
            with contextlib.suppress(asyncio.CancelledError):
                await push(TurnEnd(turn=turn))

    async def _feed_reply(self, job: Job, turn: int) -> None:
        from anima.dialogue.agent import BudgetSpent, HandoffRequested, TurnFailed
        from anima.dialogue.brain import Phrase

        asked = self.clock.now()
        events = self._agent.respond(job.text, user_id=self.user_id)
        async with contextlib.aclosing(events) as stream:
            async for ev in stream:
                if isinstance(ev, Phrase):
                    if not ev.text.strip():
                        continue
                    if "first_phrase" not in job.parts:
                        now = self.clock.now()
                        job.parts["first_phrase"] = now - asked
                        job.parts["phrase_at"] = now
                    await self._pipe.push(TextChunk(turn=turn, text=ev.text, emotion=ev.emotion))
                elif isinstance(ev, HandoffRequested):
                    self._event(HandoffEvent(ev.reason))
                elif isinstance(ev, TurnFailed):
                    self._event(ErrorEvent("brain", ev.message, ev.retryable))
                elif isinstance(ev, BudgetSpent):  # issue 9: the LLM budget is spent
                    self._event(LimitReached("llm_tokens", ev.used, ev.allowed))

    def _report_latency(self, job: Job) -> None:
        job.reported = True
        now = self.clock.now()
        parts = {k: v for k, v in job.parts.items() if k != "phrase_at"}
        if job.first_audio is not None:
            parts["first_frame"] = max(0.0, now - job.first_audio)
        parts["total"] = max(0.0, now - job.started)
        self._event(TurnLatency(parts))

    # -- listening ---------------------------------------------------------------------------

    async def _listen(self) -> None:
        assert self._mic_ready is not None
        from anima.asr.audio import AudioError

        while True:
            if not self._mic:
                # No audio coming: still deliver what a decode in flight finds (a final after
                # the client stopped streaming), without delaying new audio behind it.
                await self._wait_mic_or_decode()
                continue
            pcm, rate, channels = self._mic.popleft()
            self._mic_samples -= pcm.size // channels * 16_000 // rate
            try:
                events = await self._listener.feed(pcm, rate, channels)
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

    # -- checks ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosed("the session is closed")

    def _check_text(self, text: str) -> str:
        self._check_open()
        if self.drive:
            raise RuntimeError("a drive session speaks only with the driver's audio (no say/ask)")
        if not isinstance(text, str):
            raise ValueError("text must be a string")
        text = " ".join(text.split())
        if not text:
            raise ValueError("the text is empty")
        limit = self.engine.settings.limits.max_text_chars
        if len(text) > limit:
            raise ValueError(f"the text is {len(text)} characters; the limit is {limit}")
        return text

    def __repr__(self) -> str:
        return f"Session(id={self.id!r}, media={self.media!r}, state={self.state!r})"
