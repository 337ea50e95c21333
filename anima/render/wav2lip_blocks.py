"""The block tables of the published Wav2Lip generator (Prajwal et al., 2020).

One description of the architecture, used by the torch generator
(:mod:`anima.render.neural_mouth_net`) and by the cost benchmark
(:mod:`anima.bench.wav2lip_cost`), which builds the same network in ONNX.
"""

from __future__ import annotations

# (in, out, kernel, stride, padding, residual) per conv, grouped in blocks (published sizes).
FACE_ENCODER = [
    [(6, 16, 7, 1, 3, False)],
    [(16, 32, 3, 2, 1, False), (32, 32, 3, 1, 1, True), (32, 32, 3, 1, 1, True)],
    [(32, 64, 3, 2, 1, False)] + [(64, 64, 3, 1, 1, True)] * 3,
    [(64, 128, 3, 2, 1, False)] + [(128, 128, 3, 1, 1, True)] * 2,
    [(128, 256, 3, 2, 1, False)] + [(256, 256, 3, 1, 1, True)] * 2,
    [(256, 512, 3, 2, 1, False), (512, 512, 3, 1, 1, True)],
    [(512, 512, 3, 1, 0, False), (512, 512, 1, 1, 0, False)],
]
AUDIO_ENCODER = [
    (1, 32, 3, (1, 1), 1, False),
    (32, 32, 3, (1, 1), 1, True),
    (32, 32, 3, (1, 1), 1, True),
    (32, 64, 3, (3, 1), 1, False),
    (64, 64, 3, (1, 1), 1, True),
    (64, 64, 3, (1, 1), 1, True),
    (64, 128, 3, (3, 3), 1, False),
    (128, 128, 3, (1, 1), 1, True),
    (128, 128, 3, (1, 1), 1, True),
    (128, 256, 3, (3, 2), 1, False),
    (256, 256, 3, (1, 1), 1, True),
    (256, 512, 3, (1, 1), 0, False),
    (512, 512, 1, (1, 1), 0, False),
]
# Decoder blocks: (transposed conv (in, out, kernel, stride, padding, output_padding) or None
# for the first 1x1 conv block, then the number of residual convs at ``out`` channels).
DECODER = [
    (None, 0),
    ((1024, 512, 3, 1, 0, 0), 1),
    ((1024, 512, 3, 2, 1, 1), 2),
    ((768, 384, 3, 2, 1, 1), 2),
    ((512, 256, 3, 2, 1, 1), 2),
    ((320, 128, 3, 2, 1, 1), 2),
    ((160, 64, 3, 2, 1, 1), 2),
]
