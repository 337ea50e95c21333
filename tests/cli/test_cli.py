"""The command line: user errors give one clear line and exit code 2, never a traceback."""

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from anima.cli import main


def _run(capsys, *argv):
    code = main(list(argv))
    err = capsys.readouterr().err
    return code, err


@pytest.fixture
def data_dir(tmp_path):
    return str(tmp_path / "data")


def test_empty_text(capsys, data_dir, tmp_path):
    code, err = _run(capsys, "--data-dir", data_dir, "say", "   ", "-o", str(tmp_path / "x.mp4"))
    assert code == 2
    assert "text is empty" in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_text_over_limit(capsys, data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMA_LIMITS__MAX_TEXT_CHARS", "20")
    code, err = _run(
        capsys, "--data-dir", data_dir, "say", "word " * 10, "-o", str(tmp_path / "x.mp4")
    )
    assert code == 2 and "limit is 20" in err


def test_not_an_image(capsys, data_dir, tmp_path):
    bad = tmp_path / "photo.jpg"
    bad.write_text("definitely not a jpeg")
    code, err = _run(capsys, "--data-dir", data_dir, "avatar", "add", str(bad), "--name", "x")
    assert code == 2 and "not an image" in err
    assert err.count("\n") == 1


def test_no_face(capsys, data_dir, tmp_path):
    img = tmp_path / "wall.png"
    Image.fromarray(np.full((300, 300, 3), 128, np.uint8)).save(img)
    code, err = _run(capsys, "--data-dir", data_dir, "avatar", "add", str(img), "--name", "x")
    assert code == 2 and "no face found" in err


def test_missing_file_and_unknown_avatar(capsys, data_dir, tmp_path):
    code, err = _run(
        capsys, "--data-dir", data_dir, "avatar", "add", str(tmp_path / "nope.jpg"), "--name", "x"
    )
    assert code == 2 and "no such file" in err
    code, err = _run(
        capsys,
        "--data-dir",
        data_dir,
        "say",
        "hi",
        "--avatar",
        "ghost",
        "-o",
        str(tmp_path / "o.mp4"),
    )
    assert code == 2 and "no avatar named 'ghost'" in err


def test_avatar_add_list_remove(capsys, data_dir, tmp_path, portrait):
    photo = tmp_path / "portrait.jpg"
    buf = io.BytesIO()
    Image.fromarray(portrait).save(buf, format="JPEG")
    photo.write_bytes(buf.getvalue())
    code, err = _run(capsys, "--data-dir", data_dir, "avatar", "add", str(photo), "--name", "guide")
    assert code == 0 and "avatar 'guide' ready" in err
    code = main(["--data-dir", data_dir, "avatar", "list"])
    assert code == 0 and capsys.readouterr().out.split() == ["guide"]
    code, err = _run(capsys, "--data-dir", data_dir, "avatar", "add", str(photo), "--name", "guide")
    assert code == 2 and "exists" in err
    code, err = _run(capsys, "--data-dir", data_dir, "avatar", "remove", "guide")
    assert code == 0
    main(["--data-dir", data_dir, "avatar", "list"])
    assert capsys.readouterr().out.strip() == ""


@pytest.mark.slow
def test_say_with_stored_avatar_as_a_real_process(tmp_path, portrait):
    """The console script itself, as a user runs it."""
    photo = tmp_path / "portrait.png"
    Image.fromarray(portrait).save(photo)
    env_args = ["--data-dir", str(tmp_path / "data")]
    anima = [sys.executable, "-m", "anima.cli", *env_args]
    add = subprocess.run(
        [*anima, "avatar", "add", str(photo), "--name", "guide"], capture_output=True, text=True
    )
    assert add.returncode == 0, add.stderr
    out = tmp_path / "hi.mp4"
    say = subprocess.run(
        [
            *anima,
            "say",
            "Hi, nice to meet you.",
            "--avatar",
            "guide",
            "-o",
            str(out),
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert say.returncode == 0, say.stderr
    assert out.stat().st_size > 10_000
    assert f"wrote {out}" in say.stderr
    assert "Traceback" not in say.stderr and "W0000" not in say.stderr
