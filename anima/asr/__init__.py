"""Listening: voice activity (Silero VAD), endpointing, streaming Whisper ASR and barge-in.

The cores are synchronous and work on numpy arrays: :class:`~anima.asr.vad.VadStream`,
:class:`~anima.asr.segmenter.Segmenter`, :class:`~anima.asr.bargein.EchoGuard`,
:class:`~anima.asr.whisper.WhisperRecognizer`. :class:`~anima.asr.listener.Listener` is the
thin async layer (decodes in the executor), and :class:`~anima.asr.stage.ListenStage` puts it
in a pipeline. Build them from the settings with :func:`load_recognizer` and
:func:`listener_config`.
"""

from __future__ import annotations

from pathlib import Path

from anima.asr.audio import AudioError
from anima.asr.endpoint import EndpointPolicy
from anima.asr.listener import (
    BargeInEvent,
    Final,
    Listener,
    ListenerConfig,
    ListenEvent,
    Partial,
    Recognizer,
    SpeechEnd,
    SpeechStart,
    UtteranceMetrics,
)
from anima.asr.segmenter import SegmenterConfig
from anima.asr.whisper import Recognition, WhisperOptions, WhisperRecognizer
from anima.config import ListenSettings

__all__ = [
    "AudioError",
    "BargeInEvent",
    "Final",
    "ListenEvent",
    "Listener",
    "ListenerConfig",
    "Partial",
    "Recognition",
    "Recognizer",
    "SpeechEnd",
    "SpeechStart",
    "UtteranceMetrics",
    "WhisperRecognizer",
    "listener_config",
    "load_recognizer",
]


def load_recognizer(listen: ListenSettings, data_dir: Path) -> WhisperRecognizer:
    """The shared Whisper recogniser for ``settings.listen`` (loaded once per process)."""
    from anima.asr.models import resolve_model
    from anima.asr.whisper import shared_recognizer

    s = listen
    options = WhisperOptions(
        language=s.language,
        languages=tuple(s.languages),
        beam_size=s.beam_size,
        encoder_window=s.encoder_window,
        initial_prompt=s.initial_prompt,
        hotwords=s.hotwords,
    )
    return shared_recognizer(
        resolve_model(s.model, data_dir),
        device=s.device,
        compute_type=s.compute_type,
        cpu_threads=s.cpu_threads,
        options=options,
    )


def listener_config(listen: ListenSettings, language: str = "en") -> ListenerConfig:
    """Listener options from ``settings.listen``; ``language`` (a pack code or ``auto``) adds
    its endpoint words."""
    from anima.lang import get_pack, members

    s = listen
    packs = members(get_pack(language))
    policy = EndpointPolicy(
        silence=s.silence,
        complete=s.silence_complete,
        incomplete=s.silence_incomplete,
        complete_endings=tuple(w for p in packs for w in p.complete_endings),
        incomplete_endings=tuple(w for p in packs for w in p.incomplete_endings),
    )
    segmenter = SegmenterConfig(
        threshold=s.vad_threshold,
        min_speech=s.min_speech,
        preroll=s.preroll,
        max_utterance=s.max_utterance,
        partial_interval=s.partial_interval,
        policy=policy,
    )
    return ListenerConfig(
        segmenter=segmenter,
        speculative=s.speculative,
        duplex=s.duplex,
        barge_in=s.barge_in,
        echo_threshold=s.echo_threshold,
        echo_max_lag=s.echo_max_lag,
        decode_timeout=s.decode_timeout,
    )
