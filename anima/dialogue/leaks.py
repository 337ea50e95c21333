"""Nothing internal is spoken: a streaming filter for what a model writes, before the chunker.

A model sees things a visitor must never hear: chat-template tokens (``<|im_start|>``,
``<end_of_turn>``), the ``<visitor>`` delimiters, the source ids of knowledge passages
(``[procedures.md#lost-card]``, ``faq.csv:3``), markup in brackets, and the system prompt.
:class:`LeakFilter` takes the reply's text deltas and gives back text with all of that taken
out, even when a token arrives split over several deltas: it holds back only the word being
written (a source id never contains a space) and an open ``[`` or ``<`` group, so the chunker
behind it is delayed by at most one word. Emotion tags (``[happy]``) pass through: the chunker
turns them into the phrase's emotion. An end-of-turn token ends the reply: what follows is the
model talking to itself.

:meth:`LeakFilter.phrase` is the last check on each finished phrase (after the chunker): a
phrase that is about the prompt itself ("no lists, no markup") or holds a bracket is dropped
or cleaned. Long runs of the system prompt are caught by
:class:`anima.dialogue.safety.OutputFilter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from anima.frames import EMOTIONS

# An open group longer than this is ordinary text ("(" may hold "(source: faq.csv:3)").
_OPEN_MAX = {"[": 160, "<": 40, "(": 80}
_CLOSE = {"[": "]", "<": ">", "(": ")"}

# Tokens after which a chat model's reply is over (its own next turn would follow).
_END = re.compile(
    r"<\|(?:im_end|endoftext|eot_id|end|eom_id)\|>|<end_of_turn>|</s>|<\|im_start\|>|"
    r"<start_of_turn>|<\|start_header_id\|>|\n(?:user|assistant|system|visitor)\s*:",
    re.I,
)
# Any other template token or delimiter: dropped where it stands.
_TEMPLATE = re.compile(r"<\|[^<>|]{0,40}\|>|</?(?:visitor|s|bos|eos|pad)>|<[a-z_]+_of_turn>", re.I)
# A passage id or file name of the knowledge folder, bracketed or bare.
_FILE = r"[\w./-]*\w\.(?:md|markdown|csv|ya?ml|txt|json|pdf)(?:[#:][\w.#:-]*\w)?"
_SOURCE = re.compile(
    rf"(?:\(\s*)?(?:(?:source|sources|from|see|ref)\s*:?\s*)?{_FILE}(?:\s*\))?", re.I
)
_BRACKET = re.compile(r"\[([^\[\]\n]{0,160})\]")
_EMPTY = re.compile(r"\(\s*[,;:]?\s*\)|\[\s*\]")
# Words that only a reply about the prompt itself would use together.
_META = (
    "markup",
    "emoji",
    "lists",
    "system prompt",
    "instructions",
    "emotion tag",
    "knowledge base",
    "short sentences",
    "spoken aloud",
    "visitor's words",
    "you must never",
)


class LeakFilter:
    """Streaming leak filter: :meth:`feed` each delta, :meth:`flush` at the end (one per reply).

    ``sources`` are the passage ids the model was shown (also stripped when they do not look
    like file names).
    """

    def __init__(self, sources: Iterable[str] = ()) -> None:
        ids = sorted({s for s in sources if s}, key=len, reverse=True)
        self._ids = re.compile("|".join(re.escape(s) for s in ids)) if ids else None
        self._buf = ""
        self.ended = False  # an end-of-turn token was seen: ignore the rest
        self.stripped = 0  # how many internal tokens were taken out (for the audit)

    def feed(self, delta: str) -> str:
        """Clean text that is safe to pass on now (maybe empty)."""
        if self.ended:
            return ""
        self._buf += delta
        if m := _END.search(self._buf):
            self.ended = True
            self.stripped += 1
            text, self._buf = self._buf[: m.start()], ""
            return self._clean(text)
        cut = self._safe_cut()
        text, self._buf = self._buf[:cut], self._buf[cut:]
        return self._clean(text)

    def flush(self) -> str:
        """The rest of the reply, cleaned (an unclosed group is dropped if it looks internal)."""
        text, self._buf = self._buf, ""
        if self.ended:
            return ""
        for opener in "[<":
            i = text.rfind(opener)
            if i >= 0 and _CLOSE[opener] not in text[i:]:
                self.stripped += 1
                text = text[:i]  # "[procedures.md#lo" cut off by the end of the reply
        return self._clean(text)

    def phrase(self, text: str) -> str:
        """Last check of one finished phrase: the cleaned text, or "" to drop it."""
        text = self._clean(text)
        folded = text.casefold()
        if sum(1 for w in _META if w in folded) >= 2:
            self.stripped += 1
            return ""
        return text

    # -- internals -------------------------------------------------------------------------

    def _safe_cut(self) -> int:
        """How much of the buffer can go: up to the last space outside an open group."""
        buf = self._buf
        for opener, limit in _OPEN_MAX.items():
            i = buf.rfind(opener)
            if i >= 0 and _CLOSE[opener] not in buf[i:] and len(self._buf) - i <= limit:
                buf = buf[:i]  # hold the open group (and everything after it)
        # A partial "<|im_" or id needs the whole word: hold the word being written.
        end = max(buf.rfind(" "), buf.rfind("\n"))
        cut = end + 1 if end >= 0 else 0
        # Never cut inside a group: "(source: hours.md#open)" is cleaned as a whole.
        moved = True
        while moved:
            moved = False
            for opener in _OPEN_MAX:
                i = self._buf.rfind(opener, 0, cut)
                if i >= 0 and _CLOSE[opener] not in self._buf[i:cut]:
                    if len(self._buf) - i <= _OPEN_MAX[opener] * 2:
                        cut, moved = i, True
        return cut

    def _clean(self, text: str) -> str:
        if not text:
            return text
        before = text
        text = _TEMPLATE.sub("", text)
        text = _BRACKET.sub(self._bracket, text)
        if self._ids is not None:
            text = self._ids.sub("", text)
        text = _SOURCE.sub("", text)
        text = _EMPTY.sub("", text)
        if text != before:
            self.stripped += 1
            # Keep a delta's outer spaces (words must stay apart) but no doubled ones.
            text = re.sub(r"[ \t]{2,}", " ", text)
            text = re.sub(r" +([,.;:!?])", r"\1", text)
        return text

    @staticmethod
    def _bracket(m: re.Match[str]) -> str:
        # An emotion tag is the chunker's to read; any other bracket is internal.
        return m.group(0) if m.group(1).strip().lower() in EMOTIONS else ""
