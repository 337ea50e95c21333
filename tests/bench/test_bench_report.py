"""``anima bench report`` over a folder of results."""

import json

from PIL import Image

from anima.cli import main


def _stats(p50):
    return {"n": 3, "mean": p50, "p50": p50, "p95": p50 * 1.5, "max": p50 * 2}


def _e2e():
    ours = {
        k: _stats(v)
        for k, v in [
            ("endpoint", 0.2),
            ("asr", 0.1),
            ("first_phrase", 0.01),
            ("tts_first_chunk", 0.3),
            ("first_frame", 0.05),
            ("transport", 0.02),
            ("total", 0.66),
            ("client_audio", 0.68),
        ]
    }
    ours["answered"] = 3
    base = {
        "cascade": {
            "summary": {
                k: _stats(0.5)
                for k in ("endpoint", "asr", "reply", "tts", "render", "transport", "total")
            }
        },
        "fixed500_sentence": {
            "summary": {
                k: _stats(0.3)
                for k in (
                    "endpoint",
                    "asr",
                    "first_sentence",
                    "tts",
                    "render",
                    "transport",
                    "total",
                )
            }
        },
    }
    return {
        "config": {"turns": 3, "backend": "kb"},
        "ours": ours,
        "baselines": base,
        "ratios": {"cascade_p50": 0.27, "fixed500_sentence_p50": 0.45},
        "load_average_start": [5.0, 4.0, 3.0],
        "load_average_end": [6.0, 4.0, 3.0],
    }


def test_report_renders_tables_and_plots(tmp_path, capsys):
    (tmp_path / "e2e.json").write_text(json.dumps(_e2e()))
    (tmp_path / "asr.json").write_text(json.dumps({"latency": {"2s": _stats(0.123)}}))
    (tmp_path / "memory.json").write_text(
        json.dumps(
            {
                "sessions": {
                    "1": {"rss_loaded_mb": 600, "running_peak_mb": 700, "peak_rss_mb": 800}
                },
                "soak": {
                    "seconds": 60,
                    "turns": 5,
                    "start_mb": 700,
                    "end_mb": 702,
                    "growth_mb": 2,
                    "slope_mb_per_min": 2.0,
                    "samples": [[0, 700], [30, 701], [60, 702]],
                },
            }
        )
    )
    (tmp_path / "broken.json").write_text("{not json")
    assert main(["bench", "report", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "report.md").read_text()
    assert "| **first audio at client** | 680 | 1020 | 500 | 300 |" in md
    assert "cascade 0.27" in md
    assert "| asr | latency.2s | 3 | 0.123 |" in md
    assert "+2.00 MB/min" in md
    assert "broken" in md and "unreadable" in md
    assert Image.open(tmp_path / "report_e2e.png").size[0] >= 800
    assert Image.open(tmp_path / "report_memory.png").size[0] >= 800


def test_report_without_results_is_a_user_error(tmp_path, capsys):
    assert main(["bench", "report", "--out", str(tmp_path / "none")]) == 2
    assert "run a benchmark first" in capsys.readouterr().err
