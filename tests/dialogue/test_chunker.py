"""The phrase chunker: early first phrase, safe boundaries, emotion markup, any delta split."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anima.dialogue.brain import Phrase
from anima.dialogue.chunker import TAG_MAX, PhraseChunker


def chunk(text: str, step: int | None = None, **kwargs) -> list[Phrase]:
    """Feed ``text`` whole (step None) or in pieces of ``step`` characters, then flush."""
    chunker = PhraseChunker(**kwargs)
    pieces = [text] if step is None else [text[i : i + step] for i in range(0, len(text), step)]
    out = []
    for piece in pieces:
        out += chunker.feed(piece)
    return out + chunker.flush()


def texts(text: str, **kwargs) -> list[str]:
    """Phrase texts, checked to be the same however the text is split into deltas."""
    whole = chunk(text, **kwargs)
    for step in (1, 2, 3, 7):
        assert chunk(text, step, **kwargs) == whole, f"split every {step} chars differs"
    return [p.text for p in whole]


def test_first_phrase_at_a_clause_boundary_then_sentences():
    assert texts("Hello there, how are you today? I am fine, thanks. Bye!") == [
        "Hello there,",
        "how are you today?",
        "I am fine, thanks.",
        "Bye!",
    ]


def test_first_phrase_after_a_few_words_when_no_boundary_comes():
    assert texts("The west wing holds paintings from three centuries. Enjoy.") == [
        "The west wing holds",
        "paintings from three centuries.",
        "Enjoy.",
    ]
    assert texts("Yes I can help you with that today", first_words=2)[0] == "Yes I"


def test_first_phrase_is_released_as_soon_as_it_is_known():
    chunker = PhraseChunker()
    assert chunker.feed("Sure") == []
    assert chunker.feed(",") == []  # "," could still be "1,000": wait for the next character
    assert chunker.feed(" the") == [Phrase("Sure,")]
    assert chunker.feed(" west wing opens at nine") == []  # later phrases end at sentences
    assert chunker.feed(".") == []
    assert chunker.feed(" Then") == [Phrase("the west wing opens at nine.")]
    assert chunker.flush() == [Phrase("Then")]


@pytest.mark.parametrize(
    "text",
    [
        "Pi is 3.14 and 1,000,000 people came at 10:30 on 2024-05-01.",
        "Dr. Smith and Mrs. Jones met Prof. Lee at St. Mary's.",
        "Bring food, e.g. apples, i.e. fruit, etc. and arrive at 9 a.m. or 5 p.m. sharp.",
        "The U.S. and the U.K. signed it.",
        "Ask J. R. Tolkien about it.",
        "See https://example.com/a.b?x=1,2&y=3:4 or mail anna.b@museum.example.org now.",
        "It costs $3.50, or €2,99 in Europe.",
    ],
)
def test_never_splits_numbers_abbreviations_urls_or_emails(text):
    # As a later phrase (after a first one) the whole sentence stays together.
    assert texts("Okay. " + text) == ["Okay.", text]


def test_first_phrase_word_count_keeps_numbers_and_titles_with_what_follows():
    assert texts("Our doors open 9 a.m. every day.")[0] == "Our doors open 9 a.m. every"
    assert texts("Please ask Dr. Smith first.")[0] == "Please ask Dr. Smith"


def test_first_phrase_ends_at_a_natural_break_after_two_words():
    # Issue 22: the first sound comes sooner from a shorter first phrase, cut where speech
    # naturally breaks (before a conjunction or preposition), from two words on.
    assert texts("We open at 9 a.m. every day.") == ["We open", "at 9 a.m. every day."]
    assert texts("The library is open until eight tonight.")[0] == "The library is open"
    assert texts("Yes and no.")[0] == "Yes and no."  # one word is too short a phrase
    assert texts("Please ask Dr. Smith for help.")[0] == "Please ask Dr. Smith"
    chunker = PhraseChunker()
    assert chunker.feed("We open an") == []  # "an" may still become "and"
    assert chunker.feed("d close") == [Phrase("We open")]
    assert chunker.feed(" late.") + chunker.flush() == [Phrase("and close late.")]


def test_list_numbers_and_line_breaks():
    assert texts("Steps:\n1. Open the door.\n2. Walk in.\nDone") == [
        "Steps:",
        "1. Open the door.",
        "2. Walk in.",
        "Done",
    ]


def test_closing_quotes_and_ellipses_stay_with_their_phrase():
    assert texts('He said "stop." Then he left (quickly.) Wait... what?!') == [
        'He said "stop."',
        "Then he left (quickly.)",
        "Wait...",
        "what?!",
    ]


def test_chinese_punctuation():
    assert texts("你好，欢迎来到博物馆。今天有很多展览！你想看什么？好的；明白。") == [
        "你好，",
        "欢迎来到博物馆。",
        "今天有很多展览！",
        "你想看什么？",
        "好的；",
        "明白。",
    ]
    assert texts("「你好。」他说。") == ["「你好。」", "他说。"]


def test_chinese_without_punctuation_uses_character_count():
    # A CJK character counts as half a word: 4 words = 8 characters.
    assert texts("今天天气很好我们一起去博物馆看展览吧")[0] == "今天天气很好我们"


def test_mixed_ascii_punctuation_before_chinese():
    assert texts("Hello!你好。") == ["Hello!", "你好。"]


def test_dash_is_a_clause_boundary_for_the_first_phrase():
    assert texts("Okay — let me check that for you.") == ["Okay —", "let me check that for you."]
    assert texts("Open 2010–2020 only.") == ["Open 2010–2020 only."]


def test_emotion_tags_set_following_phrases_and_never_reach_text():
    phrases = chunk("[happy] Great to see you! [SAD]Sorry, we are closed. [Serious] Leave now.")
    assert phrases == [
        Phrase("Great to see you!", "happy"),
        Phrase("Sorry, we are closed.", "sad"),
        Phrase("Leave now.", "serious"),
    ]


def test_tag_split_across_deltas():
    chunker = PhraseChunker()
    out = (
        chunker.feed("[hap") + chunker.feed("py] Hi") + chunker.feed(" there,") + chunker.feed(" ")
    )
    assert out == [Phrase("Hi there,", "happy")]
    assert chunker.emotion == "happy"
    # The tag changes the emotion: "all good" goes out as it was; a lone "." is not spoken.
    assert chunker.feed("all good[ne") + chunker.feed("utral].") + chunker.flush() == [
        Phrase("all good", "happy")
    ]


def test_tag_in_the_middle_splits_the_phrase_by_emotion():
    assert chunk("Well, the news is [sad] not good today. [neutral] Anything else?") == [
        Phrase("Well,"),
        Phrase("the news is"),
        Phrase("not good today.", "sad"),
        Phrase("Anything else?"),
    ]


def test_unknown_and_unclosed_brackets():
    assert texts("This is [laughs] funny [1] really.") == ["This is funny really."]
    long = "[" + "x" * (TAG_MAX + 1) + "] stays"
    assert texts(long) == [long]  # too long to be markup: ordinary text
    assert texts("Keep [this\n] too") == ["Keep [this", "] too"]
    assert texts("Thanks for asking [hap") == ["Thanks for asking"]  # cut-off tag dropped


def test_whitespace_is_normalised_and_empty_phrases_never_emitted():
    assert texts("  Hello   there ,\t friend .  \n\n  [happy]  \n ... ") == [
        "Hello there ,",
        "friend .",
    ]
    assert chunk("") == [] and chunk("   \n ") == [] and chunk("[sad] ...") == []


def test_max_chars_splits_a_long_run_at_a_comma_or_space():
    text = "Okay. " + ", ".join(["word"] * 60) + "."
    phrases = texts(text, max_chars=50)
    assert all(len(p) <= 50 for p in phrases)
    assert all(p.endswith((",", ".")) for p in phrases)
    assert "".join(phrases).replace(" ", "") == text.replace(" ", "")
    assert texts("x" * 120, max_chars=50) == ["x" * 50, "x" * 50, "x" * 20]


def test_flush_starts_a_new_reply_and_reset_drops_everything():
    chunker = PhraseChunker()
    chunker.feed("[sad] One two")
    assert chunker.flush() == [Phrase("One two", "sad")]
    assert chunker.feed("Again, yes ") == [Phrase("Again,")]  # early first phrase, neutral
    chunker.feed("and [happy")
    chunker.reset()
    assert chunker.emotion == "neutral"
    assert chunker.feed("Fresh start, ") == [Phrase("Fresh start,")]
    assert chunker.flush() == []


def test_bad_arguments():
    with pytest.raises(ValueError):
        PhraseChunker(first_words=0)
    with pytest.raises(ValueError):
        PhraseChunker(max_chars=5)


# --- property: nothing is lost, nothing is added, however the deltas fall ------------------

_TAG = re.compile(r"\[[^\[\]\n]{0,N}(?:\]|\Z)".replace("N", str(TAG_MAX)))
_pieces = st.sampled_from(
    [
        "Hello",
        "world",
        " ",
        "  ",
        "\n",
        ",",
        ".",
        "!",
        "?",
        ":",
        ";",
        "—",
        "3.14",
        "1,000",
        "10:30",
        "Dr.",
        "e.g.",
        "U.S.",
        "https://a.b/c.d",
        "x@y.io",
        "你好",
        "。",
        "，",
        "！",
        "[happy]",
        "[SAD]",
        "[laughs]",
        "[",
        "]",
        "[hap",
        "py]",
        '"',
        "(",
        ")",
        "…",
        "1.",
        "a",
    ]
)


def _squash(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(_pieces, max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12),
    first_words=st.integers(min_value=1, max_value=6),
)
def test_phrases_are_the_input_minus_tags_for_any_split(parts, cuts, first_words):
    text = "".join(parts)
    bounds = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    chunker = PhraseChunker(first_words=first_words, max_chars=40)
    phrases = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        phrases += chunker.feed(text[a:b])
    phrases += chunker.flush()

    got = _squash("".join(p.text for p in phrases))
    expected = _squash(_TAG.sub("", text))
    # Every letter and digit arrives, in order; nothing is added; only runs of bare
    # punctuation that would form a phrase of their own (unspeakable) may be left out.
    assert re.sub(r"\W", "", got) == re.sub(r"\W", "", expected)
    assert _is_subsequence(got, expected)
    if not re.search(r"\W{40}", expected):  # no unspeakable run long enough to be cut alone
        assert expected.startswith(got)
        assert not re.search(r"\w", expected[len(got) :])
    for p in phrases:
        assert p.text and p.text == " ".join(p.text.split())
        assert re.search(r"\w", p.text)
        assert p.emotion in {"neutral", "happy", "sad"}
        assert len(p.text) <= 40
    assert phrases == chunk(text, first_words=first_words, max_chars=40)  # split-invariant
