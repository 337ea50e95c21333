"""``anima bench asr`` end to end (one utterance per length, fed at real-time pace)."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from anima.cli import main


@pytest.mark.slow
def test_bench_asr_writes_json_and_plot(tmp_path):
    data = ["--data-dir", str(tmp_path / "data")]
    assert main([*data, "bench", "asr", "--out", str(tmp_path), "--reps", "1"]) == 0
    result = json.loads((tmp_path / "asr.json").read_text())
    assert set(result["live"]) == {"2s", "5s", "10s"}
    for length, row in result["live"].items():
        lat = row["speech_end_to_final_s"]
        assert row["missed"] == 0 and 0 < lat["p50"] <= lat["p95"] < 5, length
        assert 0 < row["rtf"]["p50"] < 1 and row["wer_mean"] < 0.5
    assert result["live"]["10s"]["audio_s"]["p50"] > result["live"]["2s"]["audio_s"]["p50"] * 2
    table = result["decode_seconds"]["5s"]
    assert {"stock_transcribe", "full_window", "short"} <= set(table)
    assert result["versions"]["faster-whisper"] != "absent"
    assert Image.open(tmp_path / "asr_latency.png").size[0] >= 600
