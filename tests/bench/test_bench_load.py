"""Load bench: the window maths, and a short run of the real thing (marked slow)."""

from __future__ import annotations

import json

import pytest

from anima.bench.load import Talker, _window


def test_window_counts_frames_and_latencies_inside_it():
    a, b = Talker("ws://x", [], 16000, 0), Talker("ws://x", [], 16000, 1)
    a.video = [0.5 + 0.04 * k for k in range(100)]  # 25 fps from 0.5 s to 4.5 s
    b.video = [0.5 + 0.08 * k for k in range(50)]  # 12.5 fps
    a.latencies = [(1.0, 0.6), (9.0, 5.0)]  # the second is outside the window
    b.latencies = [(2.0, 0.8)]
    w = _window([a, b], 1.0, 3.0, fps=25)
    assert w["fps_per_session"] == [25.0, 12.5]
    assert w["fps_min"] == 12.5 and w["fps_ratio_min"] == 0.5
    assert w["replies"] == 2 and w["reply_latency"]["max"] == pytest.approx(0.8)


@pytest.mark.slow
def test_bench_load_short_run(tmp_path, settings):
    from rich.console import Console

    from anima.bench.load import bench_load

    assert bench_load(tmp_path, settings, Console(), max_sessions=1, seconds=6.0, extra=1) == 0
    r = json.loads((tmp_path / "load.json").read_text())
    (one,) = r["sweep"]
    assert one["n"] == 1 and one["fps_min"] > 0
    refusal = r["refusal"]
    assert refusal["max_sessions"] == 1 and refusal["extra_attempts"] == ["busy"]
    assert (tmp_path / "load.png").stat().st_size > 1000
