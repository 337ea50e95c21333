"""Small talk is answered in character only when every clause of the utterance is small talk."""

from dataclasses import replace

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
        ("您是机器人还是真人？", "AI助手"),
        ("谢谢你啦！", "不客气"),
        ("你这两天过得咋样？", "我很好"),
        ("Are you a person or a robot?", "AI assistant"),
        ("How have you been?", "I'm well"),
        ("Thank you kindly, that was very helpful.", "welcome"),
        ("帮了大忙了，谢谢！", "不客气"),
        ("你讲得很清楚", "不客气"),
        ("行，那我先走了，拜拜！", "再见"),  # a goodbye outweighs thanks
        ("那就先这样吧", "再见"),
        ("You've been a great help", "welcome"),
        ("Right, I'm off then, thanks!", "Goodbye"),
        ("We're off to the castle now. Bye!", "Goodbye"),
        ("哎，你好", "您好"),
        ("你叫啥名儿？", "AI助手"),
        ("多谢多谢！", "不客气"),
        ("喂，有人吗", "听得到"),
        # Wrapped in fillers: an address, an opener, a repeat.
        ("你好你好", "您好"),
        ("哎你好，请问一下", "您好"),
        ("小姑娘你好，我来办点事", "您好"),
        ("嗨，美女你好", "您好"),
        ("Oh hello, sorry, first time here!", "Hello"),
        ("Hello love, you alright?", "I'm well"),
        ("Wait, are you a bot?", "AI assistant"),
        ("Are you a robot or is somebody talking through you?", "AI assistant"),
        ("Thank you so much, you've really put my mind at rest.", "welcome"),
        ("行，我知道了，拜拜", "再见"),
        ("谢谢你啊，说得挺清楚的", "不客气"),
        ("你是机器人吧？还挺像真人的", "AI助手"),
        ("你还挺像真人的", "谢谢夸奖"),
        ("Busy today, isn't it?", "It is"),
        # Remarks on the face itself: its speed, that it never blinks, a fan's praise.
        ("你是真人吗？怎么回得这么快", "AI助手"),
        ("你怎么一直不眨眼", "AI助手"),
        ("好的谢谢亲，爱了", "不客气"),
        ("Wow, you answered so fast!", "Thank you"),
        ("Are you real? Why don't you ever blink?", "AI assistant"),
        ("Right, that's me sorted. Ta-ra!", "Goodbye"),
        ("OK, I'll have a think about it. Bye for now!", "Goodbye"),
        ("行，那我先去排队了，再见啊", "再见"),
        ("我先下了，拜拜～", "再见"),
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
        "好的，那我的卡什么时候能拿到？",
        "那我走了，停车场在哪？",
        "Fine, where do I park?",
        "I'm going to the cathedral, where is it?",
        "哎，我的卡被吞了",
        "How are the opening hours on Sunday?",
        "Who are you going to call about my card?",
        "hello " * 40,  # too long to be a greeting
        "Excuse me",  # fillers alone wait for the question
        "请问一下",
        "Hello there, first time here, where do I park?",
        "你好，我第一次来，在哪取号？",
        "I missed my train",  # "miss" is a filler only as a word of its own
        "Why don't you open on Sundays?",
        "Wow, how much is parking?",
        "I'll have a think about which policy, how much is the excess?",
        "我先去排队了，要带身份证吗？",
        "为什么不能退款",
        "你们怎么回复得这么慢，我的快递呢？",
        "",
    ],
)
def test_a_question_is_not_small_talk(said):
    assert small_talk(said, PERSONA) is None


def test_the_avatars_own_name_is_a_filler():
    persona = replace(Persona.from_settings(), name="小岫")
    assert "您好" in (small_talk("哈喽，小岫！", persona) or "")
    assert small_talk("小岫，门票多少钱？", persona) is None


def test_without_a_persona_no_template_is_left():
    for said in ("Who are you?", "你是谁？"):
        line = small_talk(said)
        assert line and "{" not in line and "}" not in line


def test_small_talk_is_language_data():
    from anima.lang import get_pack

    for code in ("en", "zh"):
        kinds = [k for k, v in get_pack(code).small_talk.items() if isinstance(v, dict)]
        assert kinds[:2] == ["identity", "hear"] and "thanks" in kinds
