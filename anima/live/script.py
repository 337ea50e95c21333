"""The show script: plain text or Markdown, one utterance per line, with optional marks.

A mark is a word in square brackets anywhere in a line:

- ``[pause 2s]``, ``[pause 500ms]``, ``[pause 1.5]`` or just ``[pause]`` (one second): silence
  (the avatar idles) at that point. A line holding only a pause is a pause between lines.
- an emotion (``[happy]``, ``[sad]``, ``[surprised]``, ``[serious]``, ``[neutral]``): how the
  whole line is said.
- an avatar action (``[nod]``, ``[shake]``, ``[tilt]``): played when the text after it starts.

Markdown is read as prose: headings (``#``), rules, HTML comments and fenced code are not
spoken; list markers, quotes, emphasis and link targets are dropped. An unknown mark or an empty
script is a :class:`ScriptError` naming the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from anima.frames import EMOTIONS

ACTIONS = ("nod", "shake", "tilt")
DEFAULT_PAUSE = 1.0
MAX_PAUSE = 600.0


class ScriptError(ValueError):
    """The script cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Line:
    """One utterance to speak. ``lineno`` is its line in the script (0 when typed live)."""

    text: str
    emotion: str = "neutral"
    action: str | None = None
    lineno: int = 0


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence on air: the avatar idles for ``seconds``."""

    seconds: float
    lineno: int = 0


Item = Line | Pause

# A mark is [word ...] not followed by "(" (that would be a Markdown link).
_MARK = re.compile(r"\[([^\[\]]*)\](?!\()")
_LINK = re.compile(r"\[([^\[\]]*)\]\([^)]*\)")
_PAUSE = re.compile(r"^pause(?:\s+(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)?)?$")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")
_RULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")


def known_marks() -> str:
    """The marks a script may use, for error messages and ``--help``."""
    return ", ".join(["pause [N s|ms]", *EMOTIONS, *ACTIONS])


def parse_mark(body: str, lineno: int = 0) -> Item | str:
    """A pause for ``pause ...``, else the emotion or action name; unknown → :class:`ScriptError`."""
    word = " ".join(body.lower().split())
    if m := _PAUSE.match(word):
        value, unit = m.groups()
        seconds = DEFAULT_PAUSE if value is None else float(value)
        if unit == "ms":
            seconds /= 1000
        if not 0 < seconds <= MAX_PAUSE:
            raise ScriptError(f"line {lineno}: pause of {seconds:g} s; give 0 to {MAX_PAUSE:g} s")
        return Pause(seconds, lineno)
    if word in EMOTIONS or word in ACTIONS:
        return word
    raise ScriptError(f"line {lineno}: unknown mark [{body}]; known marks: {known_marks()}")


def parse_line(raw: str, lineno: int = 0, max_chars: int = 2000) -> list[Item]:
    """The items of one script line (utterances split around pauses, marks applied)."""
    text = _LINK.sub(r"\1", raw)
    text = _EMPHASIS.sub("", _LIST.sub("", text)).lstrip("> ").strip()
    emotion = "neutral"
    # Text between pauses is one utterance; emotion and action marks inside it do not split it.
    pieces: list[list] = []  # [text, action] per utterance, or a Pause
    buf, action, pos = "", None, 0
    for m in _MARK.finditer(text):
        buf += " " + text[pos : m.start()]
        pos = m.end()
        mark = parse_mark(m.group(1), lineno)
        if isinstance(mark, Pause):
            pieces.append([" ".join(buf.split()), action])
            pieces.append(mark)  # type: ignore[arg-type]
            buf, action = "", None
        elif mark in EMOTIONS:
            emotion = mark
        else:
            action = action or mark
    pieces.append([" ".join((buf + " " + text[pos:]).split()), action])
    items: list[Item] = []
    carry: str | None = None  # an action before a pause goes with the next text
    for piece in pieces:
        if isinstance(piece, Pause):
            items.append(piece)
            continue
        words, act = piece
        if not words:
            carry = carry or act
            continue
        if len(words) > max_chars:
            raise ScriptError(
                f"line {lineno}: {len(words)} characters to say; the limit is {max_chars}"
            )
        items.append(Line(words, emotion, carry or act, lineno))
        carry = None
    if carry is not None:
        # An action after the last text plays with that text rather than being dropped.
        for j in range(len(items) - 1, -1, -1):
            last = items[j]
            if isinstance(last, Line):
                items[j] = Line(last.text, last.emotion, last.action or carry, lineno)
                break
    return items


def parse_script(text: str, max_chars: int = 2000) -> list[Item]:
    """All items of a script, in order. Raises :class:`ScriptError` if nothing is to be said."""
    items: list[Item] = []
    in_fence = False
    in_comment = False
    for lineno, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("```") or stripped.startswith("~~~"):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if in_comment or stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        if not stripped or stripped.startswith("#") or _RULE.match(stripped):
            continue
        items.extend(parse_line(raw, lineno, max_chars))
    if not any(isinstance(i, Line) for i in items):
        raise ScriptError("the script is empty: it has no line to say")
    return items


def load_script(path: Path, max_chars: int = 2000) -> list[Item]:
    """Read and parse a script file; errors name the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"cannot read script {path}: {exc}") from exc
    try:
        return parse_script(text, max_chars)
    except ScriptError as exc:
        raise ScriptError(f"{path}: {exc}") from None
