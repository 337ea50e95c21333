"""The show script format: lines, marks, Markdown, and clear errors with line numbers."""

import pytest

from anima.live.script import Line, Pause, ScriptError, load_script, parse_script


def test_lines_pauses_emotions_and_actions():
    items = parse_script(
        "# Title is not spoken\n"
        "[happy] Hello **there**, see [our site](https://example.org). [nod]\n"
        "\n"
        "[pause 2s]\n"
        "- First point [pause 500ms] second point [shake]\n"
        "3. [tilt] Numbered [serious] line\n"
        "[pause]\n"
    )
    assert items == [
        Line("Hello there, see our site.", "happy", "nod", 2),
        Pause(2.0, 4),
        Line("First point", "neutral", None, 5),
        Pause(0.5, 5),
        Line("second point", "neutral", "shake", 5),
        Line("Numbered line", "serious", "tilt", 6),
        Pause(1.0, 7),
    ]


def test_comments_fences_and_rules_are_skipped():
    items = parse_script(
        "<!-- a note\nover lines -->\n---\n```\ncode [x]\n```\n> Quoted line.\nPlain line.\n"
    )
    assert [i.text for i in items] == ["Quoted line.", "Plain line."]
    assert [i.lineno for i in items] == [7, 8]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Hello.\nNow [dance] please.\n", "line 2: unknown mark [dance]"),
        ("Fine.\n[pause 0s]\n", "line 2: pause of 0 s"),
        ("Fine.\n[pause 2h]\n", "line 2: unknown mark [pause 2h]"),
        ("", "the script is empty"),
        ("# Only a heading\n\n[pause 2s]\n", "the script is empty"),
    ],
)
def test_bad_scripts_name_the_line(text, message):
    with pytest.raises(ScriptError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_script(text)


def test_overlong_line_is_refused():
    with pytest.raises(ScriptError, match="line 1: 30 characters to say; the limit is 10"):
        parse_script("x" * 30, max_chars=10)


def test_load_script_names_the_file(tmp_path):
    path = tmp_path / "show.md"
    path.write_text("ok\n[wave]\n")
    with pytest.raises(ScriptError, match=r"show.md: line 2: unknown mark \[wave\]"):
        load_script(path)
    with pytest.raises(ScriptError, match="cannot read script"):
        load_script(tmp_path / "missing.md")


def test_example_script_parses():
    from pathlib import Path

    items = load_script(Path(__file__).parents[2] / "examples" / "show.md")
    assert sum(isinstance(i, Line) for i in items) >= 5
    assert any(isinstance(i, Pause) for i in items)
