"""The neural mouth renderer backend (``render.backend = "wav2lip"``): GPU lower face from audio.

Each frame is first made by the default :class:`~anima.render.animator.FaceAnimator` (head
motion, blinks, expression), then a Wav2Lip-class generator
(:mod:`anima.render.neural_mouth_net`, torch) repaints the lower half of the face from the
audio around the frame: the face box is cut out and scaled to 96 px, its lower half blanked,
stacked with a reference crop of the still face, the 0.2 s mel window starting at the frame
(Wav2Lip's own audio front end, :func:`wav2lip_mel`) goes beside it, and the generated lower
half is scaled back and feathered into the frame. The eyes and the upper face stay ours.

All sessions of a process share one generator through one
:class:`~anima.render.batching.BatchScheduler`, so N sessions make batches of up to
``render.max_batch`` frames. With the device resolving to the CPU (or torch absent under
``auto``) the session keeps the default renderer and says so once in the log: the generator is
a GPU backend, too slow for a live CPU session.

Importing this module does not import torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from anima.config import RenderSettings
from anima.render.batching import BatchScheduler

log = logging.getLogger(__name__)

FACE = 96
SAMPLE_RATE = 16_000
N_FFT, HOP, N_MELS = 800, 200, 80  # Wav2Lip's hparams: 80 mel frames a second
MEL_STEPS = 16  # mel frames per video frame window (0.2 s)
WINDOW_SAMPLES = N_FFT + (MEL_STEPS - 1) * HOP  # audio one window needs: 3800 samples
_FMIN, _FMAX = 55.0, 7600.0
_PREEMPHASIS = 0.97
_MIN_DB, _REF_DB, _MAX_ABS = -100.0, 20.0, 4.0

_fallback_logged = False


# --- Wav2Lip's audio front end (numpy) -----------------------------------------------------------


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, np.float64)
    lin = f / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log_part, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    lin = m * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log_part, lin)


@lru_cache(maxsize=1)
def mel_basis() -> np.ndarray:
    """(80, 401) Slaney-normalised mel filters, 55-7600 Hz (``librosa.filters.mel``'s)."""
    freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(_FMIN), _hz_to_mel(_FMAX), N_MELS + 2))
    fdiff = np.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def wav2lip_mel(audio: np.ndarray) -> np.ndarray:
    """Normalised log-mel (80, n) of 16 kHz float audio, frame j centred at ``400 + 200 j``.

    Wav2Lip's ``audio.melspectrogram`` without centre padding: pre-emphasis 0.97, Hann 800,
    hop 200, dB re 20 dB, scaled to -4..4. Give it the audio from 400 samples before the first
    frame's centre.
    """
    x = np.asarray(audio, np.float32).reshape(-1)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    x = np.append(x[:1], x[1:] - _PREEMPHASIS * x[:-1])
    n = 1 + (len(x) - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic, as librosa
    spec = np.abs(np.fft.rfft(frames, axis=1)).T  # (401, n)
    db = 20 * np.log10(np.maximum(1e-5, mel_basis() @ spec)) - _REF_DB
    scaled = 2 * _MAX_ABS * (db - _MIN_DB) / -_MIN_DB - _MAX_ABS
    return np.clip(scaled, -_MAX_ABS, _MAX_ABS).astype(np.float32)


def mel_window(audio: np.ndarray) -> np.ndarray:
    """The (80, 16) window for a frame, from 16 kHz audio starting 400 samples before it."""
    x = np.zeros(WINDOW_SAMPLES, np.float32)
    a = np.asarray(audio, np.float32)[:WINDOW_SAMPLES]
    x[: len(a)] = a
    return wav2lip_mel(x)[:, :MEL_STEPS]


def to_16k(pcm: np.ndarray, rate: int) -> np.ndarray:
    """int16 or float PCM at ``rate`` as float32 16 kHz (linear interpolation)."""
    x = np.asarray(pcm)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    if rate == SAMPLE_RATE or len(x) == 0:
        return x
    n = max(1, round(len(x) * SAMPLE_RATE / rate))
    return np.interp(np.arange(n) * rate / SAMPLE_RATE, np.arange(len(x)), x).astype(np.float32)


# --- geometry ------------------------------------------------------------------------------------


def face_box(landmarks: np.ndarray, work_size: int, size: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) square around the face in output-frame pixels, inside the frame.

    The output frame is the working image centre-cropped to ``size`` (head sway moves it by
    about 1 %; the box is padded, as Wav2Lip pads its detector's box).
    """
    shift = (work_size - size) / 2
    pts = np.asarray(landmarks, np.float32)[:, :2] - shift
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    side = max(x1 - x0, y1 - y0) * 1.15
    side = min(side, size)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 + 0.04 * side  # Wav2Lip pads the chin side
    bx0 = int(round(np.clip(cx - side / 2, 0, size - side)))
    by0 = int(round(np.clip(cy - side / 2, 0, size - side)))
    s = int(round(side))
    return bx0, by0, min(size, bx0 + s), min(size, by0 + s)


def network_input(crop: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(96, 96, 6) float32: the masked target (lower half blank) and the reference, BGR 0..1."""
    target = cv2.resize(crop, (FACE, FACE), interpolation=cv2.INTER_AREA)[..., ::-1]
    target = target.astype(np.float32) / 255.0
    target[FACE // 2 :] = 0.0
    return np.concatenate([target, reference], axis=2)


@lru_cache(maxsize=8)
def _feather(h: int, w: int) -> np.ndarray:
    """Blend weights for the pasted lower half: 0 at the mouth's upper edge and the sides."""
    ramp_y = np.clip(np.linspace(0, 1, h) / 0.25, 0, 1)
    edge = max(1, w // 8)
    ramp_x = np.clip(np.minimum(np.arange(w), np.arange(w)[::-1]) / edge, 0, 1)
    return (ramp_y[:, None] * ramp_x[None, :])[..., None].astype(np.float32)


def paste_lower(frame: np.ndarray, box: tuple[int, int, int, int], face: np.ndarray) -> np.ndarray:
    """``frame`` with the lower half of the generated ``face`` (96 px, BGR) in ``box``."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if w <= 1 or h <= 1:
        return frame
    big = cv2.resize(np.ascontiguousarray(face[..., ::-1]), (w, h), interpolation=cv2.INTER_LINEAR)
    top = h // 2
    region = frame[y0 + top : y1, x0:x1].astype(np.float32)
    alpha = _feather(h - top, w)
    out = frame.copy()
    out[y0 + top : y1, x0:x1] = (region * (1 - alpha) + big[top:] * alpha).astype(np.uint8)
    return out


# --- the per-session renderer --------------------------------------------------------------------


AudioSource = Callable[[], np.ndarray]  # 16 kHz float audio from 400 samples before the frame


class NeuralFace:
    """Drop-in for :class:`FaceAnimator` (``render(index, shape, speaking, emotion)``).

    ``audio()`` gives the speech from 400 samples before the frame being rendered (zeros in
    silence); ``generate(request)`` returns the generated face for one request (through the
    shared scheduler in a session; directly in tests).
    """

    def __init__(
        self,
        animator: Any,
        generate: Callable[[tuple[np.ndarray, np.ndarray]], np.ndarray],
        audio: AudioSource,
    ) -> None:
        self.animator = animator
        self.avatar = animator.avatar
        self.size = animator.size
        self.fps = animator.fps
        self.generate = generate
        self.audio = audio
        self.box = face_box(animator.avatar.landmarks, animator.avatar.work_size, animator.size)
        self._reference: np.ndarray | None = None

    def reference(self, frame: np.ndarray) -> np.ndarray:
        """The reference channels: the still face of the first frame, BGR 0..1, 96 px."""
        if self._reference is None:
            x0, y0, x1, y1 = self.box
            crop = cv2.resize(frame[y0:y1, x0:x1], (FACE, FACE), interpolation=cv2.INTER_AREA)
            self._reference = crop[..., ::-1].astype(np.float32) / 255.0
        return self._reference

    def request(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The generator's input for ``frame`` (a picture from the default renderer)."""
        x0, y0, x1, y1 = self.box
        face = network_input(frame[y0:y1, x0:x1], self.reference(frame))
        return face, mel_window(self.audio())

    def render(
        self, index: int, shape: Any, speaking: bool = False, emotion: str | None = None
    ) -> np.ndarray:
        """The default frame with the generated lower face pasted in."""
        frame = self.animator.render(index, shape, speaking, emotion)
        if not speaking:
            return frame  # silence: the rig's closed mouth is exact and costs no GPU time
        generated = self.generate(self.request(frame))
        return paste_lower(frame, self.box, generated)


class UtteranceAudio:
    """The audio around the frame being rendered, read from the session's program.

    The session's air loop takes frame ``k``'s audio from the utterance on air before it
    renders frame ``k``; what is left in the utterance is what comes next. The window is the
    previous frame's look-ahead head (frame ``k``'s own audio) followed by that look-ahead.
    Reads only; runs on the session's render thread while the loop waits for the frame.
    """

    def __init__(self, program: Callable[[], Any], sample_rate: int, fps: int) -> None:
        self.program = program
        self.rate = sample_rate
        self.per_frame = sample_rate // fps
        self._head = np.zeros(0, np.float32)
        self._utt: Any = None

    def __call__(self) -> np.ndarray:
        """16 kHz audio from 400 samples before the current frame (zeros where unknown)."""
        prog = self.program()
        utt = prog.playing() if prog is not None else None
        ahead = self._peek(utt, int(WINDOW_SAMPLES * self.rate / SAMPLE_RATE) + self.per_frame)
        if utt is not self._utt:
            self._head = np.zeros(self.per_frame, np.float32)
            self._utt = utt
        window = np.concatenate([self._head, ahead])
        self._head = ahead[: self.per_frame].astype(np.float32)
        lead = np.zeros(N_FFT // 2, np.float32)  # the 400 samples before the frame: unknown
        return np.concatenate([lead, to_16k(window, self.rate)])

    @staticmethod
    def _peek(utt: Any, n: int) -> np.ndarray:
        """Up to ``n`` unplayed samples of ``utt`` as float (-1..1), zero-padded."""
        out = np.zeros(n, np.float32)
        if utt is None or not hasattr(utt, "peek"):
            return out  # a pause (Silence) or nothing on air
        part = utt.peek(n)
        out[: len(part)] = part / 32768.0  # utterances hold int16
        return out


# --- process-wide runtime ------------------------------------------------------------------------


class MouthRuntime:
    """The generator and the batching scheduler shared by every session of the process."""

    def __init__(self, batcher: Callable[[list[Any]], list[np.ndarray]], settings: RenderSettings):
        self.batcher = batcher
        self.scheduler: BatchScheduler[Any, np.ndarray] = BatchScheduler(
            batcher, max_batch=settings.max_batch, max_wait=settings.batch_wait_ms / 1000
        )
        self.timeout = settings.frame_timeout

    def generate(self, request: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """One frame through the shared batch (from a session's render thread)."""
        return self.scheduler.submit_threadsafe(request, self.timeout)


_RUNTIMES: dict[tuple[str, str, int], MouthRuntime] = {}
_LOADING: dict[tuple[str, str, int], asyncio.Lock] = {}


async def shared_runtime(settings: RenderSettings, device: str) -> MouthRuntime:
    """The process's runtime for (checkpoint, device, event loop); loaded on first use.

    The weights load off the event loop, once however many sessions start together; a bad
    checkpoint raises :class:`~anima.render.neural_mouth_net.CheckpointError` here, at session
    start.
    """
    from anima.pipeline import run_blocking
    from anima.render.neural_mouth_net import MouthBatcher, load_generator

    loop = asyncio.get_running_loop()
    key = (str(settings.checkpoint), device, id(loop))
    async with _LOADING.setdefault(key, asyncio.Lock()):  # one load; the others wait for it
        runtime = _RUNTIMES.get(key)
        if runtime is not None and runtime.scheduler.loop is loop:
            return runtime
        net = await run_blocking(load_generator, settings.checkpoint, device)
        runtime = MouthRuntime(MouthBatcher(net, device, half=True), settings)
        runtime.scheduler.bind(loop)
        if len(_RUNTIMES) >= 4:  # bounded: event loops of finished tests or restarts
            old_key = next(iter(_RUNTIMES))
            old = _RUNTIMES.pop(old_key)
            _LOADING.pop(old_key, None)
            if old.scheduler.loop is loop:
                await old.scheduler.aclose()
        _RUNTIMES[key] = runtime
    return runtime


async def close_runtimes() -> None:
    """Stop the batching workers of this event loop's runtimes and let their weights go."""
    loop = asyncio.get_running_loop()
    for key, runtime in list(_RUNTIMES.items()):
        if runtime.scheduler.loop is loop:
            del _RUNTIMES[key]
            _LOADING.pop(key, None)
            await runtime.scheduler.aclose()


def neural_device(settings: RenderSettings) -> str | None:
    """The torch device for the neural renderer, or None to keep the default renderer.

    ``cpu`` (or ``auto`` without a usable CUDA torch) is None, logged once per process;
    ``cuda`` asked for without one is a :class:`~anima.device.DeviceError`.
    """
    global _fallback_logged
    from anima.device import resolve_device

    if settings.backend != "wav2lip":
        return None
    dev = resolve_device(settings.device, "torch", what="neural mouth renderer")
    if dev.cuda:
        return str(dev)
    if not _fallback_logged:
        _fallback_logged = True
        log.warning(
            "render.backend = 'wav2lip' resolves to the CPU (device %r): using the default "
            "renderer (the neural mouth needs CUDA and anima[gpu])",
            settings.device,
        )
    return None


async def session_face(
    animator: Any, settings: RenderSettings, program: Callable[[], Any], sample_rate: int
) -> Any:
    """What a session renders with: ``animator``, or a :class:`NeuralFace` over it on CUDA."""
    from anima.pipeline import run_blocking

    # The first call imports torch and initialises CUDA (seconds): not on the event loop.
    device = await run_blocking(neural_device, settings)
    if device is None:
        return animator
    runtime = await shared_runtime(settings, device)
    audio = UtteranceAudio(program, sample_rate, animator.fps)
    return NeuralFace(animator, runtime.generate, audio)
