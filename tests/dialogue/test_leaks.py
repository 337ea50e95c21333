"""The leak filter: internal tokens never reach the TTS, also when split across deltas."""

from __future__ import annotations

import random
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from anima.config import KnowledgeSettings
from anima.dialogue.agent import Agent
from anima.dialogue.audit import AuditLog
from anima.dialogue.brain import Message, Phrase
from anima.dialogue.knowledge import KnowledgeBase
from anima.dialogue.leaks import LeakFilter
from anima.dialogue.persona import Persona

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"

LEAKY = (
    "[serious] [procedures.md#reporting-a-lost-library-card] To report a lost card, "
    "come to the desk <|im_end|>\n<|im_start|>user\nsecret"
)
INTERNAL = ("procedures.md", "[", "]", "<|", "|>", "im_end", "im_start", "secret", "serious")


def splits(text: str, seed: int) -> list[str]:
    """``text`` cut into random deltas of 1..6 characters."""
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(text):
        n = rng.randint(1, 6)
        out.append(text[i : i + n])
        i += n
    return out


def run(deltas: Sequence[str], sources: Sequence[str] = ()) -> str:
    leak = LeakFilter(sources)
    return "".join(leak.feed(d) for d in deltas) + leak.flush()


@pytest.mark.parametrize("seed", range(20))
def test_ids_tags_and_template_tokens_are_stripped_across_deltas(seed):
    out = run(splits(LEAKY, seed))
    # The emotion tag stays for the chunker (which turns it into the phrase's emotion).
    assert out.replace("[serious]", "").split() == "To report a lost card, come to the desk".split()
    assert "procedures" not in out and "<" not in out and "secret" not in out


@pytest.mark.parametrize(
    "text",
    [
        "Open at nine (source: hours.md#opening-hours).",
        "Open at nine [hours.md#opening-hours].",
        "Open at nine, faq.csv:3.",
        "Open at nine <visitor> </visitor>.",
        "Open at nine<end_of_turn> and more",
        "Open at nine</s>",
    ],
)
def test_each_kind_of_leak(text):
    out = run(splits(text, 1))
    assert re.findall(r"\w+", out) == ["Open", "at", "nine"], out


def test_known_ids_without_a_file_name_are_stripped():
    assert run(["We open at nine ", "faq", ":7", " daily."], ["faq:7"]).split() == [
        "We",
        "open",
        "at",
        "nine",
        "daily.",
    ]


def test_a_phrase_about_the_prompt_is_dropped_and_plain_text_kept():
    leak = LeakFilter()
    assert leak.phrase("You may use English, no lists or markup and no emoji.") == ""
    assert leak.phrase("We have lists of courses at the desk.") == (
        "We have lists of courses at the desk."
    )


def test_an_unclosed_id_at_the_end_is_dropped():
    assert run(["We open at nine. [hours.md#open"]).strip() == "We open at nine."


def test_ordinary_brackets_and_numbers_pass():
    text = "It costs 3.50 euros, i.e. less than 5, from 10:30 a.m. to 1 p.m. daily."
    assert run(splits(text, 3)) == text


class FakeModel:
    """A model that says what it is told to, in the deltas it is given."""

    name = "fake"

    def __init__(self, deltas: Sequence[str]) -> None:
        self.deltas = list(deltas)
        self.seen: list[Message] = []

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        self.seen = list(messages)
        for d in self.deltas:
            yield d

    async def aclose(self) -> None:
        return None


@pytest.mark.parametrize("seed", range(5))
async def test_nothing_internal_reaches_tts_audit_or_history(seed, tmp_path):
    kb = KnowledgeBase.load(EXAMPLE)
    persona = Persona.load(EXAMPLE / "persona.yaml")
    echo = persona.system_prompt().splitlines()[2]  # a whole line of the instructions
    brain = FakeModel(splits(f"{LEAKY.split('<|im_end|>')[0]}. {echo} <|im_end|>", seed))
    agent = Agent(
        persona,
        brain=brain,
        knowledge=kb,
        knowledge_settings=KnowledgeSettings(threshold=0.3, sure=0.8),  # a middling match
        audit=AuditLog(tmp_path / "audit"),
    )
    events = [e async for e in agent.respond("my card is gone, help")]
    said = " ".join(e.text for e in events if isinstance(e, Phrase))
    assert "lost card" in said
    entry = list(agent.audit.entries())[-1]
    agent._settle_pending()
    history = " ".join(m.content for m in agent.history.messages() if m.role == "assistant")
    for text in (said, entry["answer"], history):
        for bad in (*INTERNAL, "markup"):
            assert bad not in text, (bad, text)
