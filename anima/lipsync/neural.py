"""Audio -> mouth shapes with a small network (ONNX, onnxruntime): lip-sync for bare audio.

Phoneme timings exist only when our own voice speaks; a recording, a cloned voice or a live
human comes as audio alone. This module maps 16 kHz audio to the four mouth parameters at the
video frame rate with a network trained by ``training/train_lipsync.py`` on speech the project
synthesises itself, labelled by :func:`anima.lipsync.coarticulation.mouth_track`.

Features are log-mel frames computed here in numpy, the one implementation shared with
training. Video frame ``t`` (time ``t / FPS``) sees the mel frames centred from 130 ms before
it to 20 ms after it; the last of them reaches 32.5 ms past the frame time, so the model has
less than one 40 ms frame of look-ahead and can run live. A GRU carries context from earlier
frames, so :class:`NeuralMouth` streams: push audio in any block size, frames come out as
soon as their look-ahead has arrived, identical to a whole-file run.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from anima.frames import MediaClock, MouthShape, SpeechChunk

SAMPLE_RATE = 16_000
FPS = 25
HOP = 160  # 10 ms mel hop: four mel frames per video frame
WIN = 400  # 25 ms analysis window
N_FFT = 512
N_MELS = 40
CONTEXT = 16  # mel frames per video frame window
AHEAD = 2  # of them, mel frames after the frame's own time
PER_FRAME = SAMPLE_RATE // FPS // HOP  # 4
_FLOOR = 1e-6
MODEL_PATH = Path(__file__).with_name("models") / "audio2mouth.onnx"


class NeuralLipSyncError(RuntimeError):
    """The audio-to-mouth model is missing or cannot run."""


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    """Triangular mel filters (N_FFT // 2 + 1, N_MELS), HTK mel scale, 60..7600 Hz."""

    def mel(f: np.ndarray) -> np.ndarray:
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m: np.ndarray) -> np.ndarray:
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(np.array(60.0)), mel(np.array(7600.0)), N_MELS + 2))
    freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    up = (freqs[:, None] - lo) / (mid - lo)
    down = (hi - freqs[:, None]) / (hi - mid)
    return np.maximum(0.0, np.minimum(up, down)).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WIN + 2)[1:-1].astype(np.float32)


def silence_mel() -> np.ndarray:
    """The log-mel frame of digital silence."""
    return np.full(N_MELS, math.log(_FLOOR), np.float32)


def log_mel(audio: np.ndarray, first: int, count: int) -> np.ndarray:
    """Log-mel frames ``first .. first + count`` of float audio at 16 kHz, (count, N_MELS).

    Frame ``j`` is centred on sample ``j * HOP`` and covers ``WIN`` samples; audio outside
    ``audio`` counts as silence, so frames can be computed from any prefix that holds them.
    """
    if count <= 0:
        return np.zeros((0, N_MELS), np.float32)
    s0 = (first * HOP) - WIN // 2
    s1 = (first + count - 1) * HOP + WIN // 2
    padded = np.zeros(s1 - s0, np.float32)
    a, b = max(s0, 0), min(s1, len(audio))
    if b > a:
        padded[a - s0 : b - s0] = audio[a:b]
    idx = (np.arange(count) * HOP)[:, None] + np.arange(WIN)[None, :]
    frames = padded[idx] * _window()
    spec = np.abs(np.fft.rfft(frames, N_FFT, axis=1)) ** 2
    return np.log(spec.astype(np.float32) @ _mel_basis() + _FLOOR).astype(np.float32)


def frames_for(samples: int) -> int:
    """Video frames that start within ``samples`` of 16 kHz audio."""
    return -(-samples * FPS // SAMPLE_RATE)


def windows(mel: np.ndarray, first_frame: int, count: int, mel_offset: int = 0) -> np.ndarray:
    """Model input for video frames ``first_frame ..``: (count, CONTEXT, N_MELS).

    ``mel`` holds mel frames starting at mel index ``mel_offset``; indices before it (or
    below zero) are silence.
    """
    out = np.empty((count, CONTEXT, N_MELS), np.float32)
    out[:] = silence_mel()
    for k in range(count):
        end = (first_frame + k) * PER_FRAME + AHEAD + 1  # exclusive mel index
        for c, j in enumerate(range(end - CONTEXT, end)):
            i = j - mel_offset
            if 0 <= i < len(mel):
                out[k, c] = mel[i]
    return out


def to_16k(pcm: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono int16 (or float) audio at ``sample_rate`` -> float32 in -1..1 at 16 kHz."""
    x = np.asarray(pcm)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    if sample_rate == SAMPLE_RATE:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(SAMPLE_RATE, int(sample_rate))
    return resample_poly(x, SAMPLE_RATE // g, int(sample_rate) // g).astype(np.float32)


class Audio2MouthModel:
    """The ONNX network, one session shared by all streams (onnxruntime sessions are thread-safe).

    ``threads`` bounds onnxruntime's intra-op threads; one is plenty (see ``anima bench lipsync``).
    """

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        path = Path(path) if path is not None else MODEL_PATH
        if not path.is_file():
            raise NeuralLipSyncError(f"audio-to-mouth model not found: {path}")
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.hidden = int(self.session.get_inputs()[1].shape[2])

    def initial_state(self) -> np.ndarray:
        """The GRU state at the start of a stream."""
        return np.zeros((1, 1, self.hidden), np.float32)

    def run(self, feats: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mouth parameters (frames, 4) for windows ``feats`` (frames, CONTEXT, N_MELS)."""
        if len(feats) == 0:
            return np.zeros((0, 4), np.float32), state
        mouth, h = self.session.run(None, {"feats": feats[None].astype(np.float32), "h0": state})
        return mouth[0], h


@lru_cache(maxsize=4)
def shared_model(path: Path | None = None) -> Audio2MouthModel:
    """One loaded model per path for the whole process."""
    return Audio2MouthModel(path)


class NeuralMouth:
    """Streaming audio (16 kHz float) -> mouth parameters at 25 fps, one frame of look-ahead.

    :meth:`push` returns the frames whose windows are complete; :meth:`flush` ends the stream
    (audio after the end counts as silence). Memory is bounded: only the last window of mel
    frames and the audio for the next mel frame are kept.
    """

    def __init__(self, model: Audio2MouthModel | None = None) -> None:
        self.model = model or shared_model()
        self.reset()

    def reset(self) -> None:
        """Start a new stream at time zero."""
        self._state = self.model.initial_state()
        self._audio = np.zeros(0, np.float32)  # samples from _audio_start on
        self._audio_start = 0
        self._samples = 0  # total pushed
        self._mel = np.zeros((0, N_MELS), np.float32)  # mel frames from _mel_start on
        self._mel_start = 0
        self._next_mel = 0
        self.frames_out = 0

    def push(self, audio: np.ndarray) -> np.ndarray:
        """Add audio; the mouth parameters (n, 4) of every frame now complete."""
        audio = np.asarray(audio, np.float32).reshape(-1)
        self._audio = np.concatenate([self._audio, audio])
        self._samples += len(audio)
        # Mel frame j needs samples up to j * HOP + WIN // 2.
        ready = (self._samples - WIN // 2) // HOP + 1
        return self._advance(ready, frames=(ready - AHEAD - 1) // PER_FRAME + 1)

    def flush(self) -> np.ndarray:
        """End of audio: the remaining frames, with silence as their look-ahead."""
        total = frames_for(self._samples)
        ready = total * PER_FRAME + AHEAD + 1
        return self._advance(ready, frames=total)

    def peek(self) -> np.ndarray:
        """The frames :meth:`flush` would give now, without ending the stream or changing it."""
        total = frames_for(self._samples)
        if total <= self.frames_out:
            return np.zeros((0, 4), np.float32)
        ready = total * PER_FRAME + AHEAD + 1
        first = self._next_mel - self._audio_start // HOP
        mel = np.concatenate([self._mel, log_mel(self._audio, first, ready - self._next_mel)])
        feats = windows(mel, self.frames_out, total - self.frames_out, self._mel_start)
        return self.model.run(feats, self._state)[0]

    def _advance(self, mel_ready: int, frames: int) -> np.ndarray:
        if mel_ready > self._next_mel:
            # _audio begins at _audio_start, a multiple of HOP, so mel indices shift by whole hops.
            first = self._next_mel - self._audio_start // HOP
            new = log_mel(self._audio, first, mel_ready - self._next_mel)
            self._mel = np.concatenate([self._mel, new])
            self._next_mel = mel_ready
        if frames <= self.frames_out:
            return np.zeros((0, 4), np.float32)
        feats = windows(self._mel, self.frames_out, frames - self.frames_out, self._mel_start)
        out, self._state = self.model.run(feats, self._state)
        self.frames_out = frames
        self._trim()
        return out

    def _trim(self) -> None:
        # Keep the mel frames the next window needs and the audio the next mel frame needs.
        keep_mel = self.frames_out * PER_FRAME + AHEAD + 1 - CONTEXT
        if keep_mel > self._mel_start:
            self._mel = self._mel[keep_mel - self._mel_start :]
            self._mel_start = keep_mel
        keep_audio = max(0, (self._next_mel * HOP - WIN // 2) // HOP * HOP)
        if keep_audio > self._audio_start:
            self._audio = self._audio[keep_audio - self._audio_start :]
            self._audio_start = keep_audio


def mouth_from_audio(audio: np.ndarray, model: Audio2MouthModel | None = None) -> np.ndarray:
    """Mouth parameters (frames, 4) at 25 fps for a whole clip of 16 kHz float audio."""
    stream = NeuralMouth(model)
    return np.concatenate([stream.push(audio), stream.flush()])


def is_speaking(params: np.ndarray) -> np.ndarray:
    """Per frame: does the mouth look like speech (open jaw or pressed lips), not rest."""
    return (params[:, 0] > 0.08) | (params[:, 3] > 0.6)


class PauseBridge:
    """Keeps the lips moving through short pauses inside speech, as a speaker's do.

    The network lets the mouth fall to rest whenever the voice stops; in a 0.5-0.9 s pause
    between phrases a person's lips keep moving (they relax slowly, part and prepare the next
    word). For up to ``hold`` seconds after speech the jaw eases down to a slightly parted
    level with a small syllable-rate motion fading out, and the frames count as speaking.
    Causal: it only looks back, so it adds no delay.
    """

    def __init__(self, fps: float, hold: float = 0.9) -> None:
        self._fps = fps
        self._hold = hold
        self._since = hold  # seconds since the last speaking frame
        self._last = np.zeros(4, np.float32)

    def apply(self, params: np.ndarray, speaking: np.ndarray) -> np.ndarray:
        """Bridge ``params`` (frames, 4) in place where not ``speaking``; updates ``speaking``."""
        for i in range(len(params)):
            if speaking[i]:
                self._since = 0.0
                self._last = params[i].copy()
                continue
            self._since += 1.0 / self._fps
            if self._since >= self._hold:
                continue
            u = self._since / self._hold
            fade = 0.5 * (1 + np.cos(np.pi * u))  # 1 -> 0 over the hold
            wobble = 0.5 * (1 - np.cos(2 * np.pi * 3.5 * self._since))  # ~3.5 syllables/s
            jaw = fade * (0.1 + 0.12 * wobble) + (1 - fade) * params[i, 0]
            params[i, 0] = max(float(params[i, 0]), min(jaw, float(self._last[0]) + 0.1))
            params[i, 1:3] = fade * self._last[1:3] + (1 - fade) * params[i, 1:3]
            params[i, 3] = min(float(params[i, 3]), 0.3)
            speaking[i] = u < 0.8
        return params


class NeuralLipSync:
    """The :class:`~anima.lipsync.LipSync` protocol for bare audio: phoneme timings are ignored.

    Consecutive chunks (each starting where the last ended) form one stream, so the GRU keeps
    its context across them. A chunk's last frame has its look-ahead in the next chunk, which
    has not arrived yet; it is computed with silence there (as :meth:`NeuralMouth.peek`), so
    every frame is emitted exactly once and nothing waits. Mouth frames come at the clock's
    fps; the model runs at 25 fps and other rates take the nearest model frame.
    """

    def __init__(self, model: Audio2MouthModel | None = None) -> None:
        self._stream = NeuralMouth(model)
        self._next_sample = -1
        self._clock: MediaClock | None = None
        self._origin = 0.0  # clock time (s) of model frame 0
        self._frames = np.zeros((0, 4), np.float32)  # completed model frames from _base on
        self._base = 0
        self._bridge: PauseBridge | None = None

    def shapes(
        self, chunk: SpeechChunk, start_sample: int, clock: MediaClock
    ) -> list[tuple[int, MouthShape, bool]]:
        """Mouth shapes for the frames in ``[start_sample, start_sample + len(chunk.pcm))``."""
        if chunk.sample_rate != clock.sample_rate:
            raise ValueError(f"speech at {chunk.sample_rate} Hz on a {clock.sample_rate} Hz clock")
        if start_sample != self._next_sample or clock != self._clock:
            self._restart(start_sample, clock)
        self._next_sample = start_sample + len(chunk.pcm)
        first = clock.frames_for_samples(start_sample)
        last = clock.frames_for_samples(self._next_sample)
        done = self._stream.push(to_16k(chunk.pcm, chunk.sample_rate))
        self._frames = np.concatenate([self._frames, done])
        if last <= first:
            return []
        pending = self._stream.peek()
        track = np.concatenate([self._frames, pending])
        times = np.arange(first, last) / clock.fps
        k = np.clip(np.round((times - self._origin) * FPS).astype(int) - self._base, 0, None)
        k = np.minimum(k, len(track) - 1) if len(track) else k
        params = track[k] if len(track) else np.zeros((len(k), 4), np.float32)
        # Forget model frames no later clock frame can need.
        keep = min(max(0, int(k.max()) - 1), len(self._frames))
        self._frames, self._base = self._frames[keep:], self._base + keep
        speaking = is_speaking(params)
        if self._bridge is None:
            self._bridge = PauseBridge(clock.fps)
        params = self._bridge.apply(params.copy(), speaking)
        return [
            (int(i), MouthShape(*map(float, p)), bool(s))
            for i, p, s in zip(range(first, last), np.clip(params, 0, 1), speaking, strict=True)
        ]

    def _restart(self, start_sample: int, clock: MediaClock) -> None:
        """A new stream whose model frames sit on the clock's frame grid."""
        self._stream.reset()
        self._clock = clock
        self._bridge = None
        start = start_sample / clock.sample_rate
        frame0 = clock.frames_for_samples(start_sample) - 1
        self._origin = max(frame0, 0) / clock.fps if frame0 >= 0 else 0.0
        # Silence from the model's frame 0 to the chunk start keeps frames on the clock grid.
        lead = int(round((start - self._origin) * SAMPLE_RATE))
        self._frames = np.zeros((0, 4), np.float32)
        self._base = 0
        if lead > 0:
            self._frames = self._stream.push(np.zeros(lead, np.float32))
