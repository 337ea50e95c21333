"""``anima say``: render the avatar speaking a text (or lip-syncing a speech file) into an MP4."""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load the voice or the renderer.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``say`` sub-command's arguments."""
    say = sub.add_parser("say", help="render the avatar speaking a text into an MP4")
    say.add_argument("text", nargs="?", help="what to say (or give --audio)")
    say.add_argument(
        "--audio",
        type=Path,
        help="lip-sync this speech file (any format FFmpeg reads) instead of speaking text",
    )
    say.add_argument(
        "--avatar",
        default="sample",
        help="a stored avatar name, a photo path, or 'sample' (built-in portrait)",
    )
    say.add_argument(
        "-o", "--output", type=Path, default=Path("anima.mp4"), help="MP4 file to write"
    )
    say.add_argument("--seed", type=int, help="seed for blinks and head motion (repeatable output)")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Write ``args.output``; exit code 0."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from anima.cli.common import resolve_avatar
    from anima.render_job import say_audio_to_file, say_to_file
    from anima.tts import voice_from_settings

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
