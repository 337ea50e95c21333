"""The SDK's engine: every model loaded once, shared by the conversations (sessions) it opens.

>>> import asyncio, anima
>>> async def main():                                                 # doctest: +SKIP
...     async with anima.Engine.from_config() as engine:
...         session = engine.session(media="params")
...         await session.start()
...         await session.say("Welcome!")
...         async for item in session.frames():
...             print(item)

Loaded once per engine: the voice, the speech recogniser (and VAD), the brain (language model,
knowledge base, intents, persona, memory, audit log) and the prepared sample portrait. Each
session has only per-conversation state: its listener stream, its dialogue history, its face
animator and its output queue.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anima.config import PersonaSettings, Settings
from anima.engine.session import Listening, Media, Session, SessionClosed
from anima.pipeline import Clock, run_blocking
from anima.render.avatar import Avatar, AvatarError, AvatarStore
from anima.tts.cache import CachedVoice

if TYPE_CHECKING:
    from anima.dialogue.agent import Agent
    from anima.dialogue.persona import Persona
    from anima.render.animator import FaceAnimator
    from anima.tts import Voice

log = logging.getLogger(__name__)

SAMPLE = "sample"  # the name that means the built-in sample portrait


class EngineBusy(RuntimeError):
    """Every session slot (``settings.server.max_sessions``) is taken."""


class Engine:
    """Every model loaded once (voice, recogniser, brain parts, sample avatar), shared by sessions."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.avatars = AvatarStore(settings.avatar_dir)
        self._sessions: dict[str, Session] = {}
        self._lock: asyncio.Lock | None = None
        self._loaded = False
        self._closed = False
        self._voice: Voice | None = None
        self._recognizer: Any = None
        self._listener_config: Any = None
        self._brain: Any = None
        self._knowledge: Any = None
        self._intents: Any = None
        self._persona: Persona | None = None
        self._memory: Any = None
        self._audit: Any = None
        self._sample: Avatar | None = None
        self._avatar_cache: dict[str, Avatar] = {}
        self._animators: dict[int, FaceAnimator] = {}
        self._warming: asyncio.Task[int] | None = None
        self._stop_warming = threading.Event()

    @classmethod
    def from_config(cls, config: Settings | str | Path | None = None, **overrides: Any) -> Engine:
        """An engine from settings, a TOML file, or (None) the embedded default.

        ``None`` honours ``ANIMA_*`` environment variables and ``$ANIMA_CONFIG``; ``overrides``
        are settings keys (``brain={"backend": "kb"}``) applied on top.
        """
        if isinstance(config, Settings):
            settings = config.overridden(overrides) if overrides else config
        else:
            settings = Settings.load(Path(config) if config is not None else None, **overrides)
        return cls(settings)

    # -- models ------------------------------------------------------------------------------

    async def load(self, progress: Callable[[str], None] | None = None) -> None:
        """Load every model now (otherwise the first session does it); idempotent."""
        if self._loaded:
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._loaded:
                await run_blocking(self._load_sync, progress or (lambda step: None))
                self._loaded = True
                # The persona prompt into the model's cache: no cold first turn.
                try:
                    await self.new_agent("prefill").prefill()
                except Exception as exc:  # only a head start is lost
                    log.warning("reading the persona prompt ahead failed: %s", exc)
                if self.settings.voice.prewarm and isinstance(self._voice, CachedVoice):
                    self._warming = asyncio.create_task(
                        run_blocking(self._warm_sync), name="engine:warm-phrases"
                    )

    async def phrases_ready(self) -> int:
        """Wait until the known lines are synthesised (see ``voice.prewarm``); how many were.

        Sessions do not need to wait: a line not warmed yet is synthesised when spoken.
        """
        if self._warming is None:
            return 0
        return await asyncio.shield(self._warming)

    def _warm_sync(self) -> int:
        voice = self._voice
        assert isinstance(voice, CachedVoice)
        t0 = time.perf_counter()
        try:
            phrases = [(p.text, p.emotion) for p in self.new_agent("warm").known_phrases()]
            made = voice.warm(phrases, stop=self._stop_warming)
        except Exception as exc:  # only a head start is lost: the lines are spoken anyway
            log.warning("warming the known phrases failed: %s", exc)
            return 0
        log.info(
            "synthesised %d known phrases in %.1f s (%.1f MB)",
            made,
            time.perf_counter() - t0,
            voice.size_bytes / 2**20,
        )
        return made

    def _load_sync(self, progress: Callable[[str], None]) -> None:
        s = self.settings
        progress("voice")
        _ = self.voice
        progress("speech recogniser")
        from anima.asr import listener_config, load_recognizer
        from anima.asr.vad import shared_model

        self._recognizer = load_recognizer(s.listen, s.data_dir)
        self._listener_config = listener_config(s.listen, s.lang.code)
        shared_model()
        progress("brain")
        self._load_brain()

    def _load_brain(self) -> None:
        from anima.dialogue.audit import AuditLog
        from anima.dialogue.intents import IntentMatcher
        from anima.dialogue.knowledge import KnowledgeBase
        from anima.dialogue.memory import LongTermMemory

        s = self.settings
        self._persona = self.persona({})
        kdir = s.knowledge.dir
        self._knowledge = (
            KnowledgeBase.load(
                Path(kdir),
                dense=s.knowledge.dense,
                cache_dir=s.data_dir / "knowledge",
                judge=s.knowledge.judge,
            )
            if kdir is not None
            else None
        )
        self._intents = IntentMatcher.load(
            kdir, self._knowledge.analyzer if self._knowledge else None
        )
        if s.brain.backend != "kb":
            from anima.dialogue.backends import load_brain

            self._brain = load_brain(s.brain)
        mem = s.memory
        if mem.enabled:
            self._memory = LongTermMemory(s.data_dir / "memory.sqlite3", max_facts=mem.max_facts)
        if mem.audit:
            self._audit = AuditLog(
                s.data_dir / "audit", max_bytes=mem.audit_max_bytes, backups=mem.audit_backups
            )

    @property
    def voice(self) -> Voice:
        """The shared voice (loaded on first use)."""
        if self._voice is None:
            from anima.tts import voice_from_settings

            v = self.settings.voice
            voice = voice_from_settings(v)
            # Lines said before (greetings, approved answers) replay without synthesis.
            self._voice = CachedVoice(voice, v.cache_mb * 2**20) if v.cache_mb else voice
        return self._voice

    @property
    def recognizer(self) -> Any:
        """The shared speech recogniser (after :meth:`load`)."""
        self._require_loaded()
        return self._recognizer

    @property
    def listener_config(self) -> Any:
        """Listener options from the settings (after :meth:`load`)."""
        self._require_loaded()
        return self._listener_config

    def persona(self, overrides: dict[str, Any]) -> Persona:
        """The configured persona with ``overrides`` (persona settings keys) applied."""
        from anima.dialogue.persona import Persona

        return Persona.from_settings(self.check_persona(overrides))

    def check_persona(self, overrides: dict[str, Any]) -> PersonaSettings:
        """Validated persona settings with ``overrides``; ValueError names a bad key."""
        if not isinstance(overrides, dict):
            raise ValueError("persona overrides must be an object of persona settings keys")
        base = self.settings.persona.model_dump()
        return PersonaSettings.model_validate({**base, **overrides})

    def new_agent(self, session_id: str) -> Agent:
        """A conversation's agent, built on the engine's shared brain, knowledge and memory."""
        from anima.dialogue.agent import Agent

        self._require_loaded()
        s = self.settings
        assert self._persona is not None
        return Agent(
            self._persona,
            brain=self._brain,
            knowledge=self._knowledge,
            intents=self._intents,
            knowledge_settings=s.knowledge,
            safety=s.safety,
            memory=self._memory,
            audit=self._audit,
            history_tokens=s.brain.history_tokens,
            max_tokens=s.brain.max_tokens,
            max_input_chars=s.limits.max_text_chars,
            session_id=session_id,
            max_llm_tokens=s.limits.max_llm_tokens_per_session,
            budget_line=s.limits.llm_budget_line,
        )

    async def avatar(self, spec: str | Avatar | None) -> Avatar:
        """The avatar for ``spec``: a stored name, an :class:`Avatar`, or None for the sample."""
        if isinstance(spec, Avatar):
            return spec
        if spec is None or spec == SAMPLE:
            if self._sample is None:
                from anima.render.avatar import prepare_avatar, sample_portrait

                self._sample = await run_blocking(lambda: prepare_avatar(sample_portrait(), SAMPLE))
            return self._sample
        if not isinstance(spec, str):
            raise ValueError(f"an avatar is a name or an Avatar, not {type(spec).__name__}")
        if spec not in self._avatar_cache:
            avatar = await run_blocking(self.avatars.get, spec)
            if avatar.consent is None and self.settings.limits.require_consent:
                # Likeness consent (issue 9): checked where every session resolves a stored
                # avatar by name, so the server, kiosk and SDK paths all refuse it alike.
                raise AvatarError(
                    f"avatar {spec!r} has no recorded likeness consent; add it again with "
                    "`anima avatar add --consent-by NAME` (or set limits.require_consent = false)"
                )
            if len(self._avatar_cache) >= 16:  # bounded: forget the oldest
                self._avatar_cache.pop(next(iter(self._avatar_cache)))
            self._avatar_cache[spec] = avatar
        return self._avatar_cache[spec]

    async def animator(self, spec: str | Avatar | None) -> FaceAnimator:
        """A fresh face animator for ``spec`` (its own idle motion, canvas and state).

        Building one is slow (about a second: rig, mouth grid, eyelid masks), so the engine
        keeps one prototype per avatar and each session gets a copy (about 1 ms).
        """
        import copy

        from anima.render.idle import IdleMotion
        from anima.render.video_avatar import animator_for

        avatar = await self.avatar(spec)
        r = self.settings.render
        proto = self._animators.get(id(avatar))
        if proto is None or proto.avatar is not avatar:
            proto = await run_blocking(animator_for, avatar, r)
            if len(self._animators) >= 8:  # bounded: forget the oldest
                self._animators.pop(next(iter(self._animators)))
            self._animators[id(avatar)] = proto
        animator = copy.deepcopy(proto)
        animator.idle = IdleMotion(r.seed, r.blink_interval, r.head_motion)
        return animator

    # -- sessions ----------------------------------------------------------------------------

    def session(
        self,
        avatar: str | Avatar | None = None,
        *,
        user_id: str | None = None,
        media: Media = "video",
        realtime: bool = True,
        clock: Clock | None = None,
        greet: bool = True,
        listening: Listening = "always",
        drive: bool = False,
    ) -> Session:
        """A new conversation. Raises :class:`EngineBusy` when ``server.max_sessions`` are open.

        ``avatar`` None is the built-in sample portrait; ``media`` picks what :meth:`Session.frames`
        yields ("video": pictures + audio, "params": face parameters + audio, "events": events
        only); ``listening`` "always" answers whenever the user stops talking, "ptt" only
        between :meth:`Session.ptt_start` and :meth:`Session.ptt_stop`.

        ``drive`` opens a "speak through the avatar" session: the audio given to
        :meth:`Session.push_audio` is the avatar's voice (passed through at the output rate,
        about one frame later) and moves its lips; there is no listening, brain, greeting,
        ``say`` or ``ask``, and only the voice (for its rate) and the lip-sync network are
        loaded. See :mod:`anima.engine.drive`.
        """
        if self._closed:
            raise RuntimeError("the engine is closed")
        limit = self.settings.server.max_sessions
        if len(self._sessions) >= limit:
            raise EngineBusy(f"all {limit} session slots are in use; try again later")
        session = Session(
            self,
            avatar,
            user_id=user_id,
            media=media,
            realtime=realtime,
            clock=clock,
            greet=greet,
            listening=listening,
            drive=drive,
        )
        self._sessions[session.id] = session
        return session

    @property
    def sessions(self) -> list[Session]:
        """The open sessions."""
        return list(self._sessions.values())

    def _release(self, session: Session) -> None:
        self._sessions.pop(session.id, None)

    def _require_loaded(self) -> None:
        if not self._loaded:
            raise RuntimeError("the engine's models are not loaded; await engine.load() first")

    async def aclose(self) -> None:
        """Close every session and release the models. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop_warming.set()
        for session in self.sessions:
            await session.aclose()
        if self._warming is not None:
            await self._warming  # at most the phrase being synthesised now; never raises
        neural = sys.modules.get("anima.render.neural_mouth")  # only if a session used it
        if neural is not None:
            await neural.close_runtimes()
        if self._brain is not None:
            await self._brain.aclose()
        if self._memory is not None:
            self._memory.close()

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


__all__ = ["Engine", "EngineBusy", "Listening", "Media", "Session", "SessionClosed"]
