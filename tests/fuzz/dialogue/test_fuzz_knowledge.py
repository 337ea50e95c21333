"""Knowledge-base folders (Markdown, CSV, YAML), intents and persona files under hostile input.

Each loader either reads the file or raises its one-line error (KnowledgeError,
PersonaError); never another exception and never a hang (YAML alias bombs included).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz, regression_files  # noqa: E402

from anima.dialogue.intents import IntentMatcher  # noqa: E402
from anima.dialogue.knowledge import KnowledgeBase, KnowledgeError  # noqa: E402
from anima.dialogue.persona import Persona, PersonaError  # noqa: E402

md_tokens = st.sampled_from(
    ["# ", "## ", "###### ", "#", "```", "\n", "\n\n", "- ", "1) ", "> ", "|", "|---|", "**",
     "__", "_", "*", "`", "[a](b)", "![x](y)", "[", "]", "(", ")", "word", "Opening hours.",
     "日本語", "é", "\t", "\x00", "  "]
)  # fmt: skip
yaml_tokens = st.sampled_from(
    ["- ", "q: ", "a: ", "question: ", "answer: ", "faq:", "qa:", "synonyms:", "intents:",
     "name: ", "examples: ", "emotion: ", "happy", "handoff: yes", "id: ", "[", "]", "{", "}",
     ", ", ": ", "\n", "  ", "&a ", "*a", "!!python/object:os.system", "!!binary", "~", "1",
     "2024-01-01", "0x1F", ".inf", "'", '"', "? ", "|", ">", "text", "greeting: ", "max_words: "]
)  # fmt: skip
csv_tokens = st.sampled_from(
    ["question", "answer", "q", "a", ",", "\n", "\r\n", '"', '""', "|", "What?", "Yes.", "\x00",
     " ", "\ufeff"]
)  # fmt: skip


def _text(tokens: st.SearchStrategy[str], size: int = 40) -> st.SearchStrategy[bytes]:
    return (st.lists(tokens, max_size=size).map("".join) | st.text(max_size=200)).map(
        lambda s: s.encode("utf-8", "surrogatepass")
    ) | st.binary(max_size=120)


def _load(name: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / name).write_bytes(data)
        try:
            kb = KnowledgeBase.load(folder)
            for p in kb.passages:
                assert isinstance(p.text, str) and p.questions is not None
            kb.search("opening hours?")  # the index built from the file must be searchable
        except KnowledgeError as exc:
            assert str(exc) and "\n" not in str(exc).strip()
        try:
            IntentMatcher.load(folder).match("hello", 0.5)
        except KnowledgeError as exc:
            assert str(exc) and "\n" not in str(exc)


def check_markdown(data: bytes) -> None:
    """A Markdown knowledge file."""
    _load("kb.md", data)


def check_csv(data: bytes) -> None:
    """A CSV knowledge file."""
    _load("kb.csv", data)


def check_yaml(data: bytes) -> None:
    """A YAML knowledge / intents file."""
    _load("kb.yaml", data)


def check_persona(data: bytes) -> None:
    """A persona YAML file: a Persona, or PersonaError."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "persona.yaml"
        path.write_bytes(data)
        try:
            persona = Persona.load(path)
        except PersonaError as exc:
            assert str(exc) and "\n" not in str(exc)
            return
        assert persona.system_prompt()


test_markdown, test_markdown_slow = fuzz(
    check_markdown, _text(md_tokens), examples=150,
    cases=[(b,) for b in regression_files("markdown")],
)  # fmt: skip
test_csv, test_csv_slow = fuzz(
    check_csv, _text(csv_tokens), examples=150, cases=[(b,) for b in regression_files("csv")]
)
test_yaml, test_yaml_slow = fuzz(
    check_yaml, _text(yaml_tokens, 60), examples=250,
    cases=[(b,) for b in regression_files("yaml")],
)  # fmt: skip
test_persona, test_persona_slow = fuzz(
    check_persona, _text(yaml_tokens, 30), examples=150,
    cases=[(b,) for b in regression_files("persona")],
)  # fmt: skip
