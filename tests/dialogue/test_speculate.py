"""Speculative prefill and merged finals: the bookkeeping, and the real model's cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from anima.config import KnowledgeSettings
from anima.dialogue.agent import Agent
from anima.dialogue.brain import Message, Phrase
from anima.dialogue.knowledge import KnowledgeBase
from anima.dialogue.persona import Persona
from anima.dialogue.speculate import Speculator

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_stable_words_are_those_two_partials_agree_on():
    s = Speculator()
    assert s.partial("how much") is None
    assert s.partial("how much is the") == "how much"
    assert s.partial("how much is the") == "how much is the"
    assert s.partial("how much is the") is None  # nothing new to read
    assert s.partial("how much is a colour") == "how much is"  # "the" changed: not stable


def test_finals_within_the_window_merge_and_later_ones_do_not():
    clock = Clock()
    s = Speculator(window=1.0, now=clock)
    assert s.final("I lost my card") == ("I lost my card", False)
    clock.t += 0.8
    assert s.final("in the library") == ("I lost my card in the library", True)
    clock.t += 3.0
    assert s.final("thank you.") == ("thank you.", False)
    clock.t += 0.5
    assert s.final("Are you open?") == ("Are you open?", False)
    clock.t += 0.5  # a finished question is not continued by the next one
    assert s.final("I want to complain") == ("I want to complain", False)


def test_withdraw_last_takes_the_question_back_out_of_the_history():
    kb = KnowledgeBase.load(EXAMPLE)
    agent = Agent(Persona.load(EXAMPLE / "persona.yaml"), knowledge=kb)

    async def ask(text):
        return [e async for e in agent.respond(text)]

    asyncio.run(ask("Are you open on Sundays?"))
    agent.withdraw_last()
    asyncio.run(ask("Are you open on Sundays at noon?"))
    agent._settle_pending()
    users = [m.content for m in agent.history.messages() if m.role == "user"]
    assert users == ["Are you open on Sundays at noon?"]


@pytest.fixture
def llm_agent(gguf_brain):
    persona = Persona.load(EXAMPLE / "persona.yaml")
    kb = KnowledgeBase.load(EXAMPLE)
    # threshold 0.3 / sure 1.0: the question below goes to the model with its passages.
    settings = KnowledgeSettings(threshold=0.3, sure=1.0)
    return Agent(persona, brain=gguf_brain, knowledge=kb, knowledge_settings=settings)


async def said(agent: Agent, text: str) -> str:
    return " ".join([e.text async for e in agent.respond(text) if isinstance(e, Phrase)])


async def test_cold_start_prefill_puts_the_persona_in_the_cache(llm_agent, gguf_brain):
    gguf_brain.max_tokens = 4
    await gguf_brain.prefill([])  # another persona's conversation: nothing of ours cached
    cached = await llm_agent.prefill()
    assert cached > 100
    await said(llm_agent, "How much is printing?")
    assert gguf_brain.last_stats.reused_tokens >= cached - 8  # the system prompt was ready


async def test_prefill_of_a_partial_is_discarded_when_the_final_differs(llm_agent, gguf_brain):
    gguf_brain.max_tokens = 8
    question = "How much is printing?"
    await llm_agent.prefill()
    baseline = await said(llm_agent, question)
    llm_agent.reset()
    # The partial heard something else: the final's prompt shares only the start.
    await llm_agent.prefill("How much is a meeting room")
    after = await said(llm_agent, question)
    assert after == baseline  # nothing of the speculation leaks into the answer
    system = gguf_brain.prompt_tokens([Message("system", llm_agent.persona.system_prompt())])
    assert gguf_brain.last_stats.reused_tokens >= system - 8
