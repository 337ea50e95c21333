"""The training helpers for the Mandarin mix: held-out sentences stay out, ONNX weights round-trip."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from anima.lang import get_pack
from anima.lipsync import neural as N

TRAINING = Path(__file__).resolve().parents[2] / "training"
sys.path.insert(0, str(TRAINING))


def test_mandarin_sentences_leave_out_the_bench_sentences() -> None:
    """Every bench sentence fed as held out never comes back; the list is repeatable."""
    from sentences_zh import FIXED, sentences_zh

    bench = tuple(get_pack("zh").bench["sentences"]) + (FIXED[0],)
    texts = sentences_zh(300, 1235, bench)
    assert len(texts) == 300
    assert texts == sentences_zh(300, 1235, bench)
    stripped = {t.strip("。？！，") for t in texts}
    assert not stripped & {b.strip("。？！，") for b in bench}
    assert len(stripped) > 200  # a grammar, not a handful of lines


def test_shipped_onnx_loads_back_into_torch_exactly() -> None:
    """``from_onnx`` undoes the exporter's transposes and gate order (fine-tuning starts there)."""
    torch = pytest.importorskip("torch")
    import onnxruntime as ort
    from train_lipsync import HIDDEN, from_onnx

    torch.set_num_threads(1)
    model = from_onnx(N.MODEL_PATH).eval()
    x = np.random.default_rng(0).normal(-5, 2, (1, 20, N.CONTEXT, N.N_MELS)).astype(np.float32)
    h = np.zeros((1, 1, HIDDEN), np.float32)
    want = ort.InferenceSession(str(N.MODEL_PATH)).run(None, {"feats": x, "h0": h})[0]
    with torch.no_grad():
        got = model(torch.from_numpy(x), torch.from_numpy(h))[0].numpy()
    assert np.abs(want - got).max() < 1e-5
