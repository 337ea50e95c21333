"""Bad input to the mind: each a clear one-line error or a bounded answer, never a crash."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from anima.dialogue.agent import Agent
from anima.dialogue.brain import Phrase
from anima.dialogue.knowledge import KnowledgeBase, KnowledgeError
from anima.dialogue.persona import Persona

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


def test_an_empty_file_gives_no_passages(tmp_path):
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(KnowledgeError, match="empty.csv: needs a header"):
        KnowledgeBase.load(tmp_path)
    (tmp_path / "empty.csv").unlink()
    assert len(KnowledgeBase.load(tmp_path)) == 0


def test_a_binary_file_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / "scan.md").write_bytes(bytes(range(256)) * 40)
    with pytest.raises(KnowledgeError) as err:
        KnowledgeBase.load(tmp_path)
    assert "scan.md" in str(err.value) and "\n" not in str(err.value)


def test_a_50_mb_folder_is_refused_at_once(tmp_path):
    with open(tmp_path / "huge.md", "wb") as f:
        f.truncate(50_000_000)  # sparse: 50 MB to the file system, instant to make
    started = time.perf_counter()
    with pytest.raises(KnowledgeError, match="huge.md: knowledge too large"):
        KnowledgeBase.load(tmp_path)
    assert time.perf_counter() - started < 1.0


def test_other_files_in_the_folder_are_ignored(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff" * 1000)
    (tmp_path / "a.md").write_text("# Hours\n\nWe open at nine.\n")
    assert [p.text for p in KnowledgeBase.load(tmp_path).passages] == ["We open at nine."]


async def test_a_10000_character_question_gets_a_bounded_answer():
    kb = KnowledgeBase.load(EXAMPLE)
    agent = Agent(Persona.load(EXAMPLE / "persona.yaml"), knowledge=kb)
    question = ("When do you open on Saturday? " + "blah " * 2000)[:10_000]
    started = time.perf_counter()
    said = [e.text async for e in agent.respond(question) if isinstance(e, Phrase)]
    assert said and time.perf_counter() - started < 2.0
    assert len(agent.last_turn.question) <= agent.max_input_chars
