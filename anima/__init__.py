"""anima: a real-time digital human — it listens, thinks, speaks and moves its lips, offline.

The public API is small; everything else is internal and may change.

The streaming SDK::

    import anima

    async with anima.Engine.from_config() as engine:        # the embedded default, offline
        session = engine.session(media="video")              # no avatar: the sample portrait
        await session.start()                                 # idle face streams, greeting
        await session.say("Welcome")
        session.push_audio(pcm, 16000)                        # the microphone
        async for item in session.frames():                   # VideoFrame, AudioFrame, events
            ...

One file, no streaming:

>>> import asyncio, anima
>>> avatar = anima.prepare_avatar(anima.sample_portrait(), "guide")   # doctest: +SKIP
>>> voice = anima.load_voice()                                         # doctest: +SKIP
>>> asyncio.run(anima.say_to_file("Hello!", avatar, Path("hi.mp4"), voice, anima.Settings()))  # doctest: +SKIP

Names are imported on first use, so ``import anima`` loads no model, OpenCV or ONNX runtime.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> module that defines it (imported lazily by __getattr__)
_EXPORTS = {
    "Settings": "anima.config",
    "Engine": "anima.engine",
    "EngineBusy": "anima.engine",
    "Session": "anima.engine",
    "SessionClosed": "anima.engine",
    "ErrorEvent": "anima.events",
    "Event": "anima.events",
    "FaceParams": "anima.events",
    "HandoffEvent": "anima.events",
    "Interrupted": "anima.events",
    "StateChanged": "anima.events",
    "Subtitle": "anima.events",
    "TranscriptEvent": "anima.events",
    "TurnLatency": "anima.events",
    "AudioFrame": "anima.frames",
    "VideoFrame": "anima.frames",
    "Avatar": "anima.render.avatar",
    "AvatarError": "anima.render.avatar",
    "AvatarStore": "anima.render.avatar",
    "prepare_avatar": "anima.render.avatar",
    "read_photo": "anima.render.avatar",
    "sample_portrait": "anima.render.avatar",
    "SayResult": "anima.render_job",
    "say_to_file": "anima.render_job",
    "Voice": "anima.tts",
    "VoiceError": "anima.tts",
    "load_voice": "anima.tts",
}

__all__ = [
    "AudioFrame",
    "Avatar",
    "AvatarError",
    "AvatarStore",
    "Engine",
    "EngineBusy",
    "ErrorEvent",
    "Event",
    "FaceParams",
    "HandoffEvent",
    "Interrupted",
    "SayResult",
    "Session",
    "SessionClosed",
    "Settings",
    "StateChanged",
    "Subtitle",
    "TranscriptEvent",
    "TurnLatency",
    "VideoFrame",
    "Voice",
    "VoiceError",
    "load_voice",
    "prepare_avatar",
    "read_photo",
    "sample_portrait",
    "say_to_file",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from anima.config import Settings
    from anima.engine import Engine, EngineBusy, Session, SessionClosed
    from anima.events import (
        ErrorEvent,
        Event,
        FaceParams,
        HandoffEvent,
        Interrupted,
        StateChanged,
        Subtitle,
        TranscriptEvent,
        TurnLatency,
    )
    from anima.frames import AudioFrame, VideoFrame
    from anima.render.avatar import (
        Avatar,
        AvatarError,
        AvatarStore,
        prepare_avatar,
        read_photo,
        sample_portrait,
    )
    from anima.render_job import SayResult, say_to_file
    from anima.tts import Voice, VoiceError, load_voice


def __getattr__(name: str) -> Any:
    """Import a public name on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'anima' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
