"""The live show's operator console: text commands typed while the show is on air.

``say TEXT``, ``queue TEXT``, ``interrupt``, ``clear``, ``pause``, ``resume``,
``comment USER: TEXT``, ``status``, ``stop``; each is applied to the
:class:`~anima.live.controller.ShowController`, and a bad one gets one line, never stops the show.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

from anima.live.controller import ShowController, ShowError

if TYPE_CHECKING:
    from rich.console import Console

HELP = "commands: say TEXT | queue TEXT | interrupt | clear | pause | resume | comment USER: TEXT | status | stop"


async def console(
    controller: ShowController, lines: asyncio.Queue[str | None], err: Console
) -> None:
    """Apply operator commands as they are typed; bad ones get one line, never stop the show."""
    while (line := await lines.get()) is not None:
        verb, _, rest = line.strip().partition(" ")
        verb = verb.lower()
        try:
            if not verb:
                continue
            if verb == "say":
                await controller.say(rest)
            elif verb == "queue":
                await controller.queue(rest)
            elif verb == "interrupt":
                await controller.interrupt()
            elif verb == "clear":
                await controller.interrupt(clear=True)
            elif verb == "pause":
                await controller.pause()
            elif verb == "resume":
                controller.resume()
            elif verb == "comment":
                user, sep, text = rest.partition(":")
                verdict = controller.comment(user if sep else "viewer", text if sep else rest)
                if not verdict.accepted:
                    err.print(f"comment refused: {verdict.reason}")
            elif verb == "status":
                err.print(controller.status())
            elif verb in {"stop", "quit", "exit"}:
                await controller.stop()
                return
            else:
                err.print(f"unknown command {verb!r}; {HELP}")
        except ShowError as exc:
            err.print(f"error: {exc}")


def stdin_reader(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    """Put each line of stdin on ``lines`` (from a thread), then None at its end."""
    for line in sys.stdin:
        loop.call_soon_threadsafe(lines.put_nowait, line)
    loop.call_soon_threadsafe(lines.put_nowait, None)
