"""``anima live`` from the command line: bad input is one clear line and exit code 2."""

import pytest

from anima.cli import main


@pytest.mark.parametrize(
    ("script", "extra", "message"),
    [
        ("Hello [dance].\n", ["-o", "x.mp4"], "line 1: unknown mark [dance]"),
        ("# nothing\n", ["-o", "x.mp4"], "the script is empty"),
        ("Hello.\n", [], "no output"),
        ("Hello.\n", ["-o", "x.avi"], "must be an .mp4 file"),
        ("Hello.\n", ["--rtmp", "http://x/y"], "not an RTMP URL"),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, script, extra, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "show.md").write_text(script)
    code = main(["--data-dir", str(tmp_path / "d"), "live", "--script", "show.md", *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "x.mp4").exists()


def test_offline_needs_a_script(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path), "live", "-o", str(tmp_path / "x.mp4")])
    assert code == 2 and "needs --script" in capsys.readouterr().err


def test_offline_show_renders_to_mp4(tmp_path, capsys):
    import av

    (tmp_path / "show.md").write_text("[happy] Hello there. [nod]\n[pause 0.5s]\nGoodbye.\n")
    out = tmp_path / "show.mp4"
    code = main(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "live",
            "--script",
            str(tmp_path / "show.md"),
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert (v.codec_context.name, v.width, a.codec_context.name) == ("h264", 512, "aac")
        assert abs(float(v.duration * v.time_base) - float(a.duration * a.time_base)) < 0.1
