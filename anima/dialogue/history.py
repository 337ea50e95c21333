"""The conversation so far, bounded by an estimated token budget.

Token counts are an estimate, not the model's tokenizer (which differs per backend and would
cost a model load): one token per CJK character, one per four other characters, plus four per
message for the chat template's role markers. For English this is within about 20 % of
BPE tokenizers such as SmolLM2's, which is enough to keep a prompt inside its window.

Barge-in: when the user interrupts, only the part of the reply they actually heard is kept
(:meth:`History.record_reply` with the playback position in characters), so the model does not
believe it said what the user never heard.
"""

from __future__ import annotations

import math

from anima.dialogue.brain import Message

MESSAGE_OVERHEAD = 4  # role markers and separators of a chat template, in tokens


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF


def estimate_tokens(text: str) -> int:
    """Estimated tokens of ``text``: one per CJK character, one per four other characters."""
    cjk = sum(1 for ch in text if _is_cjk(ch))
    return cjk + math.ceil((len(text) - cjk) / 4)


def message_tokens(message: Message) -> int:
    """Estimated tokens one message takes in a prompt, template overhead included."""
    return MESSAGE_OVERHEAD + estimate_tokens(message.content)


class History:
    """Past turns, oldest dropped first to stay within ``max_tokens`` (estimated).

    System messages added here are pinned: never dropped, always first. Conversation turns are
    dropped from the oldest; a leading assistant message left without its question is dropped
    with it, so the kept history starts with the user. The newest message is always kept,
    even alone over budget (the caller caps input length).
    """

    def __init__(self, max_tokens: int) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be positive")
        self.max_tokens = max_tokens
        self._pinned: list[Message] = []
        self._turns: list[Message] = []

    def add(self, message: Message) -> None:
        """Append a message (a system message is pinned) and trim to the budget."""
        if message.role == "system":
            self._pinned.append(message)
        else:
            self._turns.append(message)
        self._trim()

    def record_reply(self, full_text: str, heard_chars: int | None = None) -> str:
        """Record the assistant's reply; after a barge-in only the ``heard_chars`` heard.

        ``heard_chars`` counts characters of ``full_text`` the user heard (the playback
        position); None means the whole reply was heard. A word cut in the middle is dropped
        (in space-separated text), and nothing is recorded when nothing was heard. Returns the
        text recorded.
        """
        text = full_text
        if heard_chars is not None and heard_chars < len(full_text):
            text = _heard_part(full_text, max(0, heard_chars))
        text = text.strip()
        if text:
            self.add(Message("assistant", text))
        return text

    def drop_last_user(self) -> None:
        """Remove the last message if it is the user's (a question asked again, merged)."""
        if self._turns and self._turns[-1].role == "user":
            self._turns.pop()

    def messages(self) -> list[Message]:
        """Pinned system messages, then the kept turns, oldest first."""
        return [*self._pinned, *self._turns]

    def tokens(self) -> int:
        """Estimated tokens of :meth:`messages`."""
        return sum(message_tokens(m) for m in self.messages())

    def clear(self) -> None:
        """Forget every turn (pinned system messages too)."""
        self._pinned.clear()
        self._turns.clear()

    def __len__(self) -> int:
        return len(self._pinned) + len(self._turns)

    def _trim(self) -> None:
        budget = self.max_tokens - sum(message_tokens(m) for m in self._pinned)
        used = sum(message_tokens(m) for m in self._turns)
        while len(self._turns) > 1 and used > budget:
            used -= message_tokens(self._turns.pop(0))
            # Do not start on an answer whose question is gone.
            while len(self._turns) > 1 and self._turns[0].role == "assistant":
                used -= message_tokens(self._turns.pop(0))


def _heard_part(text: str, heard: int) -> str:
    """``text[:heard]``, backed off to the last whole word when it ends inside a word."""
    cut = text[:heard]
    inside_word = (
        0 < heard < len(text)
        and text[heard - 1].isalnum()
        and text[heard].isalnum()
        and not _is_cjk(text[heard - 1])
    )
    if inside_word:
        space = max(cut.rfind(" "), cut.rfind("\n"))
        cut = cut[:space] if space > 0 else ""
    return cut
