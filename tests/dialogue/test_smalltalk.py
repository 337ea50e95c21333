"""Small talk is answered in character only when every clause of the utterance is small talk."""

import pytest

from anima.dialogue.persona import Persona
from anima.dialogue.smalltalk import small_talk

PERSONA = Persona.from_settings()


@pytest.mark.parametrize(
    ("said", "reply_has"),
    [
        ("Hi there!", "Hello"),
        ("Good morning! Who am I talking to?", "AI assistant"),  # the weightier kind answers
        ("Are you a real person?", "AI assistant"),
        ("Cheers, that's very helpful", "welcome"),
        ("How's it going?", "I'm well"),
        ("hello, is this working?", "hear you"),
        ("你是谁啊？", "AI助手"),  # a sentence particle does not hide the question
        ("你是机器人吗？", "AI助手"),
        ("好的，谢谢", "不客气"),
        ("辛苦了，谢谢啊", "不客气"),
        ("最近怎么样？", "我很好"),
        ("你今天累不累", "我很好"),
        ("晚上好！", "您好"),
    ],
)
def test_small_talk_gets_its_fixed_reply(said, reply_has):
    assert reply_has in (small_talk(said, PERSONA) or "")


@pytest.mark.parametrize(
    "said",
    [
        "Thanks, where do I park?",  # thanks, then a real question
        "Hello, I need a new bank card",
        "Is there a cafe?",
        "你好，我想办社保卡",
        "谢谢，停车场在哪？",
        "Who are you going to call about my card?",
        "hello " * 40,  # too long to be a greeting
        "",
    ],
)
def test_a_question_is_not_small_talk(said):
    assert small_talk(said, PERSONA) is None


def test_without_a_persona_no_template_is_left():
    for said in ("Who are you?", "你是谁？"):
        line = small_talk(said)
        assert line and "{" not in line and "}" not in line
