"""Conversation history: a token budget, pinned system messages, barge-in truncation."""

from __future__ import annotations

import pytest

from anima.dialogue.brain import Message
from anima.dialogue.history import History, estimate_tokens, message_tokens


def test_estimate_counts_cjk_per_character():
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("你好世界") == 4
    assert message_tokens(Message("user", "abcd")) == 5  # + template overhead


def test_budget_drops_oldest_turns_first():
    history = History(max_tokens=60)
    for i in range(20):
        history.add(Message("user", f"question number {i} " + "x" * 40))
        history.record_reply(f"answer number {i} " + "y" * 40)
        assert history.tokens() <= 60
    kept = history.messages()
    assert kept[-1].content.startswith("answer number 19")
    assert kept[0].role == "user"  # never starts on an orphaned answer
    assert all("number 0 " not in m.content for m in kept)


def test_system_messages_are_pinned():
    history = History(max_tokens=80)
    history.add(Message("system", "You are Ava, a guide."))
    for i in range(30):
        history.add(Message("user", f"turn {i} " + "z" * 60))
    kept = history.messages()
    assert kept[0] == Message("system", "You are Ava, a guide.")
    assert kept[-1].content.startswith("turn 29")
    assert history.tokens() <= 80


def test_newest_message_is_kept_even_over_budget():
    history = History(max_tokens=10)
    history.add(Message("user", "short"))
    long = Message("user", "w" * 400)
    history.add(long)
    assert history.messages() == [long]


def test_barge_in_keeps_only_what_was_heard():
    history = History(max_tokens=500)
    history.add(Message("user", "When do you open?"))
    reply = "We open at nine every morning. On Sundays we open at ten."
    heard = reply.index("morning") + 3  # playback stopped inside "morning"
    assert history.record_reply(reply, heard_chars=heard) == "We open at nine every"
    assert history.messages()[-1] == Message("assistant", "We open at nine every")


def test_barge_in_edge_cases():
    history = History(max_tokens=500)
    assert history.record_reply("Hello there.", heard_chars=0) == ""
    assert history.record_reply("Hello there.", heard_chars=3) == ""  # half a word: nothing
    assert len(history) == 0
    assert history.record_reply("Hello there.", heard_chars=6) == "Hello"
    assert history.record_reply("Hello there.", heard_chars=99) == "Hello there."
    assert history.record_reply("Hello there.") == "Hello there."
    assert history.record_reply("你好，欢迎光临。", heard_chars=4) == "你好，欢"  # no spaces in CJK
    assert [m.content for m in history.messages()] == [
        "Hello",
        "Hello there.",
        "Hello there.",
        "你好，欢",
    ]


def test_clear_and_bad_budget():
    history = History(max_tokens=100)
    history.add(Message("system", "s"))
    history.add(Message("user", "u"))
    history.clear()
    assert history.messages() == [] and len(history) == 0
    with pytest.raises(ValueError):
        History(0)
