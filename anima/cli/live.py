"""``anima live``: a scripted (and steerable) broadcast to RTMP, HLS and/or an MP4 file.

With ``--rtmp`` (or ``--realtime`` / ``--stay``) the show runs on the wall clock and a console
reads operator commands from stdin: ``say TEXT``, ``queue TEXT``, ``interrupt``, ``clear``,
``pause``, ``resume``, ``comment USER: TEXT``, ``status``, ``stop``. With only files it is
offline production: the script renders as fast as the machine allows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load PyAV, OpenCV or the voice.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings
    from anima.live.show import LiveShow, ShowReport

log = logging.getLogger(__name__)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``live`` sub-command's arguments."""
    live = sub.add_parser(
        "live",
        help="host a livestream or render a scripted show",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    live.add_argument("--script", type=Path, help="show script (text or Markdown, one line each)")
    live.add_argument("--rtmp", help="push to this RTMP URL (rtmp://host/app/key)")
    live.add_argument("--hls", type=Path, help="write HLS segments and index.m3u8 to this folder")
    live.add_argument("-o", "--output", type=Path, help="record to this MP4 file")
    live.add_argument(
        "--avatar", default="sample", help="stored avatar name, photo path or 'sample'"
    )
    live.add_argument("--seed", type=int, help="seed for blinks and head motion")
    live.add_argument(
        "--realtime", action="store_true", help="pace on the wall clock even without RTMP"
    )
    live.add_argument(
        "--stay", action="store_true", help="stay on air after the script (idle, commands)"
    )
    live.add_argument("--duration", type=float, help="end the broadcast after this many seconds")
    live.add_argument(
        "--answer-comments", action="store_true", help="let the brain answer live comments"
    )
    live.add_argument("--no-console", action="store_true", help="do not read commands from stdin")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run ``anima live``; user errors raise ValueError (one line, exit 2)."""
    from anima.cli.common import resolve_avatar
    from anima.live.script import load_script
    from anima.live.wiring import build_show, comment_responder, make_outputs
    from anima.tts import load_voice

    if args.seed is not None:
        settings.render.seed = args.seed
    realtime = bool(args.rtmp or args.realtime or args.stay)
    if not realtime and args.script is None:
        raise ValueError("offline production needs --script (or use --rtmp / --stay to go live)")
    items = load_script(args.script, settings.limits.max_text_chars) if args.script else []
    outputs = make_outputs(settings, rtmp=args.rtmp, hls=args.hls, mp4=args.output, live=realtime)
    avatar = resolve_avatar(args.avatar, settings, err)
    voice = load_voice(
        settings.voice.backend,
        model=settings.voice.model,
        length_scale=settings.voice.length_scale,
        sentence_silence=settings.voice.sentence_silence,
    )
    agent, responder, moderate = (None, None, None)
    if args.answer_comments:
        agent, responder, moderate = comment_responder(settings)
    show, hub = build_show(
        settings, avatar, voice, outputs, realtime=realtime, responder=responder, moderate=moderate
    )
    show.controller.load(items)
    if not args.stay:
        show.controller.finish()
    try:
        report = asyncio.run(_broadcast(show, args, realtime, err))
    finally:
        hub.close()
        if agent is not None:
            asyncio.run(agent.aclose())
    return _summary(report, outputs, args, err)


async def _broadcast(
    show: LiveShow, args: argparse.Namespace, realtime: bool, err: Console
) -> ShowReport:
    from anima.live.console import HELP, console, stdin_reader

    tasks = []
    if realtime and not args.no_console:
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(
            target=stdin_reader, args=(asyncio.get_running_loop(), lines), daemon=True
        ).start()
        tasks.append(asyncio.create_task(console(show.controller, lines, err)))
        err.print(f"on air; {HELP}")
    try:
        if realtime:
            return await show.run(max_seconds=args.duration)
        with err.status("rendering the show…"):
            return await show.run(max_seconds=None)
    finally:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t


def _summary(report: ShowReport, outputs: list, args: argparse.Namespace, err: Console) -> int:
    from anima.live.outputs import RtmpOutput

    s = report.stats
    err.print(
        f"{report.seconds:.1f} s on air ({s.frames} frames, {len(s.speech)} utterances) in "
        f"{report.elapsed:.1f} s ({report.realtime_factor:.2f}x real time); "
        f"underruns {s.underruns}, repeated frames {s.repeated}"
    )
    for out in outputs:
        if isinstance(out, RtmpOutput):
            if out.connects == 0:
                print(f"anima: error: RTMP never connected: {out.last_error}", file=sys.stderr)
                return 1
            if out.failures:
                err.print(f"RTMP: {out.failures} failures, {out.connects} connections")
    if args.output:
        err.print(f"wrote {args.output}")
    if args.hls:
        err.print(f"HLS in {args.hls}")
    return 0
