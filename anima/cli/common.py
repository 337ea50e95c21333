"""What several sub-commands share: the user errors they report, and finding the avatar."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from anima.config import Settings
from anima.dialogue.brain import BrainError
from anima.models import ModelNotFound
from anima.render.avatar import (
    WORK_PAD,
    Avatar,
    AvatarError,
    AvatarStore,
    PhotoLimits,
    prepare_avatar,
    read_photo,
    sample_portrait,
)
from anima.render_job import SayError
from anima.tts import VoiceError

SAMPLE = "sample"
# Errors a user can cause: one line on stderr and exit code 2, never a traceback.
USER_ERRORS = (AvatarError, ValueError, SayError, ModelNotFound, VoiceError, OSError, BrainError)


def limits(settings: Settings) -> PhotoLimits:
    """Photo limits from the settings."""
    lim = settings.limits
    return PhotoLimits(
        lim.max_image_bytes, lim.max_image_pixels, lim.min_face_pixels, lim.decode_timeout
    )


def resolve_avatar(spec: str, settings: Settings, err: Console) -> Avatar:
    """A stored avatar by name, a photo prepared on the fly, or the built-in sample."""
    store = AvatarStore(settings.avatar_dir)
    r = settings.render
    if spec == SAMPLE and SAMPLE not in store.names():
        return prepare_avatar(sample_portrait(), SAMPLE, size=r.size, margin=r.face_margin)
    path = Path(spec).expanduser()
    if path.suffix and (path.exists() or "/" in spec or "\\" in spec):
        avatar = prepare_avatar(
            read_photo(path, limits(settings)),
            path.stem,
            size=r.size,
            margin=r.face_margin,
            min_face_pixels=settings.limits.min_face_pixels,
        )
        for note in avatar.notes:
            err.print(f"note: {note}")
        return avatar
    avatar = store.get(spec)
    if avatar.work_size != round(r.size * WORK_PAD):
        raise AvatarError(f"avatar {spec!r} was prepared for another output size; add it again")
    return avatar
