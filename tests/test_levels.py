"""Signal levels: RMS of a chunk and of frames, without overflow, in the samples' units."""

import numpy as np

from anima.levels import frame_rms, rms


def test_rms_of_int16_full_scale_does_not_overflow():
    loud = np.full(480, -32768, np.int16)
    assert rms(loud) == 32768.0
    assert rms(np.zeros(0, np.int16)) == 0.0


def test_rms_of_a_sine_is_its_peak_over_root_two():
    t = np.arange(16_000) / 16_000
    assert abs(rms(0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)) - 0.5 / np.sqrt(2)) < 1e-4


def test_frame_rms_leaves_out_a_short_tail():
    x = np.r_[np.zeros(160), np.ones(160), np.full(100, 9.0)]
    assert frame_rms(x, 160).tolist() == [0.0, 1.0]
    assert len(frame_rms(x[:100], 160)) == 0
