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
import secrets
import threading
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from anima.air.program import Program, Utterance
from anima.asr.listener import Listener
from anima.engine.faults import Faults
from anima.engine.listening import TurnTaking
from anima.engine.output import Job, OnAir, Outbox, SessionAir
from anima.engine.speaking import Speaking
from anima.frames import MediaClock
from anima.lipsync.stage import LipSyncStage
from anima.pipeline import Clock, MonotonicClock, Pipeline, cancel_and_wait, run_blocking
from anima.tts.stage import Captions, SpeechStage

if TYPE_CHECKING:
    from anima.engine import Engine
    from anima.render.avatar import Avatar

Media = Literal["video", "params", "events"]
Listening = Literal["always", "ptt"]
MEDIA_MODES = ("video", "params", "events")

_OUT_SECONDS = 4.0  # output buffered for a slow consumer before pictures are dropped
_JOBS = 8  # things to say queued behind the current one


class SessionClosed(RuntimeError):
    """The session was closed; it cannot be used any more."""


class Session(TurnTaking, Speaking, OnAir, Faults):
    """A conversation with the avatar; create with :meth:`Engine.session`, then :meth:`start`.

    This class holds the state and the lifecycle; the rest lives in one room per idea:
    :class:`~anima.engine.listening.TurnTaking` (what the user said, whose turn it is),
    :class:`~anima.engine.speaking.Speaking` (what the avatar says),
    :class:`~anima.engine.output.OnAir` (what goes on air) and
    :class:`~anima.engine.faults.Faults` (how faults become apologies).
    """

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
        self._mic: deque[tuple[np.ndarray, int, int, float]] = deque()
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
        from anima.render_job import lipsync_for  # XTTS has no phoneme timings: audio network

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
            audio_first=self.realtime and self.media != "events",
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

    # -- avatar and persona --------------------------------------------------------------------

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
