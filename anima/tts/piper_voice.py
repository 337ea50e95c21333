"""The embedded neural voice: Piper (VITS, onnxruntime) with phoneme/audio alignments.

Piper exposes per-phoneme sample counts only when its ONNX graph is patched to output the
duration tensor; that patch needs the ``onnx`` package, and with an onnx/protobuf pair that
does not import, Piper silently returns no alignments. We check the patched graph at load and
refuse to run without timings, since lip-sync depends on them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anima.expression import check_emotion, voice_style
from anima.frames import PhonemeTiming, SpeechChunk
from anima.models import piper_voice
from anima.tts import VoiceError

if TYPE_CHECKING:
    from piper import SynthesisConfig

log = logging.getLogger(__name__)

# Split after sentence punctuation (Latin and CJK) followed by space or end; the dialogue
# chunker does the careful work upstream, this only keeps chunks sentence-sized.
_SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s+|(?<=[。！？；])")


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, stripped, empty ones dropped."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


class PiperTTS:
    """A Piper voice yielding int16 PCM plus per-phoneme timings, one chunk per sentence."""

    def __init__(
        self,
        model: Path | None = None,
        length_scale: float = 1.0,
        sentence_silence: float = 0.15,
        device: str | None = None,
        variation: float = 1.0,
    ) -> None:
        try:
            from piper import PiperVoice, SynthesisConfig
        except ImportError as exc:  # pragma: no cover - part of the base install
            raise VoiceError("Piper is not installed: pip install piper-tts") from exc
        from anima.device import resolve_device

        dev = resolve_device(device, "onnxruntime", what="Piper voice")
        self.device = str(dev)
        onnx_path, config_path = piper_voice(model)
        self._voice = PiperVoice.load(onnx_path, config_path=config_path, include_alignments=True)
        if dev.cuda:
            self._voice = _on_cuda(self._voice, onnx_path, dev.index)
        if len(self._voice.session.get_outputs()) < 2:
            raise VoiceError(
                "Piper loaded without phoneme alignments (the onnx package failed to patch the "
                "voice); install onnx<1.18 with protobuf<5 as pinned in pyproject.toml"
            )
        if not 0.0 <= variation <= 2.0:
            raise VoiceError(f"voice variation must be within 0..2, got {variation}")
        # Piper draws random noise on every call; its scales times ``variation`` set how much.
        # At 0 the same text gives the same samples every time (tests assert what was heard).
        self.variation = variation
        self._config = SynthesisConfig(
            length_scale=length_scale,
            noise_scale=self._voice.config.noise_scale * variation,
            noise_w_scale=self._voice.config.noise_w_scale * variation,
        )
        self._length_scale = length_scale
        self.sample_rate: int = int(self._voice.config.sample_rate)
        self._pause = int(sentence_silence * self.sample_rate)

    def synthesis_config(self, emotion: str = "neutral") -> SynthesisConfig:
        """Piper's settings for ``emotion``: the voice's length scale times the emotion's."""
        from piper import SynthesisConfig

        if emotion == "neutral":
            return self._config
        style = voice_style(emotion)
        return SynthesisConfig(
            length_scale=self._length_scale * style.length,
            noise_scale=style.noise * self.variation,
            noise_w_scale=style.noise_w * self.variation,
        )

    def synthesize(
        self, text: str, turn: int = 0, emotion: str = "neutral"
    ) -> Iterator[SpeechChunk]:
        """Speak ``text`` sentence by sentence; each chunk ends with the sentence pause.

        ``emotion`` (one of :data:`~anima.frames.EMOTIONS`) sets pace, voice variation and the
        pause length (see :mod:`anima.expression`); chunks carry it on for the face.
        """
        check_emotion(emotion)
        config = self.synthesis_config(emotion)
        pause = int(self._pause * voice_style(emotion).pause)
        for sentence in split_sentences(text):
            pcm, timings = self._speak(sentence, config, pause)
            if len(pcm):
                yield SpeechChunk(
                    turn=turn,
                    pcm=pcm,
                    sample_rate=self.sample_rate,
                    text=sentence,
                    phonemes=tuple(timings),
                    emotion=emotion,
                )

    def _speak(
        self, sentence: str, config: SynthesisConfig, pause: int
    ) -> tuple[np.ndarray, list[PhonemeTiming]]:
        parts: list[np.ndarray] = []
        timings: list[PhonemeTiming] = []
        offset = 0
        for chunk in self._voice.synthesize(sentence, config, include_alignments=True):
            audio = chunk.audio_int16_array
            if chunk.phoneme_alignments is None:
                raise VoiceError(f"Piper returned no phoneme alignments for {sentence!r}")
            pos = offset
            for align in chunk.phoneme_alignments:
                n = int(align.num_samples)
                timings.append(
                    PhonemeTiming(
                        align.phoneme, pos / self.sample_rate, (pos + n) / self.sample_rate
                    )
                )
                pos += n
            # Alignments are frame-quantised; stretch the last one so timings end with the audio.
            end = offset + len(audio)
            if timings and pos != end:
                last = timings[-1]
                timings[-1] = PhonemeTiming(last.phoneme, last.start, end / self.sample_rate)
            parts.append(audio)
            offset = end
        if pause and parts:
            parts.append(np.zeros(pause, dtype=np.int16))
            timings.append(
                PhonemeTiming("_", offset / self.sample_rate, (offset + pause) / self.sample_rate)
            )
        pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return pcm, timings


def cuda_providers(index: int) -> list[str | tuple[str, dict[str, object]]]:
    """onnxruntime providers for GPU ``index``: CUDA first, the CPU for any op CUDA lacks."""
    return [
        ("CUDAExecutionProvider", {"device_id": index, "cudnn_conv_algo_search": "HEURISTIC"}),
        "CPUExecutionProvider",
    ]


def _on_cuda(voice: object, onnx_path: Path, index: int) -> object:  # pragma: no cover - GPU
    """``voice`` with its session rebuilt on CUDA device ``index`` (alignments patched in).

    Piper's own ``use_cuda`` neither picks the device nor keeps a CPU fallback, so the
    session is made here from the same in-memory patched graph.
    """
    import dataclasses

    import onnx
    import onnxruntime
    from piper.patch_voice_with_alignment import add_alignment_output

    graph = onnx.load(str(onnx_path))
    try:
        add_alignment_output(graph)
    except ValueError:  # already patched on disk
        pass
    session = onnxruntime.InferenceSession(
        graph.SerializeToString(), providers=cuda_providers(index)
    )
    if session.get_providers()[0] != "CUDAExecutionProvider":
        raise VoiceError(f"onnxruntime could not open CUDA device {index} for the Piper voice")
    return dataclasses.replace(voice, session=session)  # type: ignore[type-var]
