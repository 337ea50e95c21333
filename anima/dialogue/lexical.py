"""Lexical retrieval: words normalised to index terms, and BM25 over them with a 0..1 confidence.

Words are normalised (Unicode NFKC, case, accents), stop words dropped, lightly stemmed
(plurals, -ing, -ed, -e, -al) and mapped through synonym groups (built-in generic ones plus
the operator's); CJK text becomes character bigrams. A query word that is not in the
vocabulary is matched to the closest vocabulary word by character-trigram similarity. Used by
:mod:`anima.dialogue.knowledge` (passages) and :mod:`anima.dialogue.intents` (examples).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from anima.dialogue.timewords import mark_times

STOP_WORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being
    below between both but by can could did do does doing done during each either else
    for from further had has have having he her here hers him his i if in into is it its
    itself just me might more most must my myself no nor not now of off on once only or
    other our ours out over own please same shall she should so some such than that the
    their them then there these they this those through to too under until up upon us very
    was we were what whats when where which while who whom whose why will with would you
    your yours yourself yourselves hi hello hey thanks thank tell know want wanted like
    need get got let lets mine one ok okay oh um uh well really actually guys anyone
    somebody something anything way see say said go going i'm im i'd id i've ive you're
    youre it's dont don't doesn't doesnt isn't isnt can't cant how today tonight now
    currently here still come coming leave take put make do use give show ask try keep
    stay happen mean think look bring""".split()
)

# Generic synonym groups for public-facing desks; the first word is the canonical form.
# Operators add their own in any YAML file of the folder (``synonyms:``).
BUILTIN_SYNONYMS: tuple[tuple[str, ...], ...] = (
    (
        "price",
        "cost",
        "fee",
        "charge",
        "how much",
        "tariff",
        "rate",
        "多少钱",
        "收费",
        "费用",
        "价格",
        "要钱",
        "工本费",
    ),
    ("buy", "purchase", "order", "get one"),
    ("refund", "money back", "reimburse", "reimbursement"),
    ("phone", "telephone", "phone number", "mobile", "cell"),
    ("staff", "employee", "person", "human", "agent", "clerk", "someone"),
    ("help", "assist", "assistance", "support"),
    (
        "location",
        "where",
        "address",
        "located",
        "find you",
        "directions",
        "在哪里",
        "在哪儿",
        "在哪",
        "地址",
        "位置",
        "怎么去",
        "怎么走",
    ),
    ("parking", "park", "car park", "parking lot", "garage"),
    ("child", "children", "kid", "kids", "minor"),
    ("wheelchair", "accessible", "accessibility", "disabled", "step-free", "ramp"),
    ("pet", "dog", "dogs", "animal", "animals"),
    ("wifi", "wi-fi", "internet", "wireless", "无线网", "上网"),
    ("toilet", "toilets", "restroom", "bathroom", "wc", "loo", "lavatory"),
    ("lost", "missing", "misplaced", "forgot", "forgotten", "left behind"),
    ("pay", "payment", "paying", "支付", "付钱", "付款"),
    ("appointment", "booking", "book", "reserve", "reservation", "slot", "预约", "预定"),
    (
        "办公时间",
        "开门",
        "上班",
        "几点",
        "营业时间",
        "关门",
        "下班",
        "开放时间",
        "开放",
        "开馆",
        "闭馆",
        "营业",
        "午休",
        "中午休息",
    ),
    (
        "weekend",
        "saturday",
        "sunday",
        "周末",
        "周六",
        "周日",
        "星期六",
        "星期天",
        "星期日",
        "礼拜六",
        "礼拜天",
        "礼拜日",
    ),
    # Spoken Chinese names the weekdays three ways.
    ("星期一", "周一", "礼拜一"),
    ("星期二", "周二", "礼拜二"),
    ("星期三", "周三", "礼拜三"),
    ("星期四", "周四", "礼拜四"),
    ("星期五", "周五", "礼拜五"),
    ("lost", "丢失", "丢了", "遗失", "不见了", "落在", "忘在", "掉了", "找不到"),
    ("lost", "stolen", "pinched", "nicked", "robbed"),
    ("parking", "停车"),
    ("免费", "花钱", "要钱吗", "门票", "票价"),
    ("怎么", "咋", "怎样", "如何"),
    ("什么", "啥"),
    ("哪里", "哪儿", "什么地方", "啥地方", "几楼", "哪层", "几层", "哪一层"),
    ("child", "孩子", "小孩", "儿童", "小朋友"),
    ("代办", "代替", "委托", "替他", "替她", "替我", "帮他办", "帮她办"),
    ("atm", "cash machine", "cashpoint", "cash point", "cash dispenser", "取款机", "自动柜员机"),
    ("currency", "foreign currency", "exchange", "change money", "外币", "换汇", "兑换"),
    ("student", "university", "college", "学生", "大学生"),
    ("lift", "elevator", "stairs", "电梯", "楼梯"),
    # Social security and banking, the desks this engine serves first.
    ("社保卡", "社会保障卡"),
    ("医保", "医疗保险"),
    ("养老金", "退休金", "养老保险"),
    ("失业金", "失业保险金", "失业补助", "失业补贴", "辞退", "被辞", "下岗"),
    ("异地就医", "外地看病", "在外地看病", "去外地看病"),
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def fold(text: str) -> str:
    """Lower case, NFKC, accents removed: the form every comparison uses."""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    return "".join(c for c in text if not unicodedata.combining(c)).replace("’", "'")


def stem(word: str) -> str:
    """A light English suffix stripper (plural, -ing, -ed, -al, final e); keeps short words."""
    if len(word) <= 3 or not word.isascii() or not word.isalpha():
        return word
    for suffix, repl in (
        ("ies", "y"),
        ("sses", "ss"),
        ("xes", "x"),
        ("ches", "ch"),
        ("shes", "sh"),
    ):
        if word.endswith(suffix):
            word = word[: -len(suffix)] + repl
            break
    else:
        if word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
    for suffix, min_len in (("ing", 6), ("ed", 5), ("al", 7)):
        if word.endswith(suffix) and len(word) >= min_len:
            word = word[: -len(suffix)]
            # running -> run, stopped -> stop
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsaeiou":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def trigrams(word: str) -> frozenset[str]:
    """Character trigrams of ``<word>``, for fuzzy matching."""
    padded = f"<{word}>"
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


class Analyzer:
    """Text to index terms: folded, tokenised, stop words dropped, stemmed, synonyms mapped."""

    def __init__(self, synonyms: Iterable[Sequence[str]] = BUILTIN_SYNONYMS) -> None:
        self._canon: dict[str, str] = {}
        self._phrases: list[tuple[re.Pattern[str], str]] = []
        for group in synonyms:
            self.add_group(group)

    def add_group(self, group: Sequence[str]) -> None:
        """Treat every word or phrase of ``group`` as its first word."""
        words = [fold(str(w)).strip() for w in group if str(w).strip()]
        if len(words) < 2:
            return
        head = self._single(words[0])
        for w in words:
            if _CJK.search(w):
                # No spaces between Chinese words, so no word boundaries either.
                self._phrases.append((re.compile(re.escape(w)), head))
            elif " " in w or "-" in w:
                # Multi-word phrases are rewritten to the canonical token before tokenising.
                self._phrases.append((re.compile(rf"(?<!\w){re.escape(w)}(?!\w)"), head))
            else:
                self._canon.setdefault(stem(w), head)

    def _single(self, word: str) -> str:
        tokens = _WORD.findall(word)
        return stem(tokens[0]) if tokens else word

    def words(self, text: str) -> list[str]:
        """The index terms of ``text`` in order (duplicates kept)."""
        text = mark_times(fold(text))
        for pattern, head in self._phrases:
            text = pattern.sub(f" {head} ", text)
        out: list[str] = []
        for token in _WORD.findall(text):
            if _CJK.search(token):
                out.extend(_cjk_terms(token))
                continue
            if token.endswith("'s"):
                token = token[:-2]  # what's, library's
            if token in STOP_WORDS:
                continue
            s = stem(token)
            out.append(self._canon.get(s, s))
        return out


# Chinese function characters (question words, pronouns, particles): a bigram made only of
# them ("怎么", "在哪", "我的") says nothing about the topic, like an English stop word.
_CJK_FUNCTION = frozenset(
    "怎么什样哪里儿可以能你您我他她们的请问一下是不吗呢吧啊呀了在有要这那个多少如何为"
)


def _cjk_terms(token: str) -> list[str]:
    # Chinese/Japanese/Korean have no spaces: character bigrams are the usual lexical unit.
    chars = list(token)
    if len(chars) == 1:
        return [] if token in _CJK_FUNCTION else chars
    grams = ["".join(chars[i : i + 2]) for i in range(len(chars) - 1)]
    return [g for g in grams if not (g[0] in _CJK_FUNCTION and g[1] in _CJK_FUNCTION)]


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked document of a :class:`LexicalIndex` search."""

    index: int
    score: float
    confidence: float
    query_coverage: float
    doc_coverage: float


class LexicalIndex:
    """BM25 over analyzed documents, with fuzzy query expansion and a 0..1 confidence."""

    K1 = 1.2
    B = 0.75

    def __init__(self, documents: Sequence[str], analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self._docs = [Counter(analyzer.words(d)) for d in documents]
        self._lengths = [sum(c.values()) for c in self._docs]
        n = len(self._docs)
        # "or 1.0": documents with no words at all (a heading of "#"s) must not divide by zero.
        self._avg = ((sum(self._lengths) / n) if n else 1.0) or 1.0
        df: Counter[str] = Counter()
        for doc in self._docs:
            df.update(doc.keys())
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        # A word the knowledge never uses is strong evidence that the question is about
        # something else: it weighs half again as much as the rarest known word.
        self._idf_unknown = 1.5 * math.log(1 + (n - 1 + 0.5) / 1.5) if n else 1.0
        self._grams = {t: trigrams(t) for t in self._idf}
        self._doc_mass = [sum(self._idf[t] for t in doc) or 1.0 for doc in self._docs]
        self._last: tuple[str, list[tuple[str, str | None, float]]] | None = None

    def __len__(self) -> int:
        return len(self._docs)

    def _expand(self, word: str) -> tuple[str | None, float]:
        """The vocabulary term for ``word`` and how similar it is (1.0 exact, 0 none)."""
        if word in self._idf:
            return word, 1.0
        if len(word) < 4:
            return None, 0.0
        grams = trigrams(word)
        best, best_sim = None, 0.0
        for term, tg in self._grams.items():
            sim = len(grams & tg) / len(grams | tg)
            if sim > best_sim:
                best, best_sim = term, sim
        return (best, best_sim) if best_sim >= 0.4 else (None, 0.0)

    def _expanded(self, query: str) -> list[tuple[str, str | None, float]]:
        """(word, vocabulary term or None, similarity) for each index word of ``query``.

        The last query's are kept: the judge asks :meth:`unknown_share` right after
        :meth:`search` of the same question, and the fuzzy match scans the vocabulary.
        """
        last = self._last
        if last is not None and last[0] == query:
            return last[1]
        words = list(dict.fromkeys(self.analyzer.words(query)))
        expanded = [(w, *self._expand(w)) for w in words]
        self._last = (query, expanded)
        return expanded

    def unknown_share(self, query: str) -> tuple[int, float]:
        """(number of index words in ``query``, share of them the documents never use)."""
        expanded = self._expanded(query)
        unknown = sum(1 for _, term, _ in expanded if term is None)
        return len(expanded), unknown / max(1, len(expanded))

    def search(self, query: str, k: int = 3) -> list[Match]:
        """The ``k`` best documents for ``query``, best first (empty if nothing matches)."""
        expanded = self._expanded(query)
        if not expanded or not self._docs:
            return []
        q_mass = sum(self._idf[t] if t else self._idf_unknown for _, t, _ in expanded)
        results: list[Match] = []
        for i, doc in enumerate(self._docs):
            score = covered = 0.0
            matched_terms: set[str] = set()
            norm = self.K1 * (1 - self.B + self.B * self._lengths[i] / self._avg)
            for _, term, sim in expanded:
                if term is None or term not in doc:
                    continue
                tf = doc[term]
                idf = self._idf[term]
                score += sim * idf * tf * (self.K1 + 1) / (tf + norm)
                covered += sim * idf
                matched_terms.add(term)
            if score <= 0:
                continue
            q_cov = covered / q_mass
            d_cov = sum(self._idf[t] for t in matched_terms) / self._doc_mass[i]
            results.append(Match(i, score, q_cov, q_cov, d_cov))
        results.sort(key=lambda m: m.score, reverse=True)
        return results[:k]
