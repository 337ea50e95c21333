"""When has the person finished? The silence window, shortened or stretched by what they said.

A fixed silence window is either too slow for "What time is it?" or too eager for "I'd like a
coffee and…". The listener asks :meth:`EndpointPolicy.silence_needed` with the newest
hypothesis of the utterance (a partial, or the speculative final decoded at the first silent
window) and closes the utterance once that much silence has passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Words after which a speaker almost always goes on: conjunctions, fillers, articles,
# prepositions. Whisper often still ends such a partial with a period, so words decide, not
# punctuation alone.
CONTINUATION_WORDS = frozenset(
    """and or but so because though although if when while then than that which who whose
    um uh er erm hmm like the a an to of for with from in on at by about into my your our their
    his her its i'd i'm i'll we're you're it's let's would could should can will also plus
    """.split()
)
_WORD = re.compile(r"[\w']+")
_PUNCT = re.compile(r"[\s\W]+$")
_COMPLETE_END = re.compile(r"[.!?。！？]\W*$")
_QUESTION_END = re.compile(r"[?!？！]\W*$")
_TRAILING_DOTS = re.compile(r"(\.\.\.|…|-|—|,)\s*$")


@dataclass(frozen=True)
class EndpointPolicy:
    """Silence windows in seconds: default, after a complete sentence, after a dangling word."""

    silence: float = 0.22  # 7 VAD windows of 32 ms: 224 ms
    complete: float = 0.1
    incomplete: float = 0.7
    # From the language packs: endings of unspaced scripts (Chinese final particles 吗 呢 吧,
    # trailing 然后 就是 那个). Checked on the text with its final punctuation removed.
    complete_endings: tuple[str, ...] = ()
    incomplete_endings: tuple[str, ...] = ()

    def classify(self, text: str) -> str:
        """``"complete"``, ``"incomplete"`` or ``"unknown"`` for a hypothesis text."""
        text = text.strip()
        words = _WORD.findall(text.lower())
        if not words:
            return "unknown"
        if _TRAILING_DOTS.search(text):
            return "incomplete"
        bare = _PUNCT.sub("", text)
        if bare.endswith(self.incomplete_endings) and not _QUESTION_END.search(text):
            return "incomplete"  # "我想问一下然后。": Whisper's period does not end it
        if bare.endswith(self.complete_endings):
            return "complete"
        if _QUESTION_END.search(text):
            return "complete"  # "Where is it?" ends in "it", "…is?" in "is": a question is whole
        if words[-1] in CONTINUATION_WORDS:
            return "incomplete"
        if _COMPLETE_END.search(text):
            return "complete"
        return "unknown"

    def silence_needed(self, text: str | None) -> float:
        """Seconds of silence after which an utterance whose newest hypothesis is ``text`` ends."""
        kind = self.classify(text) if text else "unknown"
        if kind == "complete":
            return self.complete
        if kind == "incomplete":
            return self.incomplete
        return self.silence
