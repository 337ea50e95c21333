"""Small talk: fixed in-character replies to greetings, thanks, goodbyes and questions about
the avatar itself ("do you hear me?", "who are you?", "are you a robot?"), in English and
Chinese.

Said without a model, so a tiny model never answers "Do you hear me?" with "No." nor invents a
life story; ``{name}`` and ``{role}`` are filled from the persona.

The kinds, their patterns and replies are language data: the ``[small_talk]`` tables of the
language packs (``anima/lang/packs/*.toml``). An utterance is small talk when every clause of it
is ("Good morning! Who am I talking to?", "好的，谢谢啊"): clauses are cut at punctuation, and a
pack's sentence particles (Chinese 啊 呀 吧…) are taken off their ends. The reply answers the
weightiest kind present, in the pack's order: a question about the avatar before a greeting,
a goodbye before thanks. Anything else in the utterance ("thanks, and where do I park?") makes
it a question, not small talk.

People wrap small talk in words that carry nothing for a desk: an address ("hello love",
小姑娘你好), the avatar's own name (哈喽，小岫), an opener ("sorry, first time here", 我第一次来,
请问一下) and a repeat (你好你好). A pack's ``fillers`` patterns, and the persona's name, are
taken off a clause's ends and may stand as clauses of their own; a clause may repeat its kind.
Fillers alone are not small talk ("excuse me" wants an answer to what follows).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from anima.dialogue.persona import Persona

_CLAUSE_END = re.compile(r"[,.!?;:，。！？；：、~～…]+|\s+-\s+")
_MAX_CHARS = 120  # longer than this is a question, however friendly its start


@dataclass(frozen=True)
class _Kind:
    """One kind of small talk in one language: its clause pattern and its replies."""

    name: str
    weight: int  # its place in the pack: lower answers first
    pattern: re.Pattern[str]
    reply: str
    anonymous: str


@dataclass(frozen=True)
class _Language:
    particles: re.Pattern[str] | None
    fillers: str  # an alternation of the pack's filler patterns ("" when none)
    kinds: tuple[_Kind, ...]


@lru_cache(maxsize=1)
def _languages() -> tuple[_Language, ...]:
    """The small talk of every language pack that has some, compiled once."""
    from anima.lang import packs

    out = []
    for pack in packs().values():
        table = dict(pack.small_talk)
        particles = table.pop("particles", "")
        fillers = "|".join(f"(?:{p})" for p in table.pop("fillers", ()))
        kinds = tuple(
            _Kind(
                name,
                weight,
                _repeated("|".join(f"(?:{p})" for p in spec["patterns"])),
                str(spec["reply"]),
                str(spec.get("anonymous", spec["reply"])),
            )
            for weight, (name, spec) in enumerate(table.items())
        )
        if kinds:
            out.append(_Language(re.compile(particles) if particles else None, fillers, kinds))
    return tuple(out)


def _repeated(alternation: str) -> re.Pattern[str]:
    """A clause of one kind said once or more in a row (你好你好, "thanks, thanks")."""
    return re.compile(f"(?:{alternation})(?:\\s*(?:{alternation}))*", re.I)


@lru_cache(maxsize=64)
def _wrapper(fillers: str, name: str) -> re.Pattern[str]:
    """Fillers (and the persona's name) at a clause's start and end, to take off."""
    words = "|".join(x for x in (fillers, re.escape(name.lower()) if name else "") if x)
    # Not inside a Latin word: "miss" is no filler in "missed".
    return re.compile(f"^(?:(?:{words})(?![a-z])\\s*)+|(?:\\s*(?<![a-z])(?:{words}))+$", re.I)


_FILLER = object()  # a clause that is only fillers


def _kind_of(clause: str, name: str = "") -> _Kind | object | None:
    for lang in _languages():
        bare = lang.particles.sub("", clause) if lang.particles else clause
        if lang.fillers or name:
            bare = _wrapper(lang.fillers, name).sub("", bare).strip()
            if not bare:
                return _FILLER
            bare = lang.particles.sub("", bare) if lang.particles else bare
        for kind in lang.kinds:
            if bare and kind.pattern.fullmatch(bare):
                return kind
    return None


def small_talk(text: str, persona: Persona | None = None) -> str | None:
    """A fixed reply to a greeting, thanks, goodbye or a question about the avatar itself."""
    text = text.strip()
    if not text or len(text) > _MAX_CHARS:
        return None
    found: list[_Kind] = []
    name = persona.name if persona is not None else ""
    for raw in _CLAUSE_END.split(text):
        clause = " ".join(raw.split()).lower().strip("\"'“”‘’ ")
        if not clause:
            continue
        kind = _kind_of(clause, name)
        if kind is None:
            return None  # a clause that is not small talk: the utterance is a question
        if isinstance(kind, _Kind):
            found.append(kind)
    if not found:
        return None
    kind = min(found, key=lambda k: k.weight)
    if persona is None:
        return kind.anonymous
    return kind.reply.replace("{name}", persona.name).replace("{role}", persona.role)
