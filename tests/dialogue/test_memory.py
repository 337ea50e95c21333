"""Long-term memory: opt-in facts per user in SQLite, recalled across instances, forgotten."""

import sqlite3

import pytest

from anima.dialogue.memory import LongTermMemory, parse_memory_command


def test_remember_recall_across_instances_and_forget(tmp_path):
    path = tmp_path / "memory.sqlite3"
    mem = LongTermMemory(path, max_facts=3)
    mem.remember("alice", "I prefer large print")
    mem.remember("alice", "i prefer large print.")  # same fact: kept once
    mem.remember("bob", "my dog is called Rex")
    mem.close()

    again = LongTermMemory(path, max_facts=3)  # a later session / process
    assert again.recall("alice") == ["I prefer large print."]
    assert again.known("alice") and not again.known("carol")
    for n in range(4):
        again.remember("alice", f"fact number {n}")
    assert again.recall("alice") == ["fact number 1.", "fact number 2.", "fact number 3."]

    assert again.forget("alice") == 3
    assert again.recall("alice") == [] and not again.known("alice")
    assert again.recall("bob") == ["my dog is called Rex."]
    again.close()
    # Really gone from the file, not only hidden.
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM facts WHERE user_id='alice'").fetchone()[0] == 0
    assert b"fact number" not in path.read_bytes()


@pytest.mark.parametrize(
    ("text", "action", "fact"),
    [
        ("Remember that I prefer large print.", "remember", "I prefer large print"),
        ("please remember my name is Jo", "remember", "my name is Jo"),
        ("Can you remember: I use a wheelchair", "remember", "I use a wheelchair"),
        ("what do you remember about me?", "recall", ""),
        ("Please delete my data", "forget", ""),
        ("forget me", "forget", ""),
        ("forget everything you know about me", "forget", ""),
    ],
)
def test_memory_commands(text, action, fact):
    cmd = parse_memory_command(text)
    assert cmd is not None and cmd.action == action and cmd.fact == fact


@pytest.mark.parametrize("text", ["When do you open?", "I can't remember my PIN", "remember?"])
def test_not_memory_commands(text):
    assert parse_memory_command(text) is None
