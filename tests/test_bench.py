import json

import pytest
from PIL import Image

from anima.cli import main


@pytest.mark.slow
def test_bench_render_writes_json_and_pictures(tmp_path, monkeypatch):
    monkeypatch.setenv("ANIMA_DATA_DIR", str(tmp_path / "data"))
    assert main(["bench", "render", "--out", str(tmp_path), "--frames", "20"]) == 0
    result = json.loads((tmp_path / "render.json").read_text())
    render = result["render"]
    assert render["cores"] == 1 and len(render["samples_ms"]) == 20
    assert render["frame_ms"]["p50"] <= render["frame_ms"]["p95"] <= render["frame_ms"]["max"]
    assert render["fps"] > 0 and result["tts"]["rtf"]["p50"] > 0
    say = result["say_10s"]
    assert say["video_s"] > 8 and say["peak_rss_mb"] > 100
    assert result["versions"]["piper-tts"] != "absent"
    for name in ("frame_speaking.png", "frame_closed.png"):
        assert Image.open(tmp_path / name).size == (512, 512)
    assert Image.open(tmp_path / "render_frame_times.png").size[0] > 500


def test_every_benchmark_is_wired_to_its_parser_and_function():
    import importlib
    import inspect

    from anima.bench import _BENCHES
    from anima.cli import _parser

    parser = _parser()
    for name, (module, function, params) in _BENCHES.items():
        args = parser.parse_args(["bench", name])
        run = getattr(importlib.import_module(f"anima.bench.{module}"), function)
        accepted = inspect.signature(run).parameters
        for keyword, arg in params.items():
            assert hasattr(args, arg.lstrip("!")), (name, arg)
            assert keyword in accepted, (name, keyword)
