"""Operator intents match paraphrases of their examples, and requests for a person are seen."""

from pathlib import Path

import pytest

from anima.dialogue.intents import IntentMatcher, wants_human, without_request
from anima.dialogue.knowledge import KnowledgeError

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


@pytest.fixture(scope="module")
def intents() -> IntentMatcher:
    return IntentMatcher.load(EXAMPLE)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("I want to make a complaint", "complaint"),
        ("I'd like to complain", "complaint"),
        ("what happens to my personal data", "data_protection"),
        ("privacy policy?", "data_protection"),
        ("someone is hurt, please help", "emergency"),
    ],
)
def test_intent_paraphrases(intents, text, name):
    m = intents.match(text, 0.6)
    assert m is not None and m.intent.name == name


@pytest.mark.parametrize("text", ["When do you open?", "how much is printing", "I need help"])
def test_other_questions_are_not_intents(intents, text):
    assert intents.match(text, 0.6) is None


def test_intent_fields(intents):
    by_name = {i.name: i for i in intents.intents}
    assert by_name["complaint"].handoff and not by_name["data_protection"].handoff
    assert by_name["emergency"].emotion == "serious"


def test_bad_intent_file(tmp_path):
    (tmp_path / "i.yaml").write_text("intents:\n  - name: x\n    answer: y\n")
    with pytest.raises(KnowledgeError, match="needs examples"):
        IntentMatcher.load(tmp_path)
    (tmp_path / "i.yaml").write_text(
        "intents:\n  - name: x\n    examples: [a b]\n    answer: y\n    emotion: angry\n"
    )
    with pytest.raises(KnowledgeError, match="unknown emotion"):
        IntentMatcher.load(tmp_path)


@pytest.mark.parametrize(
    "text",
    [
        "Can I talk to a human?",
        "I want to speak with someone",
        "get me a real person",
        "agent please",
        "Human!",
        "I don't want to talk to a robot",
        "could I speak to a member of staff",
        "转人工",
        "人工吧",
        "帮我找个工作人员",
        "叫你们经理来",
        "我不想跟机器人说",
        "有没有人能帮我一下",
    ],
)
def test_wants_human(text):
    assert wants_human(text)


@pytest.mark.parametrize(
    "text",
    [
        "What are the opening hours?",
        "Is the human resources office open?",
        "someone stole my card",
        "工作人员几点下班？",
        "你是真人吗？",
        "有人在吗？",  # small talk: can anyone hear me
    ],
)
def test_not_asking_for_a_human(text):
    assert not wants_human(text)


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Can I talk to someone about a lost card?", "lost card"),
        ("我想跟工作人员说一下社保卡补办的事", "社保卡补办"),
        ("Human, please!", ""),
    ],
)
def test_what_the_person_is_wanted_for_is_left(text, topic):
    rest = " ".join(without_request(text).split()).strip(" !?,.")
    assert topic in rest and ("talk" not in rest and "工作人员" not in rest)
    assert bool(rest) == bool(topic)
