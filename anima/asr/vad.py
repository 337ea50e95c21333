"""Silero VAD v6 (the ONNX model shipped in faster-whisper's assets), run in streaming mode.

The v6 graph takes ``input`` of shape (n, 576): each row is 64 samples of context (the tail of
the previous window) followed by a 512-sample window at 16 kHz, and carries an LSTM state
``h``/``c`` (1, 1, 128) across rows. faster-whisper feeds a whole file as one batch of rows;
we feed one row per 32 ms window and keep context and state between calls, which gives the
same probabilities (checked in tests) with a latency of one window.

One :class:`SileroModel` (an onnxruntime session, 1 intra-op thread) is shared by every
stream; each :class:`VadStream` holds only its own 1 KB of state.
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np

WINDOW = 512  # samples per VAD step at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous window the v6 model expects in front of each window


def model_path() -> str:
    """The Silero VAD v6 ONNX file inside the installed faster-whisper package."""
    from faster_whisper.utils import get_assets_path

    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    if not os.path.isfile(path):  # pragma: no cover - part of the base install
        raise FileNotFoundError(f"Silero VAD model missing at {path}; reinstall faster-whisper")
    return path


class SileroModel:
    """The ONNX session; thread-safe, shared between streams."""

    def __init__(self, path: str | None = None) -> None:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # One thread: a 32 ms window costs well under a millisecond, and the cores are for Whisper.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 4
        self._session = onnxruntime.InferenceSession(
            path or model_path(), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def run(
        self, rows: np.ndarray, h: np.ndarray, c: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Speech probabilities for ``rows`` (n, 576) and the new LSTM state."""
        with self._lock:
            probs, h, c = self._session.run(None, {"input": rows, "h": h, "c": c})
        return np.asarray(probs).reshape(-1), h, c


@functools.cache
def shared_model() -> SileroModel:
    """The process-wide VAD model, loaded on first use."""
    return SileroModel()


class VadStream:
    """Speech probability per 512-sample window of one audio stream."""

    def __init__(self, model: SileroModel | None = None) -> None:
        self.model = model or shared_model()
        self.reset()

    def reset(self) -> None:
        """Forget the stream (new speaker, new connection)."""
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities for consecutive windows: float32 16 kHz audio of k * 512 samples."""
        if len(windows) % WINDOW:
            raise ValueError(f"VAD input must be a multiple of {WINDOW} samples")
        if not len(windows):
            return np.zeros(0, np.float32)
        rows = windows.astype(np.float32, copy=False).reshape(-1, WINDOW)
        context = np.concatenate([self._context[None], rows[:-1, -CONTEXT:]])
        probs, self._h, self._c = self.model.run(
            np.ascontiguousarray(np.concatenate([context, rows], axis=1)), self._h, self._c
        )
        self._context = rows[-1, -CONTEXT:].copy()
        return probs
