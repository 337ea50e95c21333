"""``anima chat``: --once with the kb backend for scripts, errors in one line, a conversation."""

import subprocess
import sys
from pathlib import Path

from anima.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "kiosk_knowledge"


def _once(capsys, tmp_path, *extra):
    code = main(
        [
            "--data-dir",
            str(tmp_path / "data"),
            "chat",
            "--backend",
            "kb",
            "--kb",
            str(EXAMPLE),
            *extra,
        ]
    )
    out = capsys.readouterr()
    return code, out.out, out.err


def test_once_answers_from_the_knowledge_base(capsys, tmp_path):
    code, out, err = _once(capsys, tmp_path, "--once", "Can I bring my dog?")
    assert code == 0
    assert out.strip() == "Only assistance dogs are allowed inside the building."
    assert "kb" in err and "faq.csv:5" in err


def test_once_shows_emotion_marks_and_handoff(capsys, tmp_path):
    code, out, err = _once(
        capsys,
        tmp_path,
        "--persona",
        str(EXAMPLE / "persona.yaml"),
        "--once",
        "This is an emergency",
    )
    assert code == 0
    assert out.splitlines()[0] == "[serious] Please stay calm."
    assert "hand-off" in err and "intent:emergency" in err


def test_once_out_of_scope_uses_persona_fallback(capsys, tmp_path):
    code, out, _ = _once(
        capsys, tmp_path, "--persona", str(EXAMPLE / "persona.yaml"), "--once", "Who won the cup?"
    )
    assert code == 0 and "I don't know" in out and "front desk" in out


def test_user_errors_are_one_line(capsys, tmp_path):
    code, _, err = _once(capsys, tmp_path, "--kb", str(tmp_path / "nope"), "--once", "hi")
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    code, _, err = _once(capsys, tmp_path, "--once", "   ")
    assert code == 2 and "empty" in err
    code = main(["--data-dir", str(tmp_path), "chat", "--backend", "nosuch", "--once", "hi"])
    assert code == 2 and "unknown brain backend" in capsys.readouterr().err


def test_interactive_conversation_with_memory(tmp_path):
    cmd = [sys.executable, "-m", "anima.cli", "--data-dir", str(tmp_path), "chat"]
    cmd += ["--backend", "kb", "--kb", str(EXAMPLE), "--user", "u7"]
    lines = "remember that I like quiet rooms\n/reset\nwhat do you remember about me?\n/quit\n"
    done = subprocess.run(cmd, input=lines, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Ava> I'll remember that." in done.stdout
    assert "I like quiet rooms." in done.stdout
    assert "Traceback" not in done.stderr
