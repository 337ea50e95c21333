"""The drive-mode cost figure of ``anima bench lipsync`` (shape only; speed is for the bench)."""

from __future__ import annotations

import numpy as np
import pytest

from anima.bench.drive import capture_delays, drive_cost
from anima.frames import AudioFrame


def test_drive_cost_times_every_frame_at_both_input_rates(voice):
    pcm = np.concatenate([c.pcm for c in voice.synthesize("One two three.")])
    result = drive_cost(pcm, voice.sample_rate)
    frames = len(pcm) // (voice.sample_rate // 25)
    for key in ("in_22050", "in_48000"):
        # Two timed passes; each frame once per pass (the last, padded one is not taken live).
        assert 2 * frames - 2 <= result[key]["n"] <= 2 * frames + 2
        assert 0 < result[key]["p50"] <= result[key]["max"]
    assert result["frame_budget_ms"] == 40.0


def frame(pts: int, pcm: np.ndarray) -> AudioFrame:
    return AudioFrame(turn=0, pcm=pcm, sample_rate=16_000, pts=pts)


def test_capture_delays_align_the_output_with_the_driver():
    pcm = np.r_[np.zeros(320, np.int16), np.ones(1600, np.int16)]  # sound from sample 320
    # The output's sound starts at 480: driver sample 0 is output sample 160. Frames of 640
    # samples from pts 0, each yielded 10 ms after its first driver sample was captured.
    out = np.r_[np.zeros(480, np.int16), np.ones(1440, np.int16)]
    arrivals = [(0.04 * k, frame(640 * k, out[640 * k : 640 * (k + 1)])) for k in range(3)]
    delays, problem = capture_delays(pcm, 16_000, 0.0, arrivals, dropped=0)
    assert problem == ""
    assert delays == pytest.approx([10.0, 10.0])  # frame 0 starts before the driver's sample 0


@pytest.mark.parametrize(
    ("arrivals", "dropped", "why"),
    [
        ([], 0, "no driver audio"),
        ([(1.0, frame(0, np.zeros(640, np.int16)))], 0, "all silent"),
        ([(1.0, frame(0, np.ones(640, np.int16)))], 320, "dropped"),
    ],
)
def test_no_driver_audio_is_said_not_an_index_error(arrivals, dropped, why):
    delays, problem = capture_delays(np.ones(640, np.int16), 16_000, 0.0, arrivals, dropped)
    assert delays == [] and why in problem
