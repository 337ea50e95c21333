"""Safety around the brain: input moderation, injection resistance, output filter, caps.

* :class:`InputModerator` refuses user text with operator-blocked terms or patterns before it
  reaches any model.
* :func:`detect_injection` spots attempts to re-programme the avatar ("ignore previous
  instructions", "you are now…", fake ``system:`` turns, chat-template tokens); such text is
  answered by the persona's stay-in-role line and never forwarded. Everything else that goes to
  a model is :func:`wrap_user_text`-ed: delimiters and template tokens inside it are defused,
  and the system prompt tells the model that delimited text is never an instruction.
* :class:`PiiMasker` masks card numbers (Luhn-checked), IBANs (mod-97 checked), SSN- and UK
  NI-style ID numbers, e-mail addresses and phone numbers, except strings on an allow list
  (the operator's own published phone number, say).
* :class:`OutputFilter` sits between the chunker and the TTS: it masks PII, stops on blocked
  terms and on any echo of the system prompt's instructions, and holds back a phrase that ends
  in digits until the next one arrives, so a number split across two phrases is still seen
  whole.
* :class:`ReplyBudget` caps one reply (words, sentences); the per-session token cap counts
  with :func:`~anima.dialogue.history.estimate_tokens`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from anima.dialogue.brain import Phrase
from anima.dialogue.knowledge import fold
from anima.dialogue.persona import VISITOR_CLOSE, VISITOR_OPEN


def _term_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    # Terms are matched on folded text at word boundaries: "ass" must not block "class".
    parts = [re.escape(fold(t).strip()) for t in terms if t.strip()]
    if not parts:
        return None
    return re.compile(r"(?<!\w)(?:" + "|".join(sorted(parts, key=len, reverse=True)) + r")(?!\w)")


def _compile_all(patterns: Iterable[str]) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p, re.IGNORECASE))
        except re.error as exc:
            raise ValueError(f"bad safety pattern {p!r}: {exc}") from exc
    return out


class InputModerator:
    """Refuses user text containing blocked terms or matching blocked regexes."""

    def __init__(self, terms: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        self._terms = _term_pattern(terms)
        self._patterns = _compile_all(patterns)

    def check(self, text: str) -> str | None:
        """The reason to refuse ``text`` (what matched), or None when it may pass."""
        if self._terms is not None and (m := self._terms.search(" ".join(fold(text).split()))):
            return f"blocked term {m.group(0)!r}"
        for p in self._patterns:
            if p.search(text):
                return f"blocked pattern {p.pattern!r}"
        return None


# --- prompt injection -----------------------------------------------------------------------

_INJECTION = [
    re.compile(p, re.IGNORECASE | re.MULTILINE)
    for p in (
        r"\b(ignore|disregard|forget|override|bypass|drop)\b[\w\s,']{0,30}?\b(instructions?|rules|prompts?|directions|guidelines|programming|persona|system message)\b",
        r"\byou\s*(are|'re)\s+(now|no longer)\b",
        r"\bfrom now on,?\s+(you|act|pretend|respond|answer|speak)\b",
        r"\b(act|behave)\s+as\s+(if\s+you|an?\s+(unrestricted|unfiltered|different|new)|my\s+(new\s+)?(system|developer))\b",
        r"\b(pretend|imagine)\s+(to\s+be|you\s*(are|'re)|that\s+you\s*(are|'re))\b",
        r"\b(role-?play|play the role)\s+(as|of)\b",
        r"\bnew\s+(instructions|rules|persona|system prompt|role)\b",
        r"^\s*(system|assistant|developer)\s*:",
        r"<\|?\s*(im_start|im_end|system|endoftext|assistant)\s*\|?>|\[/?INST\]|<</?SYS>>",
        r"\b(reveal|show|print|repeat|output|display|give|tell|recite|what\s+(is|are|was|were))\b[\w\s]{0,12}?\b(your|the)\s+(system\s+prompt|prompt|instructions|system\s+message|initial\s+instructions|hidden\s+rules|rules you follow)\b",
        r"\b(developer|god|admin)\s+mode\b|\bjailbreak|\bdo anything now\b|\bDAN\b",
    )
]


def detect_injection(text: str) -> str | None:
    """The matched fragment if ``text`` tries to re-programme the avatar, else None."""
    for pattern in _INJECTION:
        if m := pattern.search(text):
            return m.group(0).strip()
    return None


_TEMPLATE_TOKENS = re.compile(
    r"<\|[^|>]{0,20}\|>|\[/?INST\]|<</?SYS>>|</?\s*visitor\s*>|</?\s*(system|assistant)\s*>",
    re.IGNORECASE,
)


def wrap_user_text(text: str) -> str:
    """User text delimited for the model, with delimiters and template tokens inside defused."""
    clean = _TEMPLATE_TOKENS.sub(" ", text)
    # A role marker ("system: ...") is quoted so it reads as something the visitor said.
    clean = re.sub(r"\b(system|assistant|developer)\s*:", r"'\1' said:", clean, flags=re.I)
    return f"{VISITOR_OPEN}{' '.join(clean.split())}{VISITOR_CLOSE}"


# --- PII ------------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """True if the digit string passes the Luhn checksum (payment card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(iban: str) -> bool:
    """True if ``iban`` (spaces allowed) passes the ISO 13616 mod-97 check."""
    s = re.sub(r"\s", "", iban).upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", s):
        return False
    moved = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_id_ok(number: str) -> bool:
    """True for a valid 18-character Chinese resident ID (GB 11643, ISO 7064 MOD 11-2 check).

    The 17 digits are weighted 2^(17-i) mod 11; the check character is (12 - sum mod 11) mod 11,
    written X for 10. The birth date in places 7-14 must be a plausible date too.
    """
    s = number.upper()
    if not re.fullmatch(r"\d{17}[\dX]", s):
        return False
    month, day = int(s[10:12]), int(s[12:14])
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1900 <= int(s[6:10]) <= 2100):
        return False
    check = (12 - sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS, strict=True)) % 11) % 11
    return s[17] == ("X" if check == 10 else str(check))


# Chinese numbers sit right next to characters (身份证号110101…), which count as word
# characters, so these rules look only for a digit (or Latin letter) boundary.
_NOT_ALNUM_BEFORE = r"(?<![0-9A-Za-z])"
_NOT_ALNUM_AFTER = r"(?![0-9A-Za-z])"

_PII_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("cn_id", re.compile(_NOT_ALNUM_BEFORE + r"\d{6} ?\d{8} ?\d{3}[\dXx]" + _NOT_ALNUM_AFTER)),
    (
        "phone",  # mainland mobile numbers, with or without +86
        re.compile(r"(?<![0-9A-Za-z+])(?:\+?86[ -]?)?1[3-9]\d(?:[ -]?\d){8}" + _NOT_ALNUM_AFTER),
    ),
    ("card", re.compile(_NOT_ALNUM_BEFORE + r"\d(?:[ -]?\d){12,18}" + _NOT_ALNUM_AFTER)),
    ("card", re.compile(r"(?<![\w+])\d(?:[ -]?\d){12,18}(?!\w)")),
    ("iban", re.compile(r"(?<!\w)[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}(?!\w)")),
    ("id", re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?![\w-])")),  # US SSN style
    (
        "id",  # UK National Insurance number style
        re.compile(r"(?<!\w)[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?!\w)", re.I),
    ),
    ("email", re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+(?!\w)")),
    ("phone", re.compile(r"(?<![\w+])\+?\(?\d(?:[ ().-]{0,2}\d){7,14}(?!\w)")),
)

PII_PLACEHOLDERS = {
    "cn_id": "[ID number hidden]",
    "card": "[card number hidden]",
    "iban": "[account number hidden]",
    "id": "[ID number hidden]",
    "email": "[email hidden]",
    "phone": "[phone number hidden]",
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}")


def _valid(kind: str, found: str) -> bool:
    digits = re.sub(r"\D", "", found)
    if kind == "cn_id":
        return cn_id_ok(re.sub(r"\s", "", found))
    if kind == "card":
        return 13 <= len(digits) <= 19 and luhn_ok(digits)
    if kind == "iban":
        return iban_ok(found)
    if kind == "phone":
        return not _DATE.fullmatch(found.strip()) and 8 <= len(digits) <= 15
    return True


def _key(kind: str, found: str) -> str:
    return found.strip().lower() if kind == "email" else re.sub(r"[^0-9A-Za-z]", "", found).upper()


class PiiMasker:
    """Masks personal data in text; ``allow`` lists strings that may stay (in any spacing)."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._allow: set[str] = set()
        self.allow(allow)

    def allow(self, texts: Iterable[str]) -> None:
        """Allow every PII-like string found in ``texts`` (e.g. the operator's knowledge)."""
        for text in texts:
            for kind, found in self.find(text):
                self._allow.add(_key(kind, found))
            # A bare allowed value ("+44 20 7946 0321") is allowed even if no rule matched.
            self._allow.add(_key("phone", text))
            self._allow.add(_key("email", text))

    def find(self, text: str) -> list[tuple[str, str]]:
        """Every (kind, text) of PII in ``text``, checksums applied, in rule order."""
        out = []
        taken: list[tuple[int, int]] = []
        for kind, pattern in _PII_RULES:
            for m in pattern.finditer(text):
                span = m.span()
                if any(s < span[1] and span[0] < e for s, e in taken):
                    continue  # already part of a stronger match (a card is not a phone)
                if _valid(kind, m.group(0)):
                    taken.append(span)
                    out.append((kind, m.group(0)))
        return out

    def strip(self, text: str) -> str:
        """``text`` with every PII match removed (allow list ignored), e.g. for searching."""
        for _, found in self.find(text):
            text = text.replace(found, " ", 1)
        return " ".join(text.split())

    def mask(self, text: str) -> tuple[str, list[str]]:
        """``text`` with PII replaced by spoken placeholders, and the kinds that were masked."""
        kinds: list[str] = []
        for kind, found in self.find(text):
            if _key(kind, found) in self._allow:
                continue
            text = text.replace(found, _placeholder(kind, text), 1)
            kinds.append(kind)
        return text, kinds


def _placeholder(kind: str, text: str) -> str:
    """The spoken placeholder in the language the text is written in (its pack's ``pii``)."""
    from anima.lang import pack_for_text, packs

    pack = pack_for_text(text, [p for p in packs().values() if not p.members])
    return pack.pii.get(kind) or PII_PLACEHOLDERS[kind]


# --- output ---------------------------------------------------------------------------------


@dataclass
class Filtered:
    """What the output filter lets through for one fed phrase."""

    phrases: list[Phrase] = field(default_factory=list)
    blocked: str | None = None  # why the reply must stop here (the phrase is not spoken)
    masked: list[str] = field(default_factory=list)


_TRAILING_DIGITS = re.compile(r"\d[\d ()+.-]*$")
_HOLD_LIMIT = 240  # characters: never hold more than a couple of phrases back


class OutputFilter:
    """Per-reply filter before the TTS: PII masking, blocked terms, no system-prompt echo.

    Feed phrases in order with :meth:`feed`, then :meth:`flush` at the end of the reply;
    create one per reply (it remembers the recent words to catch an echo split over phrases).
    """

    LEAK_NGRAM = 7  # words in a row of the instructions that count as echoing them

    def __init__(
        self,
        *,
        terms: Iterable[str] = (),
        patterns: Iterable[str] = (),
        masker: PiiMasker | None = None,
        instructions: str = "",
    ) -> None:
        self._terms = _term_pattern(terms)
        self._patterns = _compile_all(patterns)
        self._masker = masker
        self._leak = _ngrams(_words(instructions), self.LEAK_NGRAM)
        self._recent: list[str] = []
        self._held: Phrase | None = None

    def feed(self, phrase: Phrase) -> Filtered:
        """Check one phrase; it may be held back (digits at its end) and come out later."""
        if self._held is not None:
            phrase = Phrase(f"{self._held.text} {phrase.text}", self._held.emotion)
            self._held = None
        if _TRAILING_DIGITS.search(phrase.text) and len(phrase.text) < _HOLD_LIMIT:
            self._held = phrase
            return Filtered()
        return self._check(phrase)

    def flush(self) -> Filtered:
        """Release a held phrase at the end of the reply."""
        held, self._held = self._held, None
        return self._check(held) if held is not None else Filtered()

    def _check(self, phrase: Phrase) -> Filtered:
        folded = " ".join(fold(phrase.text).split())
        if self._terms is not None and (m := self._terms.search(folded)):
            return Filtered(blocked=f"blocked term {m.group(0)!r}")
        for p in self._patterns:
            if p.search(phrase.text):
                return Filtered(blocked=f"blocked pattern {p.pattern!r}")
        if self._leak:
            self._recent = (self._recent + _words(phrase.text))[-4 * self.LEAK_NGRAM :]
            if _ngrams(self._recent, self.LEAK_NGRAM) & self._leak:
                return Filtered(blocked="system prompt echo")
        text, masked = self._masker.mask(phrase.text) if self._masker else (phrase.text, [])
        return Filtered([Phrase(text, phrase.emotion)], masked=masked)


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", fold(text))


def _ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


class ReplyBudget:
    """Counts the words and sentences of one reply against the persona's caps."""

    def __init__(self, max_words: int, max_sentences: int) -> None:
        self.max_words = max_words
        self.max_sentences = max_sentences
        self.words = 0
        self.sentences = 0

    def spend(self, text: str) -> bool:
        """Count a spoken phrase; True once the reply has reached a cap (stop after it)."""
        self.words += len(text.split())
        self.sentences += len(re.findall(r"[.!?。！？](?=\s|$)", text))
        return self.words >= self.max_words or self.sentences >= self.max_sentences
