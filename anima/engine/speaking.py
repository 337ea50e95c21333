"""What the avatar says: jobs (replies, exact text, greetings, apologies) into utterances.

One job at a time: its text comes from the brain (phrase by phrase), the persona or the caller,
goes through TTS, captions and lip-sync, and fills an :class:`~anima.air.program.Utterance`
that the on-air loop plays from the front while the rest is still being made.
A part of :class:`anima.engine.session.Session`: a mixin whose state lives in
``Session.__init__``, kept in its own file so each idea of the conversation has one room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from anima.air.fill import fill_utterance
from anima.air.program import Utterance
from anima.engine.output import Job
from anima.events import ErrorEvent, HandoffEvent, LimitReached, TurnLatency
from anima.frames import AudioFrame, TextChunk, TurnEnd

log = logging.getLogger("anima.engine.session")  # one logger for the whole conversation


class Speaking:
    """The session's production side: ``ask`` and ``say``, the job queue, brain -> voice."""

    async def ask(self, text: str) -> None:
        """Typed user text: answered like a final transcript (interrupts current speech)."""
        text = self._check_text(text)
        await self._interrupt_if_busy("ask")
        await self._enqueue(Job("reply", text, started=self.clock.now()))

    async def say(self, text: str, emotion: str = "neutral") -> None:
        """Make the avatar say exactly this (no brain), queued after current speech."""
        text = self._check_text(text)
        await self._enqueue(Job("say", text, emotion, started=self.clock.now()))

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
        self._lipsync.samples = 0  # utterance time starts at 0 (see anima.air.program)
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
