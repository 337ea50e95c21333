"""Language packs: everything that makes the avatar speak one language, as data.

A pack (``anima/lang/packs/<code>.toml``) names the recogniser settings (model, language code,
initial prompt), the voice and its text front end, the phoneme table for the lips, the endpoint
words, the persona's fixed lines and the page's strings. Nothing in the engine branches on a
language code: a stage asks the pack. The persona's ``language`` (``en``, ``zh``, ``auto``, or
a name such as ``中文`` / ``English``) or ``anima --lang`` picks it; ``auto`` listens for both
English and Mandarin and answers in the language of each turn.

Importing this module is cheap (TOML and regexes); the Chinese text tools (pypinyin, OpenCC)
load only when a pack's normaliser runs.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

_PACKS = Path(__file__).parent / "packs"


class LanguageError(ValueError):
    """An unknown language code, or a pack that cannot be read; the message lists the known."""


@dataclass(frozen=True)
class LanguagePack:
    """One language (or ``auto``) as data; see ``packs/*.toml`` for the meaning of each key."""

    code: str
    name: str
    prompt_name: str
    aliases: tuple[str, ...]
    script: str = ""  # a regex: text with these characters is in this language (auto)
    whisper_codes: tuple[str, ...] = ()  # recogniser language codes that mean this pack
    members: tuple[str, ...] = ()  # auto: the packs it switches between
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    persona: Mapping[str, str] = field(default_factory=dict)
    espeak_voice: str = ""
    espeak_rate: int = 175  # words a minute at length_scale 1
    normaliser: str = ""  # "module:function", text -> speakable text
    text_filter: str = ""  # "module:function" for heard, spoken and subtitled text
    front_end: str = ""  # "module:function": normalised text -> what the espeak voice reads
    phonemes: Mapping[str, str] = field(default_factory=dict)  # espeak symbol -> IPA for lips
    pinyin_ipa: Mapping[str, str] = field(default_factory=dict)  # initial/final -> IPA
    complete_endings: tuple[str, ...] = ()
    incomplete_endings: tuple[str, ...] = ()
    continuation_words: tuple[str, ...] = ()
    page: Mapping[str, str] = field(default_factory=dict)
    pii: Mapping[str, str] = field(default_factory=dict)  # spoken placeholders for masked data
    bench: Mapping[str, Any] = field(default_factory=dict)  # voices and sentences to measure
    small_talk: Mapping[str, Any] = field(default_factory=dict)  # kinds: patterns and replies
    times: Mapping[str, Any] = field(default_factory=dict)  # how clock times and days are said
    handoff: Mapping[str, Any] = field(default_factory=dict)  # how people ask for a person

    def matches(self, text: str) -> bool:
        """Whether ``text`` contains this pack's script (False for packs without one)."""
        return bool(self.script) and re.search(self.script, text) is not None

    def normalise(self, text: str) -> str:
        """``text`` as the voice should read it (numbers, dates, money spelt out)."""
        return _function(self.normaliser)(text) if self.normaliser else text

    def espeak_text(self, text: str) -> str:
        """Normalised ``text`` in the form the pack's espeak-ng voice reads (e.g. pinyin)."""
        return _function(self.front_end)(text) if self.front_end else text

    def clean_text(self, text: str) -> str:
        """Heard, spoken or subtitled text in this language's house style (e.g. simplified)."""
        return _function(self.text_filter)(text) if self.text_filter else text


@cache
def _function(spec: str) -> Callable[[str], str]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@cache
def packs() -> dict[str, LanguagePack]:
    """Every pack shipped, by code."""
    out: dict[str, LanguagePack] = {}
    for path in sorted(_PACKS.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            pack = LanguagePack(
                **{
                    k: tuple(v) if isinstance(v, list) else v
                    for k, v in data.items()
                    if k in LanguagePack.__dataclass_fields__
                }
            )
        except (OSError, tomllib.TOMLDecodeError, TypeError) as exc:
            raise LanguageError(f"language pack {path.name} is broken: {exc}") from exc
        out[pack.code] = pack
    return out


def _key(name: str) -> str:
    return " ".join(name.strip().lower().replace("_", "-").split())


def get_pack(language: str | None) -> LanguagePack:
    """The pack for a code or name (``zh``, ``zh-CN``, ``中文``, ``English``, ``auto``).

    An empty value means English. Raises :class:`LanguageError` naming the known codes.
    """
    key = _key(language or "en")
    for pack in packs().values():
        if key == pack.code or key in (_key(a) for a in (*pack.aliases, pack.prompt_name)):
            return pack
    # A descriptive name ("British English", "English (UK)", "简体中文 Mandarin"): a word of it.
    words = set(re.split(r"[\s(),/]+", key)) - {""}
    for pack in packs().values():
        if words & {_key(a) for a in pack.aliases}:
            return pack
    known = ", ".join(sorted(packs()))
    raise LanguageError(f"unknown language {language!r}; known: {known}")


def members(pack: LanguagePack) -> list[LanguagePack]:
    """The concrete languages of ``pack``: itself, or for ``auto`` the packs it switches between."""
    return [get_pack(code) for code in pack.members] or [pack]


def pack_for_text(text: str, candidates: list[LanguagePack]) -> LanguagePack:
    """The candidate whose script ``text`` is written in; the last one without a script else."""
    plain = [p for p in candidates if not p.script]
    for pack in candidates:
        if pack.matches(text):
            return pack
    return plain[-1] if plain else candidates[0]


def pack_for_whisper(code: str) -> LanguagePack | None:
    """The pack whose recogniser language is ``code`` (``zh``, ``en``), or None."""
    for pack in packs().values():
        if code in pack.whisper_codes:
            return pack
    return None


def clean_transcript(text: str, language: str) -> str:
    """``text`` the recogniser heard in ``language`` (a Whisper code), in the pack's style."""
    pack = pack_for_whisper(language)
    return pack.clean_text(text) if pack else text


def page_strings(language: str | None) -> dict[str, str]:
    """The page's strings in ``language``, English for any key the pack lacks."""
    base = dict(get_pack("en").page)
    try:
        base.update(get_pack(language).page)
    except LanguageError:
        pass
    return base


def apply_pack(data: dict[str, dict[str, Any]], pack: LanguagePack) -> None:
    """Fill ``data`` (settings sections as dicts) with the pack's values where none was given."""
    for section, values in pack.settings.items():
        target = data.setdefault(section, {})
        for key, value in values.items():
            target.setdefault(key, value)
    persona = data.setdefault("persona", {})
    for key, value in pack.persona.items():
        persona.setdefault(key, value)


def initial_prompt(language: str) -> str:
    """The recogniser prompt of the pack for ``language`` (a Whisper code); empty if none."""
    pack = pack_for_whisper(language)
    return str(pack.settings.get("listen", {}).get("initial_prompt", "")) if pack else ""
