"""anima: a real-time digital human — it listens, thinks, speaks and moves its lips, offline.

The public API is small; everything else is internal and may change.

>>> import asyncio, anima
>>> avatar = anima.prepare_avatar(anima.sample_portrait(), "guide")   # doctest: +SKIP
>>> voice = anima.load_voice()                                         # doctest: +SKIP
>>> asyncio.run(anima.say_to_file("Hello!", avatar, Path("hi.mp4"), voice, anima.Settings()))  # doctest: +SKIP

The streaming SDK (Engine, Session) arrives with the listening and brain stages.
"""

from anima.config import Settings
from anima.render.avatar import (
    Avatar,
    AvatarError,
    AvatarStore,
    prepare_avatar,
    read_photo,
    sample_portrait,
)
from anima.session import SayResult, say_to_file
from anima.tts import Voice, VoiceError, load_voice

__all__ = [
    "Avatar",
    "AvatarError",
    "AvatarStore",
    "SayResult",
    "Settings",
    "Voice",
    "VoiceError",
    "load_voice",
    "prepare_avatar",
    "read_photo",
    "sample_portrait",
    "say_to_file",
]
__version__ = "0.1.0"
