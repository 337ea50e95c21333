"""Smoke of ``anima bench e2e``: one spoken turn over the WebSocket, plus both baselines."""

import json

import pytest

from anima.cli import main


@pytest.mark.slow
def test_bench_e2e_one_turn_writes_the_breakdown(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ANIMA_DATA_DIR", str(tmp_path / "data"))
    assert main(["bench", "e2e", "--turns", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "e2e.json").read_text())
    assert result["config"]["backend"] == "kb" and result["config"]["turns"] == 1
    [turn] = result["turns"]
    # The question was heard through the transport and answered.
    assert "park" in turn["transcript"].lower()
    for part in ("endpoint", "asr", "first_phrase", "tts_first_chunk", "first_frame", "total"):
        assert turn[part] >= 0, part
    # The named parts add up to (at most) the server total; the client adds the transport.
    named = sum(turn[p] for p in ("endpoint", "asr", "first_phrase", "tts_first_chunk"))
    assert named + turn["first_frame"] <= turn["total"] + 0.002
    assert turn["client_audio"] == pytest.approx(turn["total"] + turn["transport"])
    assert turn["client_video"] > 0
    assert result["ours"]["answered"] == 1
    # Baselines: fixed 500 ms silence (audio time, so exact to a VAD window), same question.
    for name in ("cascade", "fixed500_sentence"):
        [b] = result["baselines"][name]["turns"]
        assert 0.45 <= b["endpoint"] <= 0.6
        assert b["total"] == pytest.approx(
            sum(v for k, v in b.items() if k not in ("total", "frames"))
        )
    assert result["baselines"]["cascade"]["turns"][0]["frames"] > 25  # the whole reply rendered
    assert result["ratios"]["cascade_p50"] > 0 and result["ratios"]["fixed500_sentence_p50"] > 0
    assert "client_audio" in capsys.readouterr().err  # the breakdown table was printed


def test_bench_e2e_unknown_backend_is_a_user_error(tmp_path, capsys):
    assert main(["bench", "e2e", "--backend", "nope", "--out", str(tmp_path)]) == 2
    assert "error" in capsys.readouterr().err
