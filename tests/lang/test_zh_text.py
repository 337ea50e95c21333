"""Mandarin text normalisation, simplified script and pinyin (polyphones)."""

from __future__ import annotations

import pytest

from anima.lang.zh_text import integer, normalise, pinyin, pinyin_text, to_simplified


@pytest.mark.parametrize(
    ("n", "said"),
    [
        (0, "零"),
        (10, "十"),
        (15, "十五"),
        (105, "一百零五"),
        (1010, "一千零一十"),
        (20000, "二万"),
        (100200, "十万零二百"),
        (101000, "十万一千"),
        (110000, "十一万"),
        (100000000, "一亿"),
        (1000001, "一百万零一"),
        (-5, "负五"),
    ],
)
def test_integers_read_the_chinese_way(n, said):
    assert integer(n) == said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("我的电话是13812345678", "我的电话是幺三八幺二三四五六七八"),
        ("热线0571-88886666", "热线零五七幺八八八八六六六六"),
        ("2024年3月15日下午3:30", "二零二四年三月十五日下午三点半"),
        ("2025-01-09", "二零二五年一月九日"),
        ("3月8号", "三月八号"),
        ("12:05开门", "十二点零五分开门"),
        ("2:00", "两点"),
        ("价格是¥12.50", "价格是十二元五角"),
        ("一共105元", "一共一百零五元"),
        ("5.08元", "五元零八分"),
        ("0.05元", "五分"),
        ("增长了12.5%", "增长了百分之十二点五"),
        ("有2个人", "有两个人"),
        ("3.14", "三点一四"),
        ("温度-5度", "温度负五度"),
        ("２０２４年", "二零二四年"),
        ("订单号0012", "订单号零零一二"),
    ],
)
def test_numbers_dates_times_money_phones(text, said):
    assert normalise(text) == said


def test_traditional_becomes_simplified():
    assert to_simplified("請問銀行幾點開門？") == "请问银行几点开门？"
    assert normalise("這裡有2個櫃檯") == "这里有两个柜台"
    assert to_simplified("plain ascii") == "plain ascii"


@pytest.mark.parametrize(
    ("text", "syllables"),
    [
        ("银行", ["yin2", "hang2"]),
        ("行走", ["xing2", "zou3"]),
        ("长大", ["zhang3", "da4"]),
        ("长江", ["chang2", "jiang1"]),
        ("重要", ["zhong4", "yao4"]),
        ("重新", ["chong2", "xin1"]),
        ("银行行长", ["yin2", "hang2", "hang2", "zhang3"]),
    ],
)
def test_polyphones_by_phrase(text, syllables):
    assert pinyin(text) == syllables


def test_pinyin_text_keeps_pauses_and_other_text():
    assert pinyin_text("你好，世界。") == "ni3 hao3 , shi4 jie4 ."
    assert pinyin_text("绿色") == "lv4 se4"


def test_bad_input_never_crashes():
    for text in ["", "😀👍", "Hello 你好 123", "1" * 40, "。。。", "\u200b", "中" * 10_000]:
        out = normalise(text)
        assert isinstance(out, str)
    assert normalise("1" * 40) == "一" * 40  # too long for a number: digit by digit
