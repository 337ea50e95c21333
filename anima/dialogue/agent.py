"""The dialogue orchestrator: one user utterance in, speakable phrases and events out.

:meth:`Agent.respond` routes every utterance through the same steps, first match wins:

1. **closed** — the session's token budget is spent: the persona's closing line.
   (Separately, an LLM token budget — prompt plus reply tokens, ``max_llm_tokens`` — stops
   the brain being called at all once spent: step 7 then says ``budget_line`` and yields
   :class:`BudgetSpent`.)
2. **refusal** — blocked input terms/patterns (moderation) or a prompt-injection attempt:
   a fixed persona line; the text never reaches a model and is kept out of the history.
3. **memory** — "remember that…", "what do you remember about me", "delete my data".
4. **handoff** — the user asks for a person: the hand-off line and a :class:`HandoffRequested`;
   when they say what for and the folder is sure of it (:data:`HANDOFF_ANSWER`), its passage
   first ("Can I talk to someone about a lost card?").
5. **intent** — an operator intent: its exact approved text (never a model), maybe a hand-off.
6. **kb / smalltalk / fallback** — the retriever is sure (``knowledge.sure``), or there is no
   LLM (the ``kb`` backend) and the match is good enough (``knowledge.threshold``): the
   passage verbatim, with no model in the way. No match: a fixed in-character line for
   greetings, thanks and questions about the avatar itself, else "I don't know" plus the
   fallback offer (after ``handoff_after`` unanswered questions in a row, a hand-off); the
   model is not asked, so no domain fact is invented (``knowledge.open_chat`` lets it chat).
7. **llm** — a middling match: the LLM with the persona's system prompt, the best knowledge
   passages (without source ids) and the instruction to answer only from them, the user's
   remembered facts and the bounded history; the user's text is delimited. Its stream goes
   through the leak filter (:mod:`anima.dialogue.leaks`: template tokens, passage ids,
   markup), the phrase chunker, the output filter (PII, blocked terms, system-prompt echo)
   and the reply caps, and each phrase is yielded as soon as it is released. A brain error
   or timeout becomes the apology line and a :class:`TurnFailed`.

Closing the generator (``aclose()``, or cancelling the task iterating it) stops the brain's
stream at once. The reply enters the history only once it is known what the user heard:
:meth:`Agent.interrupted` (after a barge-in) records the heard part, otherwise the next
:meth:`respond` records it whole. Every turn is written to the audit log.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path

from anima.config import KnowledgeSettings, SafetySettings, Settings
from anima.dialogue.audit import AuditEntry, AuditLog
from anima.dialogue.brain import Brain, Message, Phrase
from anima.dialogue.history import History, estimate_tokens
from anima.dialogue.intents import IntentMatcher, wants_human, without_request
from anima.dialogue.knowledge import Hit, KnowledgeBase
from anima.dialogue.llm_turn import llm_reply
from anima.dialogue.memory import LongTermMemory, MemoryCommand, parse_memory_command
from anima.dialogue.persona import VISITOR_CLOSE, Persona
from anima.dialogue.safety import (
    InputModerator,
    OutputFilter,
    PiiMasker,
    detect_injection,
    wrap_user_text,
)
from anima.dialogue.smalltalk import small_talk

# The turn's events and record live in anima.dialogue.turn; they stay importable from here.
from anima.dialogue.turn import BudgetSpent as BudgetSpent
from anima.dialogue.turn import Event as Event
from anima.dialogue.turn import HandoffRequested as HandoffRequested
from anima.dialogue.turn import TurnFailed as TurnFailed
from anima.dialogue.turn import TurnRecord as TurnRecord
from anima.dialogue.turn import fixed_phrases as _phrases
from anima.pipeline import run_blocking

log = logging.getLogger(__name__)

# A request for a person that names its topic (words left once the request is taken out) is
# answered from the folder first only when the question is found both ways, by words and by
# meaning (one way alone tops out at 0.7).
HANDOFF_ANSWER = 0.75
# An utterance that is small talk from end to end ("Why don't you ever blink?", 我先下了，拜拜)
# gets its fixed line unless the folder answers it this surely: a passage that shares a word
# with a greeting is no answer to it, the operator's own "are you a robot?" FAQ row is.
SMALL_TALK_UNLESS = 0.6

# Fixed lines of the memory feature (English; a persona file does not translate them yet).
MEMORY_LINES = {
    "remembered": "All right, I'll remember that.",
    "no_id": "I can only remember things for visitors who are signed in.",
    "disabled": "I'm sorry, I can't keep anything for later here.",
    "forgotten": "Done. I've deleted everything I knew about you.",
    "nothing": "I don't have anything remembered about you.",
    "recall": "You asked me to remember:",
}


class Agent:
    """Routes utterances (see the module docstring); one instance per conversation session."""

    def __init__(
        self,
        persona: Persona,
        *,
        brain: Brain | None = None,
        knowledge: KnowledgeBase | None = None,
        intents: IntentMatcher | None = None,
        knowledge_settings: KnowledgeSettings | None = None,
        safety: SafetySettings | None = None,
        memory: LongTermMemory | None = None,
        audit: AuditLog | None = None,
        history_tokens: int = 1200,
        max_tokens: int = 160,
        max_input_chars: int = 2000,
        session_id: str | None = None,
        now: Callable[[], float] = time.monotonic,
        max_llm_tokens: int = 0,
        budget_line: str = "I've answered all I can in this conversation.",
    ) -> None:
        self.persona = persona
        # LLM cost cap of the whole session (0: none); never reset, not even by reset().
        self.max_llm_tokens = max_llm_tokens
        self.budget_line = budget_line
        self.llm_tokens = 0  # prompt (estimated) + reply (streamed deltas) tokens so far
        # The "kb" backend means: no language model, the knowledge base answers verbatim.
        self.brain = None if brain is None or getattr(brain, "name", "") == "kb" else brain
        self.knowledge = knowledge
        self.intents = intents
        self.kcfg = knowledge_settings or KnowledgeSettings()
        self.safety = safety or SafetySettings()
        self.memory = memory
        self.audit = audit
        self.history = History(history_tokens)
        self.max_tokens = max_tokens
        self.max_input_chars = max_input_chars
        self.session_id = session_id or uuid.uuid4().hex[:12]
        self._now = now
        self._moderator = InputModerator(
            self.safety.blocked_input, self.safety.blocked_input_patterns
        )
        self._masker = PiiMasker(self.safety.pii_allow)
        if knowledge is not None:
            # What the operator published (their phone number, e-mail) may be spoken.
            self._masker.allow(knowledge.texts())
        self.session_tokens = 0
        self.unanswered = 0  # questions in a row the agent could not answer
        self.last_turn: TurnRecord | None = None
        self._pending: TurnRecord | None = None  # reply not yet in the history

    # -- public API ----------------------------------------------------------------------------

    def greeting(self, user_id: str | None = None) -> list[Phrase]:
        """The persona's greeting as phrases, to speak when a session starts."""
        text = self.persona.greeting
        if user_id and self.memory is not None and self.memory.known(user_id):
            text = f"Welcome back! {text}"
        self.history.add(Message("assistant", text))
        return _phrases(text)

    async def respond(self, user_text: str, *, user_id: str | None = None) -> AsyncIterator[Event]:
        """Stream the reply to ``user_text``: phrases as they are ready, then any event."""
        self._settle_pending()
        text = " ".join(user_text.split())[: self.max_input_chars]
        if not text:
            return
        masked, _ = self._masker.mask(text)  # personal data never reaches a model or a log
        turn = TurnRecord(question=masked)
        self.last_turn = turn
        started = self._now()
        finished = False
        try:
            async with contextlib.aclosing(self._route(text, masked, user_id, turn)) as events:
                async for event in events:
                    if isinstance(event, Phrase):
                        if turn.first_phrase_ms is None:
                            turn.first_phrase_ms = (self._now() - started) * 1000
                        turn.spoken.append(event.text)
                    yield event
            finished = True
        finally:
            turn.interrupted = not finished
            turn.total_ms = (self._now() - started) * 1000
            self._finish(turn, user_id)

    def interrupted(self, heard_chars: int | None) -> None:
        """The user barged in after hearing ``heard_chars`` characters of the last reply.

        Characters count over the reply's phrases joined by single spaces (as
        :attr:`TurnRecord.answer`); None means the heard position is unknown (all kept).
        """
        turn, self._pending = self._pending, None
        if turn is not None:
            self.history.record_reply(turn.answer, heard_chars)

    def known_phrases(self, per_line: int = 2) -> list[Phrase]:
        """Phrases this agent may speak word for word, to synthesise before anyone asks.

        The greeting, the persona's fixed lines, the intents' approved answers and, when no
        model answers, the knowledge passages (spoken verbatim): each cut exactly as a reply
        is, keeping the first ``per_line`` phrases of each (the rest is synthesised while
        those play). Deduplicated, in that order of priority.
        """
        p = self.persona
        # Lines the agent yields whole, as one phrase.
        whole = [p.apology, p.dont_know, p.handoff, p.refusal, p.stay_in_role, p.closing]
        whole.append(self.budget_line)
        # Lines it cuts into phrases first.
        lines: list[tuple[str, str]] = [(p.greeting, "neutral"), (p.dont_know_line(), "neutral")]
        lines.append((f"Welcome back! {p.greeting}", "neutral"))
        if self.intents is not None:
            lines += [(i.answer, i.emotion) for i in self.intents.intents]
        if self.knowledge is not None and (self.brain is None or self.kcfg.strict):
            lines += [(passage.text, "neutral") for passage in self.knowledge.passages]
        seen: dict[tuple[str, str], Phrase] = {}
        for phrase in [Phrase(text) for text in whole if text.strip()] + [
            phrase for text, emotion in lines for phrase in _phrases(text, emotion)[:per_line]
        ]:
            seen.setdefault((phrase.text, phrase.emotion), phrase)
        return list(seen.values())

    async def prefill(self, partial: str = "") -> int:
        """Read what the next model prompt will start with into the model's cache.

        Without ``partial``: the persona's system prompt (call it when the engine loads, so
        the first visitor does not wait for it). With the stable words of a partial
        transcript: the prompt this text would make, so at the endpoint only the last words
        are read. Nothing is said or recorded; when the final transcript differs, the model
        keeps only the common prefix (the speculation is discarded). Returns the tokens now
        cached (0 when the brain has no cache: kb, a server).
        """
        prefill = getattr(self.brain, "prefill", None)
        if prefill is None:
            return 0
        system = Message("system", self.persona.system_prompt(grounded_only=self.kcfg.strict))
        text = " ".join(partial.split())[: self.max_input_chars]
        if not text:
            return await prefill([system])
        masked, _ = self._masker.mask(text)
        query = self._masker.strip(text)
        hits = self.knowledge.search(query, self.kcfg.top_k) if self.knowledge else []
        if not hits or hits[0].confidence < self.kcfg.threshold:
            return await prefill([system])  # this would not reach the model as it stands
        passages = [h for h in hits if h.confidence >= self.kcfg.threshold / 2]
        grounded = self.kcfg.strict or not self.kcfg.open_chat
        context = self.persona.turn_context(
            passages=[(h.passage.id, h.passage.text) for h in passages[:2]],
            grounded=grounded,
        )
        # The user's words are left open (no closing delimiter): the final continues them.
        user = wrap_user_text(masked).rsplit(VISITOR_CLOSE, 1)[0]
        messages = [
            system,
            *(m for m in self.history.messages() if m.role != "system"),
            Message("user", f"{context}\n{user}"),
        ]
        return await prefill(messages)

    def withdraw_last(self) -> None:
        """Take the last question (and its unheard reply) back out of the history: it is being
        asked again as part of a longer question (two finals merged)."""
        if self._pending is not None:
            self._pending = None
            self.history.drop_last_user()

    def reset(self) -> None:
        """Forget the conversation (a new visitor at the kiosk); long-term memory stays."""
        self._pending = None
        self.history.clear()
        self.session_tokens = 0
        self.unanswered = 0

    async def aclose(self) -> None:
        """Release the brain and the memory database."""
        if self.brain is not None:
            await self.brain.aclose()
        if self.memory is not None:
            self.memory.close()

    # -- routing -------------------------------------------------------------------------------

    async def _route(
        self, text: str, masked: str, user_id: str | None, turn: TurnRecord
    ) -> AsyncIterator[Event]:
        p = self.persona
        if self.session_tokens >= self.safety.max_session_tokens:
            turn.route, turn.reason, turn.in_history = "closed", "session token cap", False
            yield Phrase(p.closing)
            return
        if reason := self._moderator.check(text):
            turn.route, turn.reason, turn.in_history = "refusal", reason, False
            yield Phrase(p.refusal)
            return
        if fragment := detect_injection(text):
            turn.route, turn.reason, turn.in_history = "refusal", f"injection: {fragment}", False
            yield Phrase(p.stay_in_role)
            return
        if (command := parse_memory_command(text)) is not None:
            turn.route, turn.reason = "memory", command.action
            line = await self._memory(command, user_id, turn)
            for phrase in _phrases(line):
                yield phrase
            return
        if wants_human(text):
            turn.route, turn.reason = "handoff", "requested"
            # "Can I talk to someone about a lost card?": what the folder says on it first,
            # where the folder is sure, then the person, who is called either way.
            query = self._masker.strip(text)
            rest = without_request(query)
            hits = []
            if self.knowledge is not None and self.knowledge.analyzer.words(rest):
                # Either the whole question or its topic alone, whichever is found better.
                found = self.knowledge.search(query, 1) + self.knowledge.search(rest, 1)
                hits = sorted(found, key=lambda h: h.confidence, reverse=True)[:1]
            if hits and hits[0].confidence >= HANDOFF_ANSWER:
                turn.reason, turn.sources = "requested, answered", [hits[0].passage.id]
                turn.confidence = round(hits[0].confidence, 3)
                phrases = self._filtered(_phrases(hits[0].passage.text), turn)
                async with contextlib.aclosing(phrases) as events:
                    async for event in events:
                        yield event
            yield Phrase(p.handoff)
            yield HandoffRequested("requested")
            return
        query = self._masker.strip(text)  # placeholders would match words of the knowledge
        hits = self.knowledge.search(query, self.kcfg.top_k) if self.knowledge else []
        confidence = hits[0].confidence if hits else 0.0
        m = self.intents.match(text, self.kcfg.intent_threshold) if self.intents else None
        # An intent wins unless the knowledge base matches strictly better (a question about
        # the phone number must not trigger an intent that merely mentions calling).
        if m is not None and m.confidence >= confidence:
            turn.route, turn.intent, turn.confidence = "intent", m.intent.name, m.confidence
            self.unanswered = 0
            # The approved text is spoken exactly: no filter, no cap, no model.
            for phrase in _phrases(m.intent.answer, m.intent.emotion):
                yield phrase
            if m.intent.handoff:
                yield HandoffRequested(f"intent:{m.intent.name}")
            return
        turn.confidence = round(confidence, 3)
        answerable = confidence >= self.kcfg.threshold
        # The retriever is sure: the operator's words, verbatim, with no model in the way.
        sure = answerable and confidence >= self.kcfg.sure and self.kcfg.sure < 1.0
        closed = not answerable and not self.kcfg.open_chat
        chat = small_talk(text, self.persona.in_language_of(text))
        chatty = self.brain is not None and self.kcfg.open_chat  # the model makes small talk
        if chat is not None and confidence < SMALL_TALK_UNLESS and not chatty:
            turn.route = "smalltalk"
            for phrase in _phrases(chat):
                yield phrase
            return
        if self.brain is None or sure or closed or (self.kcfg.strict and not answerable):
            if answerable:
                turn.route, turn.sources = "kb", [hits[0].passage.id]
                self.unanswered = 0
                phrases = self._filtered(_phrases(hits[0].passage.text), turn)
                async with contextlib.aclosing(phrases) as events:
                    async for event in events:
                        yield event
            elif chat is not None:
                turn.route = "smalltalk"
                for phrase in _phrases(chat):
                    yield phrase
            else:
                async with contextlib.aclosing(self._cannot_answer(turn)) as events:
                    async for event in events:
                        yield event
            return
        async with contextlib.aclosing(self._llm(masked, user_id, hits, turn)) as events:
            async for event in events:
                yield event

    async def _cannot_answer(
        self, turn: TurnRecord, route: str = "fallback"
    ) -> AsyncIterator[Event]:
        p = self.persona.in_language_of(turn.question)
        turn.route = route
        self.unanswered += 1
        if self.kcfg.handoff_after and self.unanswered >= self.kcfg.handoff_after:
            self.unanswered = 0
            turn.reason = "cannot_help"
            yield Phrase(p.dont_know)
            yield Phrase(p.handoff)
            yield HandoffRequested("cannot_help")
        else:
            for phrase in _phrases(p.dont_know_line()):
                yield phrase

    async def _memory(self, command: MemoryCommand, user_id: str | None, turn: TurnRecord) -> str:
        if command.action == "forget":
            # Also for anonymous visitors: the conversation so far is dropped.
            self.history.clear()
            self._pending = None
            turn.in_history = False
            if user_id:
                if self.memory is not None:
                    await run_blocking(self.memory.forget, user_id)
                if self.audit is not None:
                    await run_blocking(self.audit.forget, user_id)
            return MEMORY_LINES["forgotten"]
        if self.memory is None:
            return MEMORY_LINES["disabled"]
        if not user_id:
            return MEMORY_LINES["no_id"]
        if command.action == "remember":
            fact, _ = self._masker.mask(command.fact)  # never keep card numbers and the like
            await run_blocking(self.memory.remember, user_id, fact)
            return MEMORY_LINES["remembered"]
        facts = await run_blocking(self.memory.recall, user_id)
        if not facts:
            return MEMORY_LINES["nothing"]
        return " ".join([MEMORY_LINES["recall"], *facts])

    def _llm(
        self, masked: str, user_id: str | None, hits: list[Hit], turn: TurnRecord
    ) -> AsyncIterator[Event]:
        return llm_reply(self, masked, user_id, hits, turn)

    async def _filtered(self, phrases: Iterable[Phrase], turn: TurnRecord) -> AsyncIterator[Event]:
        """Operator text (knowledge answers) through the output filter, without caps."""
        out_filter = OutputFilter(
            terms=self.safety.blocked_output,
            patterns=self.safety.blocked_output_patterns,
            masker=self._masker if self.safety.mask_pii else None,
        )
        for phrase in phrases:
            filtered = out_filter.feed(phrase)
            if filtered.blocked:
                turn.reason = filtered.blocked
                yield Phrase(self.persona.in_language_of(turn.question).refusal)
                return
            for p in filtered.phrases:
                yield p
        for p in out_filter.flush().phrases:
            yield p

    # -- bookkeeping ---------------------------------------------------------------------------

    def _settle_pending(self) -> None:
        # No barge-in was reported for the previous reply: the user heard all of it.
        turn, self._pending = self._pending, None
        if turn is not None:
            self.history.record_reply(turn.answer)

    def _finish(self, turn: TurnRecord, user_id: str | None) -> None:
        self.session_tokens += estimate_tokens(turn.question) + estimate_tokens(turn.answer)
        if turn.in_history:
            self.history.add(Message("user", turn.question))
            self._pending = turn
        if self.audit is not None:
            entry = AuditEntry(
                route=turn.route or "none",
                question=turn.question,
                answer=turn.answer,
                sources=list(turn.sources),
                confidence=turn.confidence,
                session=self.session_id,
                intent=turn.intent,
                reason=turn.reason,
                interrupted=turn.interrupted,
                timings={
                    k: round(v, 1)
                    for k, v in (
                        ("first_phrase_ms", turn.first_phrase_ms),
                        ("total_ms", turn.total_ms),
                    )
                    if v is not None
                },
            )
            # The forget turn itself is logged without the user's pseudonym.
            who = None if turn.route == "memory" and turn.reason == "forget" else user_id
            try:
                # A small synchronous append: this also runs while the generator is being
                # closed, where awaiting an executor is not possible.
                self.audit.record(entry, user_id=who)
            except OSError as exc:
                log.warning("audit log write failed: %s", exc)


def build_agent(
    settings: Settings, *, brain: Brain | None = None, session_id: str | None = None
) -> Agent:
    """An agent wired from settings; ``brain`` defaults to ``load_brain(settings.brain)``.

    The ``kb`` backend loads no model. Memory and the audit log live under ``data_dir``.
    """
    persona = Persona.from_settings(settings.persona)
    kdir = settings.knowledge.dir
    knowledge = (
        KnowledgeBase.load(
            Path(kdir),
            dense=settings.knowledge.dense,
            cache_dir=settings.data_dir / "knowledge",  # passage embeddings, by content hash
            judge=settings.knowledge.judge,
        )
        if kdir is not None
        else None
    )
    intents = IntentMatcher.load(kdir, knowledge.analyzer if knowledge else None)
    if brain is None and settings.brain.backend != "kb":
        from anima.dialogue.backends import load_brain

        brain = load_brain(settings.brain)
    mem = settings.memory
    memory = (
        LongTermMemory(settings.data_dir / "memory.sqlite3", max_facts=mem.max_facts)
        if mem.enabled
        else None
    )
    audit = (
        AuditLog(
            settings.data_dir / "audit", max_bytes=mem.audit_max_bytes, backups=mem.audit_backups
        )
        if mem.audit
        else None
    )
    return Agent(
        persona,
        brain=brain,
        knowledge=knowledge,
        intents=intents,
        knowledge_settings=settings.knowledge,
        safety=settings.safety,
        memory=memory,
        audit=audit,
        history_tokens=settings.brain.history_tokens,
        max_tokens=settings.brain.max_tokens,
        max_input_chars=settings.limits.max_text_chars,
        session_id=session_id,
    )
