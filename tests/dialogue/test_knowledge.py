"""Knowledge base: the example operator folder answers paraphrases and knows what it doesn't know."""

from pathlib import Path

import pytest

from anima.dialogue.knowledge import (
    KnowledgeBase,
    KnowledgeError,
    parse_csv,
    parse_markdown,
    stem,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"
THRESHOLD = 0.5  # the default knowledge.threshold


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load(EXAMPLE)


PARAPHRASES = [
    ("When do you open on Saturdays?", "hours.md#opening-hours"),
    ("what time do you close today", "hours.md#opening-hours"),
    ("How can I get my library card renewed?", "procedures.md#renewing-a-library-card"),
    ("my card was stolen", "procedures.md#reporting-a-lost-library-card"),
    ("how do I reserve a room for a meeting", "procedures.md#booking-a-meeting-room"),
    ("what's the price of printing in colour", "products.yaml:printing-price"),
    ("is the internet free here", "faq.csv:2"),
    ("where can I leave my car", "faq.csv:3"),
    ("where is the restroom", "faq.csv:4"),
    ("can I come in a wheelchair", "faq.csv:6"),
    ("are dogs allowed", "faq.csv:5"),
    ("can I buy a monthly ticket for the bus here", "products.yaml:transit-pass"),
    ("what's your phone number", "hours.md#contact"),
    ("where are you located", "hours.md#address-and-directions"),
    ("libary card renewel", "procedures.md#renewing-a-library-card"),  # typos
]


@pytest.mark.parametrize(("question", "source"), PARAPHRASES)
def test_paraphrases_find_the_right_passage(kb, question, source):
    hit = kb.best(question)
    assert hit is not None and hit.passage.id == source
    assert hit.confidence >= THRESHOLD


OUT_OF_SCOPE = [
    "Who won the football world cup?",
    "What is the capital of France?",
    "Can you recommend a good pizza place?",
    "how do I fix my car engine",
    "do you sell coffee",
    "how do I apply for a passport",
    "What is the meaning of life?",
]


@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_out_of_scope_is_below_threshold(kb, question):
    hit = kb.best(question)
    assert hit is None or hit.confidence < THRESHOLD


def test_passages_are_speakable_and_sourced(kb):
    ids = [p.id for p in kb.passages]
    assert len(ids) == len(set(ids))
    assert {i.split("#")[0].split(":")[0] for i in ids} == {
        "hours.md",
        "procedures.md",
        "faq.csv",
        "products.yaml",
    }
    for p in kb.passages:
        assert "#" not in p.text and "**" not in p.text and p.text.strip()


def test_markdown_split_and_cleaned():
    md = "# Top\n\n## A *b*\n\n- one\n- two [link](http://x.y)\n\n## A b\n\n```\ncode\n```\ntext\n"
    passages = parse_markdown(md, "f.md")
    assert [p.id for p in passages] == ["f.md#a-b", "f.md#a-b-2"]
    assert passages[0].title == "Top > A b"
    assert passages[0].text == "one. two link."
    assert passages[1].text == "text."


def test_csv_needs_columns_and_takes_alternatives():
    with pytest.raises(KnowledgeError, match="'question' and 'answer'"):
        parse_csv("foo,bar\n1,2\n", "x.csv")
    (p,) = parse_csv("Question,Answer\nA?|B?,yes\n", "x.csv")
    assert p.questions == ("A?", "B?") and p.id == "x.csv:2"


def test_bad_yaml_item_is_a_clear_error(tmp_path):
    (tmp_path / "x.yaml").write_text("- q: only a question\n")
    with pytest.raises(KnowledgeError, match="x.yaml: item 1 needs a question and an answer"):
        KnowledgeBase.load(tmp_path)
    with pytest.raises(KnowledgeError, match="does not exist"):
        KnowledgeBase.load(tmp_path / "nope")


def test_stemming_and_chinese():
    assert stem("opening") == stem("opens") == stem("opened") == "open"
    assert stem("libraries") == "library"
    from anima.dialogue.knowledge import Passage

    zh = KnowledgeBase([Passage("zh:1", "营业时间", "我们周一到周五九点开门。", ("你们几点开门",))])
    hit = zh.best("请问几点开门")
    assert hit is not None and hit.confidence >= THRESHOLD
    assert zh.best("今天天气怎么样") is None


async def test_kb_backend_as_a_plain_brain(kb):
    from anima.config import BrainSettings
    from anima.dialogue.backends import load_brain
    from anima.dialogue.brain import Message
    from anima.dialogue.kb_brain import KnowledgeBrain

    assert load_brain(BrainSettings(backend="kb")).name == "kb"
    brain = KnowledgeBrain(kb)
    said = "".join(
        [d async for d in brain.stream([Message("user", "<visitor>Can I bring my dog?</visitor>")])]
    )
    assert said == "Only assistance dogs are allowed inside the building."
    said = "".join([d async for d in brain.stream([Message("user", "Who won the cup?")])])
    assert said == brain.persona.dont_know_line()
