"""The recogniser: faster-whisper's CTranslate2 Whisper, called directly for short utterances.

Why not ``WhisperModel.transcribe``: it always runs the encoder on a 30 s window (padding a
2.5 s utterance with 27.5 s of nothing), which is ~80 % of the time for tiny.en on a CPU, and it
adds timestamp decoding and temperature fallbacks a live utterance does not need. Here the
encoder sees only ``encoder_window`` seconds (at least the utterance plus 1 s), which Whisper
tolerates with one failure mode: near the end it may start the sentence again ("Hello? Hello?
Hello?"). We cut such a repeated tail, and when decoding runs away to the token limit we decode
again on the full 30 s window. ``encoder_window=30`` gives stock Whisper behaviour.

One model is loaded per (path, device, compute type, threads) and shared by all sessions;
:meth:`WhisperRecognizer.transcribe` holds a lock, since two decodes at once on a 2-core CPU
only make both late.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anima.lang import clean_transcript, initial_prompt

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
FULL_WINDOW = 30.0  # seconds Whisper was trained on
_FRAMES_PER_SECOND = 100  # mel frames (hop of 10 ms)
_WORD = re.compile(r"[\w']+")


@dataclass(frozen=True)
class Recognition:
    """One decode: text, language, audio length and the compute time it took."""

    text: str
    language: str
    audio_seconds: float
    compute_seconds: float
    no_speech_prob: float = 0.0
    full_window: bool = False


@dataclass(frozen=True)
class WhisperOptions:
    """How to decode; see :class:`anima.config.ListenSettings` for the meaning of each."""

    language: str | None = None
    languages: tuple[str, ...] = ()  # identification picks among these (empty: any)
    beam_size: int = 1
    encoder_window: float = 10.0
    initial_prompt: str = ""
    hotwords: str = ""


class WhisperRecognizer:
    """Whisper on short 16 kHz utterances; thread-safe, one decode at a time."""

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str | None = "cpu",
        compute_type: str | None = "int8",
        cpu_threads: int = 2,
        options: WhisperOptions | None = None,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        from anima.asr.models import compute_type_for
        from anima.device import resolve_device

        self.options = options or WhisperOptions()
        dev = resolve_device(device, "ctranslate2", what="speech recogniser")
        self.device = str(dev)
        self.compute_type = compute_type_for(self.device, compute_type)
        try:
            self._whisper = WhisperModel(
                str(model_dir),
                device=dev.kind,
                device_index=dev.index,
                compute_type=self.compute_type,
                cpu_threads=cpu_threads,
            )
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"cannot load Whisper model {model_dir}: {exc}") from exc
        self.multilingual: bool = self._whisper.model.is_multilingual
        if not self.multilingual and self.options.language not in (None, "en"):
            raise ValueError(
                f"the model in {model_dir} is English-only; language "
                f"{self.options.language!r} needs a multilingual model (listen.model = 'base')"
            )
        self._tokenizer_cls = Tokenizer
        self._lock = threading.Lock()
        self.model_dir = Path(model_dir)

    # -- public ----------------------------------------------------------------------------

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> Recognition:
        """Text of a 16 kHz float32 utterance (≤ 30 s). ``prompt``: extra context for this call."""
        if audio.ndim != 1 or audio.dtype != np.float32:
            raise ValueError("Whisper wants 1-D float32 audio at 16 kHz")
        audio = audio[: int(FULL_WINDOW * SAMPLE_RATE)]
        with self._lock:
            started = time.perf_counter()
            rec = self._decode(audio, prompt, full=self.options.encoder_window >= FULL_WINDOW)
            elapsed = time.perf_counter() - started
        return Recognition(
            rec.text,
            rec.language,
            len(audio) / SAMPLE_RATE,
            elapsed,
            rec.no_speech_prob,
            rec.full_window,
        )

    # -- internals -------------------------------------------------------------------------

    def _encode(self, features: np.ndarray, frames: int):  # noqa: ANN202 - ctranslate2 type
        import ctranslate2

        n = features.shape[-1]
        padded = np.zeros((features.shape[0], frames), np.float32)
        padded[:, : min(n, frames)] = features[:, :frames]
        return self._whisper.model.encode(
            ctranslate2.StorageView.from_array(padded[None]), to_cpu=False
        )

    def _decode(self, audio: np.ndarray, prompt: str, full: bool) -> Recognition:
        features = self._whisper.feature_extractor(audio)
        n = features.shape[-1]
        full_frames = int(FULL_WINDOW * _FRAMES_PER_SECOND)
        frames = full_frames
        if not full:
            frames = min(
                full_frames,
                max(int(self.options.encoder_window * _FRAMES_PER_SECOND), n + _FRAMES_PER_SECOND),
            )
        encoded = self._encode(features, frames)
        language = self.options.language or ("en" if not self.multilingual else "")
        if not language:
            language = self._identify(encoded)
        tokenizer = self._tokenizer_cls(
            self._whisper.hf_tokenizer, self.multilingual, task="transcribe", language=language
        )
        tokens = self._prompt(tokenizer, prompt)
        seconds = len(audio) / SAMPLE_RATE
        # Speech rarely exceeds ~7 tokens/s; a cap proportional to the audio stops loops early.
        max_new = int(16 + 8 * seconds)
        result = self._whisper.model.generate(
            encoded,
            [tokens],
            beam_size=self.options.beam_size,
            # CTranslate2 counts the prompt in max_length (a Chinese initial prompt is ~25
            # tokens: without this the answer was cut to a word, or to nothing).
            max_length=min(448, len(tokens) + max_new),
            suppress_blank=True,
            suppress_tokens=[-1],
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        runaway = len(result.sequences_ids[0]) >= max_new - 1
        if runaway and not full:
            log.debug("decode ran to the token cap on a short window; retrying on 30 s")
            return self._decode(audio, prompt, full=True)
        # The language pack's house style: Chinese is always simplified (Whisper often writes
        # traditional characters for Mandarin).
        # A decode cut inside a multi-byte character leaves U+FFFD: never show it.
        text = tokenizer.decode(ids).replace("\ufffd", "").strip()
        text = clean_transcript(trim_repeats(text), language)
        if result.no_speech_prob > 0.6 and result.scores and result.scores[0] < -1.0:
            text = ""  # Whisper's own rule: likely no speech and a low-confidence guess
        return Recognition(text, language, seconds, 0.0, float(result.no_speech_prob), full)

    def _identify(self, encoded) -> str:  # noqa: ANN001 - ctranslate2 type
        """The most probable language, among ``options.languages`` when those are given."""
        detected = self._whisper.model.detect_language(encoded)[0]  # [(token, prob)], best first
        allowed = self.options.languages
        for token, _ in detected:
            code = token[2:-2]
            if not allowed or code in allowed:
                return code
        return allowed[0] if allowed else "en"

    def _prompt(self, tokenizer, prompt: str) -> list[int]:  # noqa: ANN001
        # No prompt configured (``auto``): the identified language's own, e.g. the Chinese one
        # that asks for simplified characters.
        initial = self.options.initial_prompt or (
            initial_prompt(tokenizer.language_code) if self.options.language is None else ""
        )
        context = " ".join(p.strip() for p in (self.options.hotwords, initial, prompt) if p)
        tokens: list[int] = []
        if context:
            tokens = [tokenizer.sot_prev, *tokenizer.encode(" " + context)[-200:]]
        return [*tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps]


def trim_repeats(text: str) -> str:
    """Cut a tail that starts the utterance over again (a short-window Whisper failure).

    "Yes, that is right. Yes, that" -> "Yes, that is right."; a single repeated word ("no no")
    is kept, since people do say that.
    """
    words = [(m.group(0).lower(), m.start()) for m in _WORD.finditer(text)]
    n = len(words)
    for i in range(1, n - 1):  # the repeated tail must be two words or more
        tail = n - i
        if all(words[i + k][0] == words[k % i][0] for k in range(tail)):
            return text[: words[i][1]].rstrip(" ,")
    return text


_CACHE: dict[tuple[str, str | None, str | None, int, WhisperOptions], WhisperRecognizer] = {}
_CACHE_LOCK = threading.Lock()


def shared_recognizer(
    model_dir: Path,
    *,
    device: str | None = "cpu",
    compute_type: str | None = "int8",
    cpu_threads: int = 2,
    options: WhisperOptions | None = None,
) -> WhisperRecognizer:
    """One recogniser per model and settings for the whole process (models are ~75-150 MB)."""
    options = options or WhisperOptions()
    key = (str(Path(model_dir).resolve()), device, compute_type, cpu_threads, options)
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = WhisperRecognizer(
                model_dir,
                device=device,
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                options=options,
            )
        return _CACHE[key]
