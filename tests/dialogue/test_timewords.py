"""Times and days in knowledge search: ranges of days spelt out, clock times share a term."""

import pytest

from anima.dialogue.knowledge import KnowledgeBase, Passage
from anima.dialogue.lexical import fold
from anima.dialogue.timewords import CLOCK, mark_times


def marked(text: str) -> list[str]:
    return mark_times(fold(text)).split()


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Open Monday to Thursday", ["monday", "tuesday", "wednesday", "thursday"]),
        ("Mon-Fri only", ["monday", "tuesday", "wednesday", "thursday", "friday"]),
        ("on weekdays", ["monday", "tuesday", "wednesday", "thursday", "friday"]),
        ("Friday to Monday", ["friday", "saturday", "sunday", "monday"]),  # over the weekend
        ("大厅周一至周五对外办公", ["星期一", "星期二", "星期三", "星期四", "星期五"]),
        ("礼拜六到礼拜天", ["星期六", "星期日"]),
        ("工作日", ["星期一", "星期二", "星期三", "星期四", "星期五"]),
    ],
)
def test_a_range_of_days_is_spelt_out(text, days):
    words = marked(text)
    assert [w for w in words if w in days] == days


def test_day_names_inside_words_are_left_alone():
    assert marked("lemon-fried sunflower") == ["lemon-fried", "sunflower"]


@pytest.mark.parametrize(
    "text",
    [
        "I got here at 4:20",
        "it's quarter to five",
        "open from 9am",
        "How late are you open?",
        "what time do you shut",
        "我五点零五分到的",
        "下午几点下班",
        "9：30开门",  # a full-width colon folds to ":"
    ],
)
def test_a_time_of_day_gets_the_shared_term(text):
    assert CLOCK in marked(text)


@pytest.mark.parametrize(
    "text", ["How many books can I borrow?", "我想办社保卡", "Room 12 on floor 3"]
)
def test_no_time_no_term(text):
    assert CLOCK not in marked(text)


def test_a_question_with_a_time_finds_the_hours_not_the_weekday_event():
    kb = KnowledgeBase(
        [
            Passage("a#hours", "Hours", "Staffed Monday to Thursday from 9:00 to 20:00."),
            Passage("a#rhymes", "Rhyme time", "Rhyme time for toddlers is every Tuesday."),
        ]
    )
    assert kb.best("Can I come in on Tuesday at 7 pm?").passage.id == "a#hours"
    zh = KnowledgeBase(
        [
            Passage("b#hours", "办公时间", "大厅周一至周五上午9:00到12:00、下午13:30到17:30办公。"),
            Passage("b#card", "社保卡", "社保卡补办在三号窗口。"),
        ]
    )
    assert zh.best("我星期三下午五点到，还能办社保卡吗？").passage.id == "b#hours"
