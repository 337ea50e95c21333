"""What each ``anima`` sub-command does; :mod:`anima.cli` parses and dispatches here."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from anima.config import Settings
from anima.dialogue.brain import BrainError
from anima.models import ModelNotFound
from anima.render.avatar import (
    WORK_PAD,
    Avatar,
    AvatarError,
    AvatarStore,
    Consent,
    PhotoLimits,
    prepare_avatar,
    read_photo,
    sample_portrait,
)
from anima.session import SayError, say_audio_to_file, say_to_file
from anima.tts import VoiceError, voice_from_settings

SAMPLE = "sample"
_USER_ERRORS = (AvatarError, ValueError, SayError, ModelNotFound, VoiceError, OSError, BrainError)


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command; user errors become one line on stderr and exit code 2."""
    err = Console(stderr=True)
    try:
        if args.command == "say":
            return _say(args, settings, err)
        if args.command == "avatar":
            return _avatar(args, settings, err)
        if args.command == "verify":
            from anima.verify_cmd import run_verify

            return run_verify(args)
        if args.command == "transcribe":
            from anima.transcribe import run_transcribe

            return run_transcribe(args, settings, err)
        if args.command == "chat":
            from anima.chat import run_chat

            return run_chat(args, settings, err)
        if args.command == "live":
            from anima.live_cmd import run_live

            return run_live(args, settings, err)
        if args.command == "serve":
            from anima.serve_cmd import run_serve

            return run_serve(args, settings, err)
        if args.command == "kiosk":
            from anima.kiosk_cmd import run_kiosk

            return run_kiosk(args, settings, err)
        if args.command == "drive":
            from anima.drive_cmd import run_drive

            return run_drive(args, settings, err)
        if args.command in ("worker", "gateway", "deploy"):
            from anima.cluster import commands as cluster

            return getattr(cluster, f"run_{args.command}")(args, settings, err)
        if args.command == "bench":
            from anima.bench import run_bench

            return run_bench(args, settings, err)
    except _USER_ERRORS as exc:
        print(f"anima: error: {exc}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command}")


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


def _say(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    if args.seed is not None:
        settings.render.seed = args.seed
    started = time.perf_counter()
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("loading", total=None, info="")
        if (args.audio is None) == (args.text is None):
            raise ValueError("give either a text to say or --audio FILE, not both or neither")
        avatar = resolve_avatar(args.avatar, settings, err)

        def on_progress(done: float, total: float) -> None:
            progress.update(task, completed=done, total=total, info=f"{done:.1f}s of video")

        if args.audio is not None:
            progress.update(task, description="rendering")
            result = asyncio.run(
                say_audio_to_file(
                    args.audio, avatar, args.output, settings, on_progress=on_progress
                )
            )
            err.print(
                f"wrote {result.path} ({result.audio_seconds:.1f} s, {result.video_frames} frames)"
                f" in {time.perf_counter() - started:.1f} s"
            )
            return 0
        voice = voice_from_settings(settings.voice)
        progress.update(task, description="rendering")
        result = asyncio.run(
            say_to_file(args.text, avatar, args.output, voice, settings, on_progress=on_progress)
        )
    elapsed = time.perf_counter() - started
    err.print(
        f"wrote {result.path} ({result.audio_seconds:.1f} s, {result.video_frames} frames) in {elapsed:.1f} s"
    )
    return 0


def _avatar(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    store = AvatarStore(settings.avatar_dir)
    if args.avatar_command == "list":
        for name in store.names():
            print(name)
        return 0
    if args.avatar_command == "remove":
        store.remove(args.name)
        err.print(f"removed avatar {args.name!r}")
        return 0
    started = time.perf_counter()
    r = settings.render
    with err.status("finding the face…"):
        consent = Consent.now(args.consent_by) if args.consent_by is not None else None
        avatar = prepare_avatar(
            read_photo(args.photo, limits(settings)),
            args.name,
            size=r.size,
            margin=r.face_margin,
            min_face_pixels=settings.limits.min_face_pixels,
        )
        avatar.consent = consent
        folder = store.add(avatar, replace=args.replace)
    for note in avatar.notes:
        err.print(f"note: {note}")
    if consent is None:
        err.print(
            "note: no likeness consent recorded (--consent-by NAME); the server and SDK refuse "
            "this avatar while limits.require_consent is on"
        )
    else:
        err.print(f"consent attested by {consent.by} at {consent.at}")
    err.print(f"avatar {args.name!r} ready in {folder} ({time.perf_counter() - started:.1f} s)")
    return 0
