"""Word error rate with a light English normaliser, for tests and benchmarks.

Whisper writes "9" for "nine", "200" for "two hundred" and American spellings; the normaliser
maps those back so only recognition errors count, not formatting.
"""

from __future__ import annotations

import re

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SPELLING = {
    "favourite": "favorite",
    "colour": "color",
    "harbour": "harbor",
    "centre": "center",
    "theatre": "theater",
    "okay": "ok",
    "cancelled": "canceled",
    "travelled": "traveled",
}
_TOKEN = re.compile(r"\d+|[a-z']+")


def number_words(n: int) -> list[str]:
    """English words for 0 <= n < 1,000,000 ("two hundred and five" without the "and")."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + (number_words(n % 10) if n % 10 else [])
    if n < 1000:
        rest = number_words(n % 100) if n % 100 else []
        return [_ONES[n // 100], "hundred", *rest]
    if n < 1_000_000:
        rest = number_words(n % 1000) if n % 1000 else []
        return [*number_words(n // 1000), "thousand", *rest]
    return [str(n)]


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation; digits spelt out, British spellings American."""
    words: list[str] = []
    for token in _TOKEN.findall(text.lower().replace(",", "")):
        if token.isdigit():
            words.extend(number_words(int(token)))
        elif token != "and" or not words or words[-1] != "hundred":
            words.append(_SPELLING.get(token.strip("'"), token.strip("'")))
    return [w for w in words if w]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Levenshtein distance between word lists (substitutions, insertions, deletions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (0 is perfect; may exceed 1)."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)


_NOT_CHAR = re.compile(r"[\W_]+")


def cer(reference: str, hypothesis: str) -> float:
    """Character error rate (for Chinese, where words have no spaces): edits / reference chars.

    Punctuation, spaces and case are ignored; pass both texts in the same script (simplified).
    """
    ref = list(_NOT_CHAR.sub("", reference.lower()))
    hyp = list(_NOT_CHAR.sub("", hypothesis.lower()))
    if not ref:
        return float(bool(hyp))
    return edit_distance(ref, hyp) / len(ref)
