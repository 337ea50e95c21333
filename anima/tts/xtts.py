"""Coqui XTTS v2 through ``coqui-tts`` (the ``xtts`` extra): a cloned voice, streamed, on CUDA.

Selected with ``voice.backend = "xtts"``; ``voice.model`` is a local XTTS model folder
(``config.json``, ``model.pth``, ``vocab.json``, ``speakers_xtts.pth`` as Coqui publishes it;
nothing is downloaded) and ``voice.reference_wav`` the 3-30 s clip whose voice is cloned. The
``TTS`` package and torch are imported only when this voice is built, never at module load:
the CPU install has neither (and coqui's torchaudio cannot even import on a CPU-only machine).

Synthesis streams: :meth:`XttsVoice.synthesize` yields a :class:`SpeechChunk` for each piece
``Xtts.inference_stream`` produces (about 20 GPT tokens of audio), so the first audio comes
long before the sentence is done. XTTS gives no phoneme timings: chunks carry none and set
nothing the phoneme lip-sync could use, so the session drives the mouth with the audio network
(:class:`anima.lipsync.neural.NeuralLipSync`, as ``anima say --audio`` does);
:attr:`XttsVoice.phoneme_timings` is False to say so.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from anima.frames import SpeechChunk
from anima.tts import VoiceError

log = logging.getLogger(__name__)

INSTALL = "pip install 'anima[xtts]'"
_NEEDED = ("config.json", "model.pth", "vocab.json")


def check_model_dir(model: Path | None) -> Path:
    """The XTTS model folder, checked; VoiceError says what is missing."""
    if model is None:
        raise VoiceError(
            "voice.backend = 'xtts' needs voice.model: a local XTTS v2 model folder "
            "(config.json, model.pth, vocab.json); nothing is downloaded"
        )
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise VoiceError(f"XTTS model folder not found: {folder}")
    missing = [f for f in _NEEDED if not (folder / f).is_file()]
    if missing:
        raise VoiceError(f"{folder} is not an XTTS model folder (missing {', '.join(missing)})")
    return folder


def check_reference(reference_wav: Path | None) -> Path:
    """The clip to clone, checked to exist; VoiceError otherwise."""
    if reference_wav is None:
        raise VoiceError("voice.backend = 'xtts' needs voice.reference_wav (3-30 s of speech)")
    path = Path(reference_wav).expanduser()
    if not path.is_file():
        raise VoiceError(f"reference clip not found: {path}")
    return path


def require_coqui() -> None:
    """Raise VoiceError with the install line when ``coqui-tts`` (package ``TTS``) is absent."""
    if importlib.util.find_spec("TTS") is None:
        raise VoiceError(f"the xtts voice needs Coqui TTS, which is not installed: {INSTALL}")


class XttsVoice:
    """A Voice (same interface as the Piper voice) speaking with XTTS in a cloned voice."""

    phoneme_timings = False  # the session lip-syncs this voice from its audio

    def __init__(
        self,
        model: Path | None = None,
        reference_wav: Path | None = None,
        language: str = "en",
        device: str | None = None,
        length_scale: float = 1.0,
        sentence_silence: float = 0.15,
        stream_chunk_size: int = 20,
        engine: Any = None,
    ) -> None:
        """Load XTTS from ``model`` on ``device`` and compute the speaker latents once.

        ``engine`` is an already loaded ``Xtts`` model (tests and sharing); when given, nothing
        is imported and ``model`` is not read.
        """
        self.language = language
        self._speed = 1.0 / length_scale
        self._chunk = stream_chunk_size
        if engine is None:
            require_coqui()
        reference = check_reference(reference_wav)
        if engine is None:
            folder = check_model_dir(model)
            from anima.device import resolve_device

            dev = resolve_device(device, "torch", what="XTTS voice")
            engine = _load(folder, str(dev))
        self._model = engine
        self.sample_rate: int = int(
            getattr(getattr(engine.config, "audio", None), "output_sample_rate", 24_000)
        )
        self._pause = int(sentence_silence * self.sample_rate)
        try:
            self._latent, self._speaker = engine.get_conditioning_latents(
                audio_path=[str(reference)]
            )
        except Exception as exc:  # a corrupt or silent clip: say which
            raise VoiceError(f"cannot clone the voice in {reference}: {exc}") from exc

    def synthesize(self, text: str, turn: int = 0) -> Iterator[SpeechChunk]:
        """Speak ``text``, yielding a chunk per streamed piece (the last ends with the pause)."""
        from anima.tts.piper_voice import split_sentences

        for sentence in split_sentences(text):
            stream = self._model.inference_stream(
                sentence,
                self.language,
                self._latent,
                self._speaker,
                stream_chunk_size=self._chunk,
                speed=self._speed,
                enable_text_splitting=False,
            )
            pending: np.ndarray | None = None
            for piece in stream:
                pcm = _int16(piece)
                if pending is not None and len(pending):
                    yield SpeechChunk(
                        turn=turn, pcm=pending, sample_rate=self.sample_rate, text=sentence
                    )
                pending = pcm
            tail = np.zeros(self._pause, np.int16)
            last = tail if pending is None else np.concatenate([pending, tail])
            if len(last):
                yield SpeechChunk(turn=turn, pcm=last, sample_rate=self.sample_rate, text=sentence)


def _int16(piece: Any) -> np.ndarray:
    """A float waveform (torch tensor or array, -1..1) as int16 PCM."""
    if hasattr(piece, "detach"):
        piece = piece.detach().float().cpu().numpy()
    wav = np.asarray(piece, np.float32).reshape(-1)
    return (np.clip(wav, -1.0, 1.0) * 32767).astype(np.int16)


def _load(folder: Path, device: str) -> Any:  # pragma: no cover - needs coqui-tts (GPU extra)
    """XTTS from a local folder, moved to ``device``."""
    try:
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    except Exception as exc:  # coqui's torchaudio fails to import on CPU-only machines
        raise VoiceError(f"Coqui TTS is installed but does not import ({exc}); {INSTALL}") from exc
    config = XttsConfig()
    config.load_json(str(folder / "config.json"))
    model = Xtts.init_from_config(config)
    model.load_checkpoint(config, checkpoint_dir=str(folder), use_deepspeed=False)
    model.to(device)
    model.eval()
    log.info("XTTS loaded from %s on %s", folder, device)
    return model
