"""``anima drive``: speak through the avatar from a recording, as if it were a live microphone.

The live counterpart of ``anima say --audio``: the audio goes through a drive session
(:mod:`anima.engine.drive`) in small blocks, paced in real time unless ``--fast``, and the
avatar's output (the same audio, lips moving to it) is written to an MP4. ``-`` reads raw
s16le mono PCM from stdin (16 kHz unless ``--rate``), e.g. from ``arecord -f S16_LE -r 16000``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load the engine.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``drive`` sub-command's arguments."""
    p = sub.add_parser(
        "drive",
        help="speak through the avatar: a recording (or stdin) as a live mic, to an MP4",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="audio file (any format FFmpeg reads), or - for s16le on stdin")
    p.add_argument(
        "-o", "--output", type=Path, default=Path("anima-drive.mp4"), help="MP4 file to write"
    )
    p.add_argument(
        "--avatar",
        default="sample",
        help="a stored avatar name, a photo path, or 'sample' (built-in portrait)",
    )
    p.add_argument("--rate", type=int, default=16_000, help="sample rate of stdin PCM (Hz)")
    p.add_argument("--fast", action="store_true", help="as fast as possible, not in real time")
    p.add_argument("--seed", type=int, help="seed for blinks and head motion (repeatable output)")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Drive the avatar with ``args.input`` and write ``args.output``; exit code 0."""
    from anima.cli.common import resolve_avatar
    from anima.engine.drive_file import (
        check_rate,
        drive_to_file,
        read_audio,
        split_blocks,
        stdin_blocks,
    )

    if args.seed is not None:
        settings.render.seed = args.seed
    if args.input == "-":
        check_rate(args.rate)
        blocks = stdin_blocks(sys.stdin.buffer, args.rate)
        rate = args.rate
    else:
        pcm, rate = read_audio(Path(args.input))
        blocks = split_blocks(pcm, rate)
    avatar = resolve_avatar(args.avatar, settings, err)
    started = time.perf_counter()
    with err.status("driving the avatar" + ("" if args.fast else " (real time)")):
        frames, seconds = asyncio.run(
            drive_to_file(blocks, rate, avatar, args.output, settings, realtime=not args.fast)
        )
    err.print(
        f"wrote {args.output} ({seconds:.1f} s, {frames} frames) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0
