"""DialogueStage in a real Pipeline: final transcripts answered, partials passed, interrupts."""

import asyncio
from pathlib import Path

from openai_server import Script

from anima.config import KnowledgeSettings
from anima.dialogue.agent import Agent
from anima.dialogue.intents import IntentMatcher
from anima.dialogue.knowledge import KnowledgeBase
from anima.dialogue.persona import Persona
from anima.dialogue.stage import DialogueStage
from anima.frames import Error, Handoff, TextChunk, Transcript
from anima.pipeline import Pipeline

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


def make_agent(brain=None) -> Agent:
    kb = KnowledgeBase.load(EXAMPLE)
    return Agent(
        Persona.load(EXAMPLE / "persona.yaml"),
        brain=brain,
        knowledge=kb,
        intents=IntentMatcher.load(EXAMPLE, kb.analyzer),
        knowledge_settings=KnowledgeSettings(sure=1.0),  # the model answers every question
    )


async def collect(pipeline, until):
    out = []
    async for frame in pipeline.frames():
        out.append(frame)
        if until(frame):
            return out


async def test_stage_answers_finals_and_emits_handoff():
    stage = DialogueStage(make_agent())
    greeting = stage.greet(turn=0)
    assert greeting and all(isinstance(c, TextChunk) for c in greeting)
    async with Pipeline([stage]) as p:
        await p.push(Transcript(1, "are you open on", final=False))
        await p.push(Transcript(1, "Are you open on Sundays?", final=True))
        await p.push(Transcript(1, "I want to make a complaint", final=True))
        frames = await asyncio.wait_for(collect(p, lambda f: isinstance(f, Handoff)), 5)
    chunks = [f for f in frames if isinstance(f, TextChunk)]
    assert isinstance(frames[0], Transcript) and not frames[0].final  # partial passed through
    assert "We are closed on Sundays." in [c.text for c in chunks]
    assert all(c.turn == 1 for c in chunks)
    assert frames[-1] == Handoff(1, "intent:complaint")


async def test_stage_error_frame_and_interrupt(make_openai_brain, openai_server):
    openai_server.script(
        Script(status=503, error_body={"error": {"message": "overloaded"}}),
        Script(
            tokens=["Printing costs", " ten pence", " a page,", " colour costs", " more."],
            pause_after=3,
        ),
    )
    agent = make_agent(make_openai_brain(retries=0))
    stage = DialogueStage(agent)
    async with Pipeline([stage]) as p:
        await p.push(Transcript(1, "how much is printing?", final=True))
        frames = await asyncio.wait_for(collect(p, lambda f: isinstance(f, Error)), 5)
        assert frames[-2] == TextChunk(1, agent.persona.apology)
        assert frames[-1].stage == "dialogue" and "503" in frames[-1].message
        # The next reply is cut off by a barge-in while the server is mid-stream.
        await p.push(Transcript(1, "how much is printing?", final=True))
        await asyncio.wait_for(collect(p, lambda f: isinstance(f, TextChunk)), 5)
        turn = await p.interrupt("barge-in")
        call = openai_server.calls[-1]
        assert await asyncio.to_thread(call.closed.wait, 2)  # the HTTP stream was closed
        assert turn == p.turn and agent.last_turn.interrupted
    stage.interrupted(heard_chars=len("Printing costs"))  # heard so far
    assert agent.history.messages()[-1].content == "Printing costs"
