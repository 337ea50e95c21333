"""Times and days in knowledge search: "can I still come at 4:20?" is a question about hours.

Visitors ask about opening hours in a hundred ways that share no word with the passage that
answers them: "It's quarter to five on Saturday, is it worth coming over?", "我下午快五点才能到，
还来得及吗". Two rewrites, applied to questions and passages alike before they become index
terms (:class:`anima.dialogue.lexical.Analyzer`):

- every clock time, part of the day or question for one ("what time", "几点") is followed by
  the shared term :data:`CLOCK`, so such a question leans towards passages that give times;
- a range of days is spelt out ("Monday to Thursday" → monday tuesday wednesday thursday,
  "周一至周五" → 星期一 … 星期五) and "weekdays"/"工作日" become Monday to Friday, so "Tuesday"
  finds "Monday to Thursday".

How each language says these is data: the ``[times]`` table of its pack
(``anima/lang/packs/*.toml``). Text is folded (lower case, NFKC) before it gets here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

CLOCK = "clocktime"  # the shared term; no visitor or operator writes it
_WORK_DAYS = 5  # "weekdays": the first five days of a pack's week


@lru_cache(maxsize=1)
def _rules() -> tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...]:
    """The rewrites of every pack that has a ``[times]`` table, compiled once."""
    from anima.lang import packs

    rules: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = []
    clocks: list[str] = []
    for pack in packs().values():
        table = pack.times
        days = [[str(name) for name in names] for names in table.get("days", [])]
        if days:
            index = {name: i for i, names in enumerate(days) for name in names}
            canonical = [names[0] for names in days]
            # Longest first, so "星期一" is not read as a shorter name inside it.
            any_day = "|".join(re.escape(n) for n in sorted(index, key=len, reverse=True))
            joiners = "|".join(re.escape(str(j)) for j in table.get("range_joiners", []))
            if joiners:
                # Only Latin letters bound a day's name: Chinese runs on without spaces.
                span = re.compile(
                    rf"(?<![a-z])({any_day})s? ?(?:{joiners}) ?({any_day})s?(?![a-z])"
                )
                rules.append((span, _spell_out(index, canonical)))
            working = "|".join(re.escape(str(w)) for w in table.get("working_days", []))
            if working:
                week = " " + " ".join(canonical[:_WORK_DAYS]) + " "
                rules.append(
                    (re.compile(rf"(?<![a-z])(?:{working})(?![a-z])"), lambda _m, w=week: w)
                )
        clocks += [str(p) for p in table.get("clock", [])]
    if clocks:
        # One pass for every pack's patterns: "9:00" is a time in any language, marked once.
        clock = re.compile("|".join(f"(?:{p})" for p in clocks))
        rules.append((clock, lambda m: f"{m.group(0)} {CLOCK} "))
    return tuple(rules)


def _spell_out(index: dict[str, int], canonical: list[str]) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        first, last = index[m.group(1)], index[m.group(2)]
        if last < first:  # "Friday to Monday" runs over the weekend
            last += len(canonical)
        names = [canonical[i % len(canonical)] for i in range(first, last + 1)]
        return " " + " ".join(names) + " "

    return replace


def mark_times(folded: str) -> str:
    """``folded`` text with ranges of days spelt out and :data:`CLOCK` after every time."""
    for pattern, replace in _rules():
        folded = pattern.sub(replace, folded)
    return folded
