"""Grounded routing with a model configured: sure -> verbatim, middling -> the model with the
passages, no match -> small talk or don't know (never the model inventing a domain fact)."""

from __future__ import annotations

from pathlib import Path

from test_leaks import FakeModel

from anima.config import KnowledgeSettings
from anima.dialogue.agent import SMALL_TALK_UNLESS, Agent
from anima.dialogue.brain import Phrase
from anima.dialogue.knowledge import Hit, KnowledgeBase
from anima.dialogue.persona import Persona

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


def make(settings: KnowledgeSettings | None = None) -> tuple[Agent, FakeModel]:
    brain = FakeModel(["Invented", " fact."])
    kb = KnowledgeBase.load(EXAMPLE)
    persona = Persona.load(EXAMPLE / "persona.yaml")
    return Agent(persona, brain=brain, knowledge=kb, knowledge_settings=settings), brain


async def said(agent: Agent, text: str) -> str:
    return " ".join([e.text async for e in agent.respond(text) if isinstance(e, Phrase)])


async def test_sure_match_is_spoken_verbatim_without_the_model():
    agent, brain = make()
    answer = await said(agent, "What time do you open on Saturday?")
    passage = next(p for p in agent.knowledge.passages if p.id == "hours.md#opening-hours")
    assert answer == passage.text and agent.last_turn.route == "kb"
    assert brain.seen == []  # the model was never asked


async def test_middling_match_goes_to_the_model_with_passages_and_grounding():
    agent, brain = make(KnowledgeSettings(threshold=0.3, sure=0.8))
    answer = await said(agent, "my card is gone, help")
    assert answer == "Invented fact." and agent.last_turn.route == "llm"
    prompt = brain.seen[-1].content
    assert "Answer only from these facts" in prompt
    hit = agent.knowledge.search("my card is gone, help", 1)[0]
    assert hit.passage.text in prompt and hit.passage.id not in prompt


async def test_no_match_says_dont_know_and_fallback_never_the_model():
    agent, brain = make()
    answer = await said(agent, "What is the capital of France?")
    assert answer == agent.persona.dont_know_line() and brain.seen == []
    assert agent.last_turn.route == "fallback"


async def test_small_talk_is_answered_in_character_without_the_model():
    agent, brain = make()
    assert (await said(agent, "Do you hear me?")).startswith("Yes, I can hear you")
    assert agent.persona.name in await said(agent, "Tell me about yourself")
    assert brain.seen == [] and agent.last_turn.route == "smalltalk"


async def test_open_chat_lets_the_model_talk_when_nothing_matches():
    agent, brain = make(KnowledgeSettings(open_chat=True))
    assert await said(agent, "What is the capital of France?") == "Invented fact."
    assert "Answer only from these facts" not in brain.seen[-1].content


async def test_small_talk_beats_a_passage_found_by_chance_but_not_the_operators_own(monkeypatch):
    agent, brain = make()
    passage = next(p for p in agent.knowledge.passages if p.id == "hours.md#opening-hours")

    def found(confidence: float):  # what the search returns, at a chosen confidence
        return lambda query, k=3: [Hit(passage, confidence, confidence)]

    monkeypatch.setattr(agent.knowledge, "search", found(0.45))
    assert "AI assistant" in await said(agent, "Why don't you ever blink?")
    assert agent.last_turn.route == "smalltalk"
    # Found as surely as the operator's own FAQ row would be: the operator's words win.
    monkeypatch.setattr(agent.knowledge, "search", found(SMALL_TALK_UNLESS))
    assert await said(agent, "Are you a robot?") == passage.text
    assert agent.last_turn.route == "kb"
    # A question with a greeting in front is no small talk.
    monkeypatch.setattr(agent.knowledge, "search", found(0.45))
    assert await said(agent, "Hello, when do you open on Saturday?") == passage.text
    assert brain.seen == []
