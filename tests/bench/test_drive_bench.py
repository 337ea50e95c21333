"""The drive-mode cost figure of ``anima bench lipsync`` (shape only; speed is for the bench)."""

from __future__ import annotations

import numpy as np

from anima.bench.drive import drive_cost


def test_drive_cost_times_every_frame_at_both_input_rates(voice):
    pcm = np.concatenate([c.pcm for c in voice.synthesize("One two three.")])
    result = drive_cost(pcm, voice.sample_rate)
    frames = len(pcm) // (voice.sample_rate // 25)
    for key in ("in_22050", "in_48000"):
        # Two timed passes; each frame once per pass (the last, padded one is not taken live).
        assert 2 * frames - 2 <= result[key]["n"] <= 2 * frames + 2
        assert 0 < result[key]["p50"] <= result[key]["max"]
    assert result["frame_budget_ms"] == 40.0
