"""``anima kiosk``: serve the kiosk WebSocket protocol (docs/protocol.md), offline, on loopback.

Models load before the port opens, so the first client is answered at once. Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load the engine.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``kiosk`` sub-command's arguments."""
    kiosk = sub.add_parser(
        "kiosk",
        help="serve the kiosk WebSocket protocol (in-process engine, offline)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    kiosk.add_argument("--host", help="listen address (server.host; default 127.0.0.1)")
    kiosk.add_argument("--port", type=int, help="listen port (server.port; default 8765)")
    kiosk.add_argument("--kb", help="knowledge folder (knowledge.dir)")
    kiosk.add_argument("--backend", help="brain backend: gguf, openai or kb (brain.backend)")
    kiosk.add_argument(
        "--max-sessions", type=int, help="open sessions at most (server.max_sessions)"
    )


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Load the engine, serve until interrupted; exit code 0."""
    overrides: dict[str, dict[str, object]] = {}
    if args.kb:
        overrides["knowledge"] = {"dir": args.kb}
    if args.backend:
        overrides["brain"] = {"backend": args.backend}
    if args.max_sessions is not None:
        overrides["server"] = {"max_sessions": args.max_sessions}
    from anima.engine import Engine

    engine = Engine.from_config(settings, **overrides)
    host = args.host or engine.settings.server.host
    if (
        host not in ("127.0.0.1", "localhost", "::1")
        and engine.settings.server.token_secret is None
    ):
        err.print(
            f"[yellow]warning:[/] serving on {host} without server.token_secret: anyone who can "
            "reach this port can talk to the avatar"
        )
    return asyncio.run(_serve(engine, host, args.port, err))


async def _serve(engine, host: str, port: int | None, err: Console) -> int:  # noqa: ANN001
    from anima.protocol import ProtocolServer

    with err.status("loading models"):
        await engine.load(lambda step: err.log(f"loading {step}"))
    server = ProtocolServer(engine, host, port)
    await server.start()
    err.print(f"kiosk protocol v1 on ws://{server.host}:{server.port} (Ctrl-C to stop)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.aclose()
        await engine.aclose()
    return 0
