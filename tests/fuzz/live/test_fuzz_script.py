"""Show scripts under hostile input: parsed, or ScriptError with a one-line message."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz, regression_files  # noqa: E402

from anima.live.script import Line, Pause, ScriptError, load_script  # noqa: E402

# Pieces that reach every branch: marks, pauses with units, links, fences, comments, lists.
tokens = st.sampled_from(
    ["[", "]", "(", ")", "[pause", "[pause]", "[pause 2s]", "[pause 1e9]", "[pause 0]",
     "[pause 99999999999999999999.5 ms]", "[happy]", "[nod]", "[shake]", "[bogus]", "[]",
     "```", "~~~", "<!--", "-->", "# ", "---", "* ", "1. ", "> ", "**", "`", "\n", " ",
     "hello", "world.", "\r", "\u2028", "\x00", "日本語"]
)  # fmt: skip
scripts = st.lists(tokens, max_size=40).map("".join) | st.text(max_size=400)


def check_script(data: bytes) -> None:
    """A script file of any bytes: items with text and sane pauses, or ScriptError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "show.md"
        path.write_bytes(data)
        try:
            items = load_script(path, max_chars=300)
        except ScriptError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
    assert any(isinstance(i, Line) for i in items)
    for item in items:
        if isinstance(item, Pause):
            assert 0 < item.seconds <= 600
        else:
            assert item.text.strip() and len(item.text) <= 300


test_script, test_script_slow = fuzz(
    check_script,
    scripts.map(lambda s: s.encode("utf-8", "surrogatepass")) | st.binary(max_size=200),
    examples=300,
    cases=[(b,) for b in regression_files("script")],
)
