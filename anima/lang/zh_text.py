"""Mandarin text tools: simplified script, numbers read the Chinese way, and pinyin.

* :func:`to_simplified` converts with OpenCC's tables (``opencc-python-reimplemented``, which
  ships them), applied to what the recogniser heard and to everything spoken or subtitled.
* :func:`normalise` spells out what a voice must not guess at: phone numbers digit by digit
  (1 as 幺), years digit by digit, dates, clock times, money (元角分), percentages, decimals,
  and integers with their units (12345 -> 一万二千三百四十五; 2个 -> 两个).
* :func:`pinyin` gives tone-numbered syllables from pypinyin's phrase dictionary, which is what
  reads polyphones right (银行 yin2 hang2, 行走 xing2 zou3, 长大 zhang3 da4, 重要 zhong4).
"""

from __future__ import annotations

import re
from functools import cache

_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")
_FULLWIDTH = str.maketrans("０１２３４５６７８９％．：", "0123456789%.:")
# A count of two before a measure word is 两, not 二 (两个人, 两点).
_MEASURE = "个位种次件本张只条台天年岁块元分钟号楼层点项份名辆间家"


@cache
def _converter():  # noqa: ANN202 - opencc has no types
    try:
        from opencc import OpenCC
    except ImportError as exc:  # pragma: no cover - a main dependency
        raise RuntimeError(
            "simplified Chinese needs OpenCC: pip install opencc-python-reimplemented"
        ) from exc
    return OpenCC("t2s")


def to_simplified(text: str) -> str:
    """``text`` in simplified characters (traditional ones converted by OpenCC's phrase tables)."""
    if not text or text.isascii():
        return text
    return _converter().convert(text)


def integer(n: int) -> str:
    """Chinese reading of a whole number: 10 -> 十, 105 -> 一百零五, 20000 -> 两万 is 二万."""
    if n < 0:
        return "负" + integer(-n)
    if n == 0:
        return "零"
    if n >= 10**16:
        return digits(str(n))
    groups: list[int] = []
    while n:
        groups.append(n % 10000)
        n //= 10000
    out = ""
    zero = False
    for i in range(len(groups) - 1, -1, -1):
        g = groups[i]
        if g == 0:
            zero = bool(out)
            continue
        if out and (zero or g < 1000):
            out += "零"
        out += _section(g) + _BIG_UNITS[i]
        zero = False
    if out.startswith("一十"):
        out = out[1:]  # 十五, not 一十五
    return out


def _section(g: int) -> str:
    out = ""
    zero = False
    for pos in range(3, -1, -1):
        d = g // 10**pos % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += _DIGITS[d] + _SMALL_UNITS[pos]
    return out


def digits(text: str, one: str = "一") -> str:
    """Each digit of ``text`` read alone (years, phone and card numbers); ``one`` may be 幺."""
    return "".join(one if ch == "1" else _DIGITS[int(ch)] for ch in text if ch.isdigit())


def decimal(text: str) -> str:
    """``3.14`` -> 三点一四; a whole number as :func:`integer`."""
    whole, _, frac = text.partition(".")
    out = integer(int(whole or "0"))
    return out + ("点" + digits(frac) if frac else "")


def _money(amount: str) -> str:
    whole, _, frac = amount.partition(".")
    frac = (frac + "00")[:2]
    out = integer(int(whole)) + "元" if int(whole) or frac == "00" else ""
    if frac[0] != "0":
        out += _DIGITS[int(frac[0])] + "角"
    if frac[1] != "0":
        out += ("零" if frac[0] == "0" and out else "") + _DIGITS[int(frac[1])] + "分"
    return out


def _date(m: re.Match[str]) -> str:
    out = digits(m.group("y")) + "年" if m.group("y") else ""
    out += integer(int(m.group("m"))) + "月"
    return out + (integer(int(m.group("d"))) + (m.group("suffix") or "日") if m.group("d") else "")


def _time(m: re.Match[str]) -> str:
    hour, minute = int(m.group("h")), int(m.group("min"))
    if hour > 24 or minute > 59:
        return m.group(0)
    out = ("两" if hour == 2 else integer(hour)) + "点"
    if minute == 30:
        return out + "半"
    if minute:
        out += ("零" if minute < 10 else "") + integer(minute) + "分"
    return out


def _count(m: re.Match[str]) -> str:
    text = m.group("n")
    if len(text) > 1 and text.startswith("0") or len(text) > 12:
        return digits(text)  # codes, card and account numbers: digit by digit
    n = int(text)
    return "两" if n == 2 and m.group("unit") else integer(n)


_RULES: tuple[tuple[re.Pattern[str], object], ...] = (
    # Mobile and landline numbers, hotlines: digit by digit, 1 as 幺 (as on the phone).
    (
        re.compile(r"(?<!\d)(?:1[3-9]\d{9}|0\d{2,3}-?\d{7,8}|[48]00-?\d{3}-?\d{4})(?!\d)"),
        lambda m: digits(m.group(0), one="幺"),
    ),
    (
        re.compile(r"[¥￥]\s*(?P<amount>\d+(?:\.\d{1,2})?)|(?P<amount2>\d+(?:\.\d{1,2})?)\s*元"),
        lambda m: _money(m.group("amount") or m.group("amount2")),
    ),
    (re.compile(r"(?P<n>\d+(?:\.\d+)?)\s*%"), lambda m: "百分之" + decimal(m.group("n"))),
    (
        re.compile(
            r"(?<!\d)(?P<y>\d{4})\s*(?P<sep>[年/.-])\s*(?P<m>1[0-2]|0?[1-9])\s*(?:月|(?P=sep))\s*"
            r"(?P<d>3[01]|[12]\d|0?[1-9])(?P<suffix>[日号])?(?!\d)"
        ),
        _date,
    ),
    (
        re.compile(
            r"(?<!\d)(?P<y>)(?P<m>1[0-2]|0?[1-9])月(?:(?P<d>3[01]|[12]\d|0?[1-9])(?P<suffix>[日号]))?"
        ),
        _date,
    ),
    (re.compile(r"(?<!\d)(?P<y>\d{4})年"), lambda m: digits(m.group("y")) + "年"),
    (re.compile(r"(?<!\d)(?P<h>[01]?\d|2[0-4])[:：](?P<min>[0-5]\d)(?!\d)"), _time),
    (re.compile(r"(?<![\d.])-(?=\d)"), lambda m: "负"),
    (re.compile(r"\d+\.\d+"), lambda m: decimal(m.group(0))),
    (re.compile(rf"(?P<n>\d+)(?=(?P<unit>[{_MEASURE}])?)"), _count),
)


def normalise(text: str) -> str:
    """``text`` in simplified characters with every number written as it is read aloud."""
    text = to_simplified(text).translate(_FULLWIDTH)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)  # type: ignore[arg-type]
    return text


def pinyin(text: str) -> list[str]:
    """Tone-numbered pinyin per character (``ni3``), other runs of text kept as they are.

    Neutral tones are 5; ü is written ``v`` (as espeak-ng's pinyin voice reads it).
    """
    from pypinyin import Style, lazy_pinyin

    return lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True, errors="default")


_PAUSES = str.maketrans(
    {"，": ", ", "、": ", ", "；": "; ", "：": ", ", "。": ". ", "！": "! ", "？": "? "}
)


def pinyin_text(text: str) -> str:
    """``text`` as space-separated tone-numbered pinyin with ASCII punctuation (espeak-ng's
    ``cmn-latn-pinyin`` voice reads this as Mandarin; hanzi would be read without pypinyin's
    phrase dictionary, so polyphones would often be wrong)."""
    return " ".join(" ".join(pinyin(text.translate(_PAUSES))).split())
