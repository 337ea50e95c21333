"""The Wav2Lip-class generator graph: published shapes, runs, and the size guard."""

import numpy as np
import pytest

from anima.bench.wav2lip_cost import build_generator, parameter_count, time_generator


def test_generator_at_96_has_the_published_size_and_runs():
    model = build_generator(96)
    # The published Wav2Lip generator has about 36 M parameters.
    assert 35e6 < parameter_count(model) < 38e6
    times = time_generator(model, 96, reps=1)  # checks the output is (1, 3, 96, 96)
    assert len(times) == 1 and times[0] > 0


def test_generator_is_fully_convolutional_at_larger_sizes():
    import onnxruntime as ort

    model = build_generator(128)
    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    out = sess.run(
        None,
        {
            "face": np.zeros((1, 6, 128, 128), np.float32),
            "mel": np.zeros((1, 1, 80, 16), np.float32),
        },
    )[0]
    assert out.shape == (1, 3, 128, 128)
    assert np.all((out >= 0) & (out <= 1))  # the sigmoid output block


@pytest.mark.parametrize("size", [64, 100])
def test_generator_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="multiple of 32"):
        build_generator(size)
