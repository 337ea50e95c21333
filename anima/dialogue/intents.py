"""Operator intents (exact approved answers) and requests to speak to a human.

Regulated desks cannot let a model improvise on some topics. An intent names example
phrasings and the exact answer text; when the user's words match an intent closely enough the
answer is spoken verbatim and no model is asked. An intent may also set ``handoff: true`` to
call a member of staff. Intents live in any YAML file of the knowledge folder::

    intents:
      - name: complaint
        examples: ["I want to make a complaint", "How do I complain?"]
        answer: "I'm calling a member of staff who will take your complaint."
        handoff: true
        emotion: serious        # optional, one of anima.frames.EMOTIONS

Matching needs both sides to agree (the question is covered by an example *and* the example
by the question), so short generic questions do not trigger an intent by accident.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from anima.dialogue.knowledge import (
    Analyzer,
    KnowledgeError,
    LexicalIndex,
    fold,
    load_yaml,
    scalar_text,
)
from anima.frames import EMOTIONS


@dataclass(frozen=True, slots=True)
class Intent:
    """One operator intent: how people ask, and the exact approved answer."""

    name: str
    examples: tuple[str, ...]
    answer: str
    handoff: bool = False
    emotion: str = "neutral"


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """An intent recognised in the user's words, with its confidence."""

    intent: Intent
    confidence: float


class IntentMatcher:
    """Finds the operator intent a question asks for, if any."""

    def __init__(self, intents: Sequence[Intent], analyzer: Analyzer | None = None) -> None:
        self.intents = list(intents)
        self._owner = [i for i, intent in enumerate(self.intents) for _ in intent.examples]
        self._examples = [e for intent in self.intents for e in intent.examples]
        self._index = LexicalIndex(self._examples, analyzer or Analyzer())

    @classmethod
    def load(cls, folder: Path | None, analyzer: Analyzer | None = None) -> IntentMatcher:
        """Intents from every YAML file in ``folder`` that has an ``intents`` list."""
        intents: list[Intent] = []
        if folder is not None:
            for path in sorted(Path(folder).rglob("*.y*ml")):
                try:
                    data = load_yaml(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
                    why = " ".join(str(exc).split()) or "nested too deep"  # one line
                    raise KnowledgeError(f"cannot read {path.name}: {why}") from exc
                if isinstance(data, dict) and "intents" in data:
                    intents += parse_intents(data["intents"], path.name)
        names = [i.name for i in intents]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise KnowledgeError(f"intent name(s) defined twice: {', '.join(dupes)}")
        return cls(intents, analyzer)

    def __len__(self) -> int:
        return len(self.intents)

    def match(self, text: str, threshold: float) -> IntentMatch | None:
        """The best intent for ``text`` if its confidence reaches ``threshold``."""
        best: IntentMatch | None = None
        for m in self._index.search(text, k=5):
            # Harmonic mean of both coverages: close paraphrase in both directions.
            q, d = m.query_coverage, m.doc_coverage
            conf = 0.0 if q + d == 0 else 2 * q * d / (q + d)
            # An example said word for word is always a match.
            if fold(text).strip(" ?!.") == fold(self._examples[m.index]).strip(" ?!."):
                conf = 1.0
            if best is None or conf > best.confidence:
                best = IntentMatch(self.intents[self._owner[m.index]], conf)
        return best if best is not None and best.confidence >= threshold else None


def parse_intents(data: Any, source: str) -> list[Intent]:
    """Intents from the YAML ``intents`` list; bad entries raise :class:`KnowledgeError`."""
    if not isinstance(data, list):
        raise KnowledgeError(f"{source}: 'intents' must be a list")
    out = []
    for n, item in enumerate(data, 1):
        if not isinstance(item, dict) or not item.get("name") or not item.get("answer"):
            raise KnowledgeError(f"{source}: intent {n} needs a name and an answer")
        examples = item.get("examples") or []
        if isinstance(examples, str):
            examples = [examples]
        if not examples:
            raise KnowledgeError(f"{source}: intent {n} needs examples")
        where = f"{source}: intent {n}"
        name, answer = scalar_text(item["name"], where), scalar_text(item["answer"], where)
        if not isinstance(examples, list):
            raise KnowledgeError(f"{where}: 'examples' must be a list of sentences")
        examples = [scalar_text(e, where) for e in examples]
        emotion = scalar_text(item.get("emotion", "neutral"), where)
        if emotion not in EMOTIONS:
            raise KnowledgeError(f"{source}: intent {name!r}: unknown emotion {emotion!r}")
        out.append(
            Intent(
                name=name,
                examples=tuple(examples),
                answer=" ".join(answer.split()),
                handoff=bool(item.get("handoff", False)),
                emotion=emotion,
            )
        )
    return out


@lru_cache(maxsize=1)
def _requests() -> tuple[re.Pattern[str], ...]:
    """How people ask for a person, from the ``[handoff]`` table of every language pack.

    ``{human}`` in a pattern stands for the pack's ``human`` alternatives ("member of staff",
    "工作人员"…). Patterns see folded text (lower case, NFKC).
    """
    from anima.lang import packs

    out = []
    for pack in packs().values():
        table = pack.handoff
        human = str(table.get("human", ""))
        out += [re.compile(str(p).replace("{human}", human)) for p in table.get("patterns", [])]
    return tuple(out)


def _request(folded: str) -> re.Match[str] | None:
    for pattern in _requests():
        if m := pattern.search(folded):
            return m
    return None


def wants_human(text: str) -> bool:
    """True when the user asks to be served by a person."""
    return _request(fold(text)) is not None


def without_request(text: str) -> str:
    """``text`` (folded) less the words that ask for a person: what the person is wanted for.

    "Can I talk to someone about a lost card?" leaves "can i  about a lost card?"; a bare
    "Human, please!" leaves nothing worth searching.
    """
    folded = fold(text)
    m = _request(folded)
    return folded if m is None else folded[: m.start()] + " " + folded[m.end() :]
