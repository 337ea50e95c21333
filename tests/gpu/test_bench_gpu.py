"""``anima bench gpu --quick`` on the CPU: every part runs and the JSON records device cpu."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


@pytest.mark.slow
def test_bench_gpu_quick_on_cpu(tmp_path, monkeypatch):
    from anima.cli import main

    monkeypatch.setenv("ANIMA_DATA_DIR", str(tmp_path / "data"))
    code = main(["bench", "gpu", "--quick", "--out", str(tmp_path)])
    assert code in (0, None)
    result = json.loads((tmp_path / "gpu.json").read_text())
    assert result["device"] == "cpu" and result["asr"]["device"] == "cpu"
    assert result["asr"]["compute_type"] == "int8" and result["asr"]["rtf"]["n"] == 2
    runs = result["renderer"]["sessions"]
    assert set(runs) == {"1", "4"} and runs["4"]["mean_batch"] > runs["1"]["mean_batch"]
    assert result["encode"]["libx264"]["ms_per_frame"]["n"] == 10
    assert (
        "unavailable" in result["encode"]["h264_nvenc"]
        or "ms_per_frame" in result["encode"]["h264_nvenc"]
    )
