"""Mic audio conversion under hostile input: ``pcm_from_bytes``, ``check_pcm`` and the
streaming ``Resampler`` accept what they document or raise AudioError, nothing else."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz  # noqa: E402

from anima.asr.audio import AudioError, Resampler, check_pcm, pcm_from_bytes  # noqa: E402

rates = st.sampled_from([8_000, 16_000, 22_050, 44_100, 48_000, 192_000]) | st.integers(
    -(2**40), 2**40
)
channels = st.integers(-3, 12)
arrays = st.one_of(
    st.binary(max_size=400).map(lambda b: np.frombuffer(b, np.uint8).copy()),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), max_size=64).map(
        lambda v: np.array(v, np.float32)
    ),
    st.lists(st.integers(-32768, 32767), max_size=64).map(lambda v: np.array(v, np.int16)),
    st.lists(st.floats(-1, 1), max_size=64).map(lambda v: np.array(v, np.float64).reshape(-1, 1)),
    st.just(np.zeros((0, 2), np.int16)),
    st.just([1, 2, 3]),
)


def check_bytes(data: bytes, rate: int, ch: int) -> None:
    """Bytes from a client: (samples, channels) int16, or AudioError."""
    try:
        pcm = pcm_from_bytes(data, rate, ch)
    except AudioError as exc:
        assert str(exc)
        return
    assert pcm.dtype == np.int16 and pcm.shape[1] == ch


def check_stream(chunks: list[object], rate: int, ch: int) -> None:
    """A stream of chunks through one Resampler: 16 kHz mono float32 in -1..1, or AudioError."""
    r = Resampler()
    for chunk in chunks:
        try:
            out = r(chunk, rate, ch)
        except AudioError:
            continue
        assert out.dtype == np.float32 and out.ndim == 1
        assert not out.size or (np.isfinite(out).all() and np.abs(out).max() <= 1.5)
    assert r.flush().dtype == np.float32


def check_array(pcm: object, rate: int, ch: int) -> None:
    """check_pcm on anything."""
    try:
        check_pcm(pcm, rate, ch)
    except AudioError:
        pass


test_pcm_bytes, test_pcm_bytes_slow = fuzz(
    check_bytes, st.binary(max_size=300), rates, channels, examples=200,
    cases=[(b"", 8_000, 0)],  # 0 channels: ZeroDivisionError before the fix
)  # fmt: skip
test_resampler, test_resampler_slow = fuzz(
    check_stream, st.lists(arrays, max_size=4), rates, st.integers(1, 3), examples=150
)
test_check_pcm, test_check_pcm_slow = fuzz(check_array, arrays, rates, channels, examples=200)
