"""The LLM path of a dialogue turn: a middling match answered by the language model.

The prompt (persona system prompt, the best passages, remembered facts, the bounded history,
the user's delimited words), the LLM token budget, and the streamed reply through the leak
filter, the phrase chunker, the output filter and the reply caps; a brain error or timeout
becomes the apology line and a :class:`~anima.dialogue.turn.TurnFailed`. Step 7 of
:meth:`anima.dialogue.agent.Agent.respond`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from anima.dialogue.brain import BrainError, Message, Phrase
from anima.dialogue.chunker import PhraseChunker
from anima.dialogue.history import estimate_tokens, message_tokens
from anima.dialogue.knowledge import Hit
from anima.dialogue.leaks import LeakFilter
from anima.dialogue.metrics import LLM_BUDGET_SPENT, LLM_TOKENS, ReplyTimer
from anima.dialogue.safety import OutputFilter, ReplyBudget, wrap_user_text
from anima.dialogue.turn import BudgetSpent, Event, TurnFailed, TurnRecord, fixed_phrases
from anima.emotion import estimate_emotion, reply_emotion
from anima.pipeline import run_blocking

if TYPE_CHECKING:
    from anima.dialogue.agent import Agent

# The agent's logger: a brain failure is reported under the same name as before the split.
log = logging.getLogger("anima.dialogue.agent")


async def llm_reply(
    agent: Agent, masked: str, user_id: str | None, hits: list[Hit], turn: TurnRecord
) -> AsyncIterator[Event]:
    """Stream the LLM's reply to ``masked`` (the user's masked words) for ``agent``'s turn."""
    assert agent.brain is not None
    brain = agent.brain
    turn.route = "llm"
    # Weaker passages still help a model; the cut-off keeps unrelated ones out.
    passages = [h for h in hits if h.confidence >= agent.kcfg.threshold / 2]
    grounded = agent.kcfg.strict or (bool(passages) and not agent.kcfg.open_chat)
    turn.sources = [h.passage.id for h in passages]
    memories: list[str] = []
    if user_id and agent.memory is not None:
        memories = await run_blocking(agent.memory.recall, user_id)
    # The system prompt is fixed and always first (a local model caches it); this turn's
    # facts ride in the last user message, and the user's words always arrive delimited.
    system = agent.persona.system_prompt(grounded_only=agent.kcfg.strict)
    if grounded and passages:
        # A middling match: the model rephrases the passages, it adds nothing of its own.
        passages = passages[:2]
    # A frustrated or sad visitor gets a calmer, shorter answer and a concerned face.
    feeling = estimate_emotion(masked)
    context = agent.persona.turn_context(
        passages=[(h.passage.id, h.passage.text) for h in passages],
        memories=memories,
        mood=feeling.label if feeling.calm_and_brief else None,
        grounded=grounded,
    )
    user = wrap_user_text(masked)
    messages = [
        Message("system", system),
        *(m for m in agent.history.messages() if m.role != "system"),
        Message("user", f"{context}\n{user}" if context else user),
    ]
    chunker = PhraseChunker(emotion=reply_emotion(feeling))
    # Template tokens, passage ids and markup never reach the chunker (nor the TTS).
    leaks = LeakFilter(turn.sources)
    out_filter = OutputFilter(
        terms=agent.safety.blocked_output,
        patterns=agent.safety.blocked_output_patterns,
        masker=agent._masker if agent.safety.mask_pii else None,
        instructions=agent.persona.instructions(),
    )
    sentences = agent.persona.max_sentences
    budget = ReplyBudget(
        agent.persona.max_words, min(sentences, 2) if feeling.calm_and_brief else sentences
    )
    timer = ReplyTimer(brain.name, now=agent._now)
    token_room = agent.safety.max_session_tokens - agent.session_tokens
    max_tokens = max(1, min(agent.max_tokens, token_room))
    if agent.max_llm_tokens:
        # Checked before the call: the prompt alone must fit, and the reply is capped to
        # what is left. Prompt tokens are estimated (~4 chars each, as the history is);
        # reply tokens are the brain's streamed deltas (one token each for llama.cpp and
        # OpenAI-compatible servers).
        prompt = sum(message_tokens(m) for m in messages)
        room = agent.max_llm_tokens - agent.llm_tokens - prompt
        if room <= 0:
            turn.route, turn.reason, turn.in_history = "budget", "llm token budget", False
            LLM_BUDGET_SPENT.inc()
            yield Phrase(agent.budget_line)
            yield BudgetSpent(agent.llm_tokens, agent.max_llm_tokens)
            return
        max_tokens = max(1, min(max_tokens, room))
        agent.llm_tokens += prompt
        LLM_TOKENS.labels("prompt").inc(prompt)
    spent = [0]  # estimated tokens spoken so far in this reply

    def emit(phrase: Phrase | None) -> tuple[list[Phrase], str | None]:
        """Filtered phrases of one chunker phrase (None: the end) and a stop reason."""
        if phrase is not None:
            # Before the PII masker, whose "[card number hidden]" must stay.
            if not (text := leaks.phrase(phrase.text)):
                turn.reason = "system prompt echo"  # a phrase about the prompt itself
                return [], "blocked"
            phrase = Phrase(text, phrase.emotion)
        filtered = out_filter.feed(phrase) if phrase is not None else out_filter.flush()
        if filtered.blocked:
            turn.reason = filtered.blocked
            return [], "blocked"
        out: list[Phrase] = []
        for p in filtered.phrases:
            out.append(p)
            timer.phrase()
            spent[0] += estimate_tokens(p.text)
            if budget.spend(p.text):
                turn.reason = "reply cap"
                return out, "cap"
            if agent.session_tokens + spent[0] >= agent.safety.max_session_tokens:
                turn.reason = "session token cap"
                return out, "session"
        return out, None

    stream = brain.stream(messages, max_tokens=max_tokens)
    brain_seconds = 0.0  # time spent waiting on the brain, not on our consumer
    stop: str | None = None
    spoke = False
    try:
        ended = False
        while not ended and stop is None:
            remaining = agent.safety.reply_timeout - brain_seconds
            waited = agent._now()
            try:
                # The timeout wraps only the wait for the brain, never a yield, so a slow
                # consumer (the TTS behind a full queue) does not count against it.
                async with asyncio.timeout(max(0.001, remaining)):
                    delta = await anext(stream)
                agent.llm_tokens += 1
                LLM_TOKENS.labels("reply").inc()
                pending: list[Phrase | None] = list(chunker.feed(leaks.feed(delta)))
                if leaks.ended:  # an end-of-turn token: the rest is not the reply
                    pending, ended = [*pending, *chunker.flush(), None], True
            except StopAsyncIteration:
                pending = [*chunker.feed(leaks.flush()), *chunker.flush(), None]
                ended = True
            finally:
                brain_seconds += agent._now() - waited
            for phrase in pending:
                out, stop = emit(phrase)
                for p in out:
                    spoke = True
                    yield p
                if stop:
                    break
        if stop == "blocked" and turn.reason == "system prompt echo":
            if not spoke:  # the model only recited its instructions: it had no answer
                async for event in agent._cannot_answer(turn, route="llm"):
                    yield event
                return
        elif stop == "blocked":
            yield Phrase(agent.persona.refusal)
        elif stop == "session":
            yield Phrase(agent.persona.closing)
        elif not spoke:
            # The model said nothing speakable: treat it as not knowing.
            async for event in agent._cannot_answer(turn, route="llm"):
                yield event
            return
        agent.unanswered = 0
    except Exception as exc:  # any brain failure must not end the session
        timed_out = isinstance(exc, TimeoutError)
        retryable = timed_out or bool(getattr(exc, "retryable", False))
        message = "the brain took too long" if timed_out else (str(exc) or type(exc).__name__)
        if not isinstance(exc, BrainError | TimeoutError):
            log.warning("brain raised %s", type(exc).__name__, exc_info=True)
        turn.route, turn.reason = "error", message
        best = passages[0] if passages else None
        if timed_out and not spoke and best and best.confidence >= agent.kcfg.threshold:
            # Too slow on a busy CPU: the best passage, verbatim, beats an apology.
            turn.route, turn.sources = "kb", [best.passage.id]
            agent.unanswered = 0
            async for event in agent._filtered(fixed_phrases(best.passage.text), turn):
                yield event
        else:
            yield Phrase(agent.persona.apology)
        yield TurnFailed(message, retryable)
    finally:
        # Closes the HTTP stream / frees the model at once, also on aclose() and cancel.
        close = getattr(stream, "aclose", None)
        # RuntimeError: an abandoned reply finalised at loop shutdown, where the stream's
        # own finaliser may already be closing it.
        with contextlib.suppress(RuntimeError):
            if close is not None:
                await close()
        timer.finish()
