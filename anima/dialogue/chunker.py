"""Speakable phrases from a stream of reply text, with the emotion markup taken out.

The TTS speaks phrase by phrase, so the first phrase decides when the avatar starts talking.
:class:`PhraseChunker` therefore releases the first phrase of a reply early, at the first
clause boundary (``, ; : —``, Chinese ``，、：；``), or from ``min_words`` words (by default
half of ``first_words``) on before a
word that starts a new phrase (a conjunction or preposition: "We open | at nine", "Yes | and
no"), or, when none comes, after ``first_words`` words; later phrases end at sentence ends (``. ! ? …``, Chinese ``。！？；，``)
or line breaks, and no phrase grows past ``max_chars``.

Punctuation only counts as a boundary once the next character shows it really is one: an
ASCII mark must be followed by white space (or a CJK character), so ``3.14``, ``1,000``,
``10:30``, ``https://example.com/a.b`` and ``a.b@example.com`` never split, and a full stop
after an abbreviation (``Dr.``, ``e.g.``, ``U.S.``), an initial (``J. Smith``) or a list
number (``1. Open the door``) does not end a phrase. Closing quotes and brackets stay with the
phrase they close.

Emotion markup: the model may write ``[happy]``, ``[sad]``, ``[surprised]``, ``[serious]`` or
``[neutral]`` (any case) anywhere. A tag is taken out of the text, even when it arrives split
across deltas, and sets the emotion of the text after it; text before a tag that changes the
emotion is released as its own phrase, so one phrase never mixes two emotions. Any other short
bracketed group (``[laughs]``, ``[1]``) is markup too and is dropped; a ``[`` that is not closed
within 32 characters on the same line is ordinary text. A tag left open when the reply ends is
dropped. Phrase text has its white space normalised; a phrase always contains a letter or digit
(a trailing remainder of bare punctuation is not spoken).

The chunker is synchronous and pure (text in, phrases out), so it is tested without a loop.
"""

from __future__ import annotations

import re
from collections import deque

from anima.dialogue.brain import Phrase
from anima.frames import EMOTIONS

TAG_MAX = 32  # longest markup tag content; a longer bracket is ordinary text

_SENTENCE_END = ".!?…"
_CJK_SENTENCE_END = "。！？；，"  # full-width marks need no space after them
_CLAUSE = ",;:"
_CJK_CLAUSE = "，、：；"
_DASHES = "—–"
_CLOSERS = "\"')]}”’」』）》〉】"
_OPENERS = "\"'([{“‘「『（《〈【"

_WORD = re.compile(r"\w")
_DOTTED = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # U.S, e.g, a.m (the last dot excluded)
# Words whose full stop is not a sentence end. "no" is left out on purpose: "No." is a reply.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ave rd vs etc approx dept est fig inc ltd co corp jan feb "
    "mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun cf ca nr tel".split()
)
# Words a spoken phrase naturally starts with: the first phrase may end just before one.
_BREAK_BEFORE = frozenset(
    "and but or so because which who whose where when while if until unless since although "
    "though at in on to for from with without by about into onto through during after "
    "before between".split()
)


def _is_cjk(ch: str) -> bool:
    """A CJK ideograph or kana: languages written without spaces between words."""
    o = ord(ch)
    return (
        0x4E00 <= o <= 0x9FFF
        or 0x3400 <= o <= 0x4DBF
        or 0x3040 <= o <= 0x30FF
        or 0xF900 <= o <= 0xFAFF
        or 0x20000 <= o <= 0x2FA1F
    )


def _has_word(text: str) -> bool:
    return _WORD.search(text) is not None


def _token_before(buf: str, end: int) -> tuple[str, int]:
    """The non-space run ending at ``end`` (without leading openers) and where it starts."""
    start = end
    while start > 0 and not buf[start - 1].isspace():
        start -= 1
    token = buf[start:end].lstrip(_OPENERS)
    return token, end - len(token)


def _is_abbreviation(token: str) -> bool:
    """Whether a full stop right after ``token`` belongs to the word, not the sentence."""
    if len(token) == 1 and token.isalpha() and token.isupper():
        return True  # an initial: "J. Smith"
    return token.lower() in _ABBREVIATIONS or _DOTTED.match(token) is not None


class PhraseChunker:
    """Turns reply text deltas into :class:`~anima.dialogue.brain.Phrase` objects for the TTS.

    Call :meth:`feed` for each delta and :meth:`flush` when the reply ends (the next
    :meth:`feed` then starts a new reply: first phrase early again, emotion neutral).
    :meth:`reset` drops everything, for a barge-in.
    """

    def __init__(
        self,
        first_words: int = 4,
        max_chars: int = 200,
        emotion: str = "neutral",
        min_words: int | None = None,
    ) -> None:
        if first_words < 1:
            raise ValueError("first_words must be at least 1")
        # A natural break counts from half the word limit on (2 of 4): never a one-word phrase.
        self.min_words = max(1, first_words // 2 if min_words is None else min_words)
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        self.first_words = first_words
        self.max_chars = max_chars
        self._start_emotion = emotion  # until the model marks another one
        self.reset()

    @property
    def emotion(self) -> str:
        """The emotion the next phrase will carry."""
        return self._emotion

    def reset(self) -> None:
        """Forget the reply in progress: buffered text, an open tag, the emotion."""
        self._buf = ""  # clean text not yet released
        self._tag: str | None = None  # content of an open "[...", None outside a tag
        self._emotion = self._start_emotion
        self._first = True  # the next phrase is the first of the reply

    def feed(self, delta: str) -> list[Phrase]:
        """Add reply text; return the phrases that are now complete (often none)."""
        out: list[Phrase] = []
        chars = deque(delta)
        while chars:
            ch = chars.popleft()
            if self._tag is None:
                if ch == "[":
                    self._tag = ""
                else:
                    self._buf += ch
            elif ch == "]":
                self._close_tag(out)
            elif ch in "[\n" or len(self._tag) >= TAG_MAX:
                # Not markup after all: the "[" is text, and what followed it is read again
                # (it may hold the start of a real tag).
                self._buf += "["
                chars.extendleft(reversed(self._tag + ch))
                self._tag = None
            else:
                self._tag += ch
        self._release(out, final=False)
        return out

    def flush(self) -> list[Phrase]:
        """End the reply: release what is left and get ready for the next reply."""
        out: list[Phrase] = []
        self._tag = None  # a tag cut off by the end of the reply is still markup
        self._release(out, final=True)
        if _has_word(self._buf):
            self._emit(self._buf, out)
        self.reset()
        return out

    # --- internals ------------------------------------------------------------------------

    def _close_tag(self, out: list[Phrase]) -> None:
        name = (self._tag or "").strip().lower()
        self._tag = None
        if name not in EMOTIONS or name == self._emotion:
            return  # unknown markup, or no change: just drop it
        # Text before the tag keeps the old emotion: release what is complete, then the rest.
        self._release(out, final=False)
        if _has_word(self._buf):
            self._emit(self._buf, out)
            self._buf = ""
        self._emotion = name

    def _release(self, out: list[Phrase], *, final: bool) -> None:
        while (cut := self._find_cut(final)) is not None:
            self._emit(self._buf[:cut], out)
            self._buf = self._buf[cut:]

    def _emit(self, text: str, out: list[Phrase]) -> None:
        text = " ".join(text.split())
        if text:
            out.append(Phrase(text, self._emotion))
            self._first = False

    def _find_cut(self, final: bool) -> int | None:
        """End index of the next phrase in the buffer, or None if it is not complete yet."""
        cut = self._boundary(final)
        if cut is None and len(self._buf) >= self.max_chars:
            return self._forced_cut()
        if cut is not None and cut > self.max_chars:
            return self._forced_cut()
        return cut

    def _boundary(self, final: bool) -> int | None:
        """End index of the first phrase boundary in the buffer (None: none confirmed yet)."""
        buf = self._buf
        n = len(buf)
        first = self._first
        words = 0.0
        in_word = False
        i = 0
        while i < n:
            c = buf[i]
            if c.isspace():
                if c == "\n" and _has_word(buf[:i]):
                    return i  # a line break ends a phrase (lists, paragraphs)
                if in_word:
                    in_word = False
                    words += 1
                    if (
                        first
                        and self.min_words <= words < self.first_words
                        and self._break_follows(buf, i, final)
                    ):
                        return i  # "We open | at nine": a natural break after a few words
                    if first and words >= self.first_words and _has_word(buf[:i]):
                        token, _ = _token_before(buf, i)
                        # Keep "Dr." with its name and "9" with its unit ("9 a.m.").
                        if not (
                            (token.endswith(".") and _is_abbreviation(token[:-1]))
                            or any(ch.isdigit() for ch in token)
                        ):
                            return i
            elif _is_cjk(c):
                if in_word:  # a Latin word right before a CJK character is complete
                    in_word = False
                    words += 1
                words += 0.5  # a CJK character is about half a word
                if first and words >= self.first_words:
                    if i + 1 == n:
                        if not final:
                            return None  # wait: the next character may be punctuation
                    elif _is_cjk(buf[i + 1]) or buf[i + 1].isspace():
                        return i + 1
            elif c in _CJK_SENTENCE_END or (first and c in _CJK_CLAUSE):
                j = self._skip(buf, i + 1, _CJK_SENTENCE_END + "…")
                if j == n and not final:
                    return None  # a closing quote may still follow
                if _has_word(buf[:j]):
                    return j
                i = j
                continue
            elif c in _SENTENCE_END or (first and c in _CLAUSE) or (first and c in _DASHES):
                j = self._skip(buf, i + 1, _SENTENCE_END if c in _SENTENCE_END else "")
                if j == n:
                    if not final:
                        return None  # the next character decides
                    return j if _has_word(buf[:j]) else None
                nxt = buf[j]
                if (
                    (nxt.isspace() or _is_cjk(nxt))
                    and _has_word(buf[:j])
                    and not (c == "." and self._dot_in_word(buf, i))
                ):
                    return j
                in_word = True
                i = j
                continue
            else:
                in_word = True
            i += 1
        return None

    @staticmethod
    def _break_follows(buf: str, i: int, final: bool) -> bool:
        """Whether the word after the white space at ``i`` starts a new phrase.

        Undecided (False) while that word may still grow: it must be followed by a space or
        punctuation, or the reply must have ended.
        """
        n = len(buf)
        j = i
        while j < n and buf[j].isspace():
            if buf[j] == "\n":
                return False  # the line break itself ends the phrase
            j += 1
        k = j
        while k < n and (buf[k].isalpha() or buf[k] == "'"):
            k += 1
        if k == j or (k == n and not final) or (k < n and _is_cjk(buf[k])):
            return False
        token, _ = _token_before(buf, i)
        if token.endswith(".") and _is_abbreviation(token[:-1]):
            return False
        return buf[j:k].lower() in _BREAK_BEFORE

    @staticmethod
    def _skip(buf: str, j: int, more: str) -> int:
        """Index after a run of ``more`` marks and then closing quotes/brackets from ``j``."""
        n = len(buf)
        while j < n and buf[j] in more:
            j += 1
        while j < n and buf[j] in _CLOSERS:
            j += 1
        return j

    @staticmethod
    def _dot_in_word(buf: str, i: int) -> bool:
        """Whether the full stop at ``i`` belongs to an abbreviation or a list number."""
        token, start = _token_before(buf, i)
        if _is_abbreviation(token):
            return True
        # "1. Open the door": a number that starts the phrase is a list marker.
        return token.isdigit() and not _has_word(buf[:start])

    def _forced_cut(self) -> int:
        """Where to split a phrase that reached ``max_chars`` without a boundary."""
        window = self._buf[: self.max_chars]
        for k in range(len(window) - 1, 0, -1):
            if window[k - 1] in _CLAUSE + _CJK_CLAUSE and window[k].isspace():
                if _has_word(window[:k]):
                    return k
        for k in range(len(window) - 1, 0, -1):
            if window[k].isspace() and _has_word(window[:k]):
                return k
        return self.max_chars  # one unbroken run (CJK without punctuation, a long URL)
