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
        seed: int | None = None,
    ) -> None:
        try:
            from piper import SynthesisConfig
        except ImportError as exc:  # pragma: no cover - part of the base install
            raise VoiceError("Piper is not installed: pip install piper-tts") from exc
        from anima.device import resolve_device

        dev = resolve_device(device, "onnxruntime", what="Piper voice")
        self.device = str(dev)
        onnx_path, config_path = piper_voice(model)
        self._voice = _load(onnx_path, config_path, dev.index if dev.cuda else None, seed)
        if len(self._voice.session.get_outputs()) < 2:
            raise VoiceError(
                "Piper loaded without phoneme alignments (the onnx package failed to patch the "
                "voice); install onnx<1.18 with protobuf<5 as pinned in pyproject.toml"
            )
        if not 0.0 <= variation <= 2.0:
            raise VoiceError(f"voice variation must be within 0..2, got {variation}")
        # Piper draws random noise on every call; its scales times ``variation`` set how much.
        # At 0 the same text gives the same samples every time (tests assert what was heard);
        # with a ``seed`` a varied voice repeats the same sequence of renditions.
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
        parts, timings, offset = _trim_lead(parts, timings, offset, self.sample_rate)
        if pause and parts:
            parts.append(np.zeros(pause, dtype=np.int16))
            timings.append(
                PhonemeTiming("_", offset / self.sample_rate, (offset + pause) / self.sample_rate)
            )
        pcm = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        return pcm, timings


# Piper starts every sentence with 35-70 ms of near silence (its "^" phoneme): dead time before
# the first sound a visitor hears. Cut to LEAD_KEEP before the first sample above LEAD_LEVEL.
LEAD_LEVEL = 200  # |sample| of int16, about -44 dBFS
LEAD_KEEP = 0.008  # seconds of onset kept, so the first consonant is not clipped


def _trim_lead(
    parts: list[np.ndarray], timings: list[PhonemeTiming], length: int, rate: int
) -> tuple[list[np.ndarray], list[PhonemeTiming], int]:
    """``parts`` without their leading near-silence; ``timings`` moved to match."""
    if not parts:
        return parts, timings, length
    pcm = np.concatenate(parts)
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > LEAD_LEVEL)
    cut = max(0, int(loud[0]) - int(LEAD_KEEP * rate)) if len(loud) else 0
    if cut == 0:
        return parts, timings, length
    shift = cut / rate
    moved = [
        PhonemeTiming(t.phoneme, max(0.0, t.start - shift), t.end - shift)
        for t in timings
        if t.end - shift > 0
    ]
    return [pcm[cut:]], moved, length - cut


# Piper's onnxruntime threads. Measured on 2 cores, a 4-word first phrase: with the default
# session (2 spinning threads) 121 ms idle and 215 ms (max 383) with one core kept busy by
# another process; with 2 threads that sleep instead of spinning 108 ms and 175 ms (max 209):
# spinning threads fight the other work of a session for the cores (issue 22).
CPU_THREADS = 2


def cpu_options() -> object:
    """onnxruntime session options for Piper on the CPU: few threads, none spinning."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = CPU_THREADS
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _load(onnx_path: Path, config_path: Path, cuda: int | None, seed: int | None) -> object:
    """A Piper voice whose graph is patched in memory to output phoneme durations.

    Made here rather than by ``PiperVoice.load``, which neither takes session options (the
    CPU threads above) nor picks a GPU nor keeps a CPU fallback. With ``seed`` the session's
    noise kernels start from it: onnxruntime seeds each random op when the session is built.
    """
    import json

    import onnxruntime
    from piper import PiperConfig, PiperVoice

    try:
        import onnx
        from piper.patch_voice_with_alignment import add_alignment_output
    except ImportError as exc:
        raise VoiceError(
            f"cannot patch the Piper voice for phoneme alignments ({exc}); install onnx<1.18 "
            "with protobuf<5 as pinned in pyproject.toml"
        ) from exc
    graph = onnx.load(str(onnx_path))
    try:
        add_alignment_output(graph)
    except ValueError:  # already patched on disk
        pass
    data = graph.SerializeToString()
    if seed is not None:
        onnxruntime.set_seed(seed)
    if cuda is None:
        session = onnxruntime.InferenceSession(
            data, sess_options=cpu_options(), providers=["CPUExecutionProvider"]
        )
    else:  # pragma: no cover - GPU
        session = onnxruntime.InferenceSession(data, providers=cuda_providers(cuda))
        if session.get_providers()[0] != "CUDAExecutionProvider":
            raise VoiceError(f"onnxruntime could not open CUDA device {cuda} for the Piper voice")
    config = PiperConfig.from_dict(json.loads(Path(config_path).read_text(encoding="utf-8")))
    return PiperVoice(session=session, config=config)


def cuda_providers(index: int) -> list[str | tuple[str, dict[str, object]]]:
    """onnxruntime providers for GPU ``index``: CUDA first, the CPU for any op CUDA lacks."""
    return [
        ("CUDAExecutionProvider", {"device_id": index, "cudnn_conv_algo_search": "HEURISTIC"}),
        "CPUExecutionProvider",
    ]
