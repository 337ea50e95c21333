"""Voices: text -> PCM with per-phoneme timings, one chunk per sentence.

The core is synchronous (:class:`Voice`); :class:`anima.tts.stage.SpeechStage` runs it off
the event loop inside a pipeline.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

from anima.frames import SpeechChunk

if TYPE_CHECKING:
    from anima.config import VoiceSettings


class VoiceError(RuntimeError):
    """The voice cannot be loaded or cannot speak this text."""


class Voice(Protocol):
    """A text-to-speech voice."""

    sample_rate: int

    def synthesize(self, text: str, turn: int = 0) -> Iterator[SpeechChunk]:
        """Speak ``text``, yielding one chunk per sentence as soon as it is ready.

        Every chunk carries phoneme timings that cover its audio from start to end.
        """
        ...


def speak(
    voice: Voice, text: str, turn: int = 0, emotion: str = "neutral"
) -> Iterator[SpeechChunk]:
    """``voice.synthesize`` with the emotion, for voices that take one; chunks carry it.

    Voices without an ``emotion`` parameter speak neutrally; their chunks are still marked with
    the emotion so the face follows it.
    """
    if emotion != "neutral" and "emotion" in inspect.signature(voice.synthesize).parameters:
        yield from voice.synthesize(text, turn, emotion=emotion)  # type: ignore[call-arg]
        return
    for chunk in voice.synthesize(text, turn):
        yield chunk if chunk.emotion == emotion else replace(chunk, emotion=emotion)


def load_voice(backend: str = "piper", **options: object) -> Voice:
    """The voice backend named ``backend``; options go to its constructor.

    ``xtts`` (Coqui, the ``xtts`` extra) is imported only here, when it is asked for.
    ``espeak`` is the espeak-ng voice of the language pack ``language`` (the free Mandarin
    default); ``auto`` holds each language's voice and picks one per sentence.
    """
    if backend == "espeak":
        from anima.tts.espeak_voice import EspeakVoice

        return EspeakVoice(
            language=str(options.get("language") or "zh"),
            length_scale=float(options.get("length_scale", 1.0)),  # type: ignore[arg-type]
            sentence_silence=float(options.get("sentence_silence", 0.15)),  # type: ignore[arg-type]
        )
    if backend == "zh-baker":
        from anima.tts.baker_voice import BakerVoice

        return BakerVoice(
            length_scale=float(options.get("length_scale", 1.0)),  # type: ignore[arg-type]
            sentence_silence=float(options.get("sentence_silence", 0.15)),  # type: ignore[arg-type]
        )
    if backend == "auto":
        from anima.lang import get_pack, members
        from anima.tts.auto_voice import AutoVoice

        voices: dict[str, Voice] = {}
        for pack in members(get_pack("auto")):
            own = pack.settings.get("voice", {})
            voices[pack.code] = load_voice(
                own.get("backend", "piper"),
                **{**options, "language": own.get("language", pack.code)},
            )
        return AutoVoice(voices)
    if backend == "piper":
        from anima.tts.piper_voice import PiperTTS

        for key in ("reference_wav", "language"):  # XTTS-only settings
            options.pop(key, None)
        return PiperTTS(**options)  # type: ignore[arg-type]
    if backend == "xtts":
        from anima.tts.xtts import XttsVoice

        options.pop("variation", None)  # XTTS samples its own way (temperature)
        return XttsVoice(**options)  # type: ignore[arg-type]
    raise VoiceError(
        f"unknown voice backend {backend!r}; available: piper, espeak, zh-baker, auto, xtts"
    )


def voice_from_settings(voice: VoiceSettings) -> Voice:
    """The voice ``settings.voice`` describes (backend, model, device, pace, clone clip)."""
    return load_voice(
        voice.backend,
        model=voice.model,
        length_scale=voice.length_scale,
        sentence_silence=voice.sentence_silence,
        device=voice.device,
        reference_wav=voice.reference_wav,
        language=voice.language,
        variation=voice.variation,
    )
