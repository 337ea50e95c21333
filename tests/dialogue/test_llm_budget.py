"""The per-session LLM token budget (issue 9): once spent, the brain is not called at all.

Against the real OpenAI-compatible test server on loopback (``openai_server`` fixture): every
request it receives is a call the budget allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_server import Script
from prometheus_client import REGISTRY

from anima.config import KnowledgeSettings, SafetySettings
from anima.dialogue.agent import Agent, BudgetSpent
from anima.dialogue.brain import Phrase
from anima.dialogue.history import message_tokens
from anima.dialogue.knowledge import KnowledgeBase
from anima.dialogue.persona import Persona

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"
LINE = "That is all I can answer today, thank you!"
TOKENS = ["We", " open", " at", " ten", " on", " Saturdays", "."]  # 7 streamed deltas


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(EXAMPLE)


def agent(kb, brain, budget: int) -> Agent:
    return Agent(
        Persona.load(EXAMPLE / "persona.yaml"),
        brain=brain,
        knowledge=kb,
        knowledge_settings=KnowledgeSettings(sure=1.0),  # the model answers every question
        safety=SafetySettings(max_session_tokens=100_000),  # the other cap stays out of the way
        max_llm_tokens=budget,
        budget_line=LINE,
    )


def spent_total() -> float:
    return REGISTRY.get_sample_value("anima_llm_budget_spent_total") or 0.0


async def ask(a: Agent, text: str) -> list:
    return [e async for e in a.respond(text)]


async def test_budget_counts_prompt_and_streamed_tokens_then_stops_calling(
    kb, make_openai_brain, openai_server
):
    openai_server.script(Script(tokens=TOKENS))
    probe = agent(kb, make_openai_brain(), budget=10**6)
    await ask(probe, "When do you open on Saturday?")
    (call,) = openai_server.calls
    prompt = sum(message_tokens_of(m) for m in call.body["messages"])
    assert probe.llm_tokens == prompt + len(TOKENS)  # estimated prompt + one per delta

    # A budget with room for one turn (and a bit) but not two.
    openai_server.calls.clear()
    a = agent(kb, make_openai_brain(), budget=prompt + len(TOKENS) + 5)
    first = await ask(a, "When do you open on Saturday?")
    assert "We open at ten on Saturdays." in " ".join(
        e.text for e in first if isinstance(e, Phrase)
    )
    before = spent_total()
    second = await ask(a, "And on Sunday?")
    assert len(openai_server.calls) == 1  # the brain was not called for the second question
    assert [e.text for e in second if isinstance(e, Phrase)] == [LINE]
    (event,) = [e for e in second if isinstance(e, BudgetSpent)]
    assert event.allowed == prompt + len(TOKENS) + 5 and event.used == a.llm_tokens
    assert a.last_turn.route == "budget" and not a.last_turn.in_history
    assert spent_total() == before + 1
    # Answers that need no model still work: an operator intent is spoken as before.
    again = await ask(a, "Can I speak to a person?")
    assert LINE not in [e.text for e in again if isinstance(e, Phrase)]
    assert len(openai_server.calls) == 1


async def test_reply_is_capped_to_what_is_left(kb, make_openai_brain, openai_server):
    openai_server.script(Script(tokens=TOKENS))
    probe = agent(kb, make_openai_brain(), budget=10**6)
    await ask(probe, "When do you open on Saturday?")
    prompt = probe.llm_tokens - len(TOKENS)
    openai_server.calls.clear()
    a = agent(kb, make_openai_brain(), budget=prompt + 3)
    await ask(a, "When do you open on Saturday?")
    (call,) = openai_server.calls
    assert call.body["max_tokens"] == 3  # the request asks for no more than the budget's rest


async def test_no_budget_means_no_limit(kb, make_openai_brain, openai_server):
    openai_server.script(Script(tokens=TOKENS))
    a = agent(kb, make_openai_brain(), budget=0)
    for _ in range(3):
        await ask(a, "When do you open on Saturday?")
    assert len(openai_server.calls) == 3 and a.llm_tokens > 0


def message_tokens_of(m: dict) -> int:
    from anima.dialogue.brain import Message

    return message_tokens(Message(m["role"], m["content"]))
