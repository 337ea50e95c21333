"""``anima serve``: load the engine, start the web server and print the page's URL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path
from typing import Any

from rich.console import Console

from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``serve`` sub-command's arguments (argparse only, no heavy imports)."""
    p = sub.add_parser("serve", help="browser chat over WebRTC: start the server, print its URL")
    p.add_argument("--host", help="listen address (server.host); off loopback tokens are needed")
    p.add_argument("--port", type=int, help="listen port (server.port); 0 picks a free one")
    p.add_argument("--kb", type=Path, help="knowledge folder (also knowledge.dir)")
    p.add_argument("--persona", type=Path, help="persona YAML file (also persona.file)")
    p.add_argument("--backend", help="brain: gguf, openai or kb (no model); also brain.backend")
    p.add_argument(
        "--max-sessions", type=int, help="concurrent conversations (server.max_sessions)"
    )


def apply_args(args: argparse.Namespace, settings: Settings) -> Settings:
    """Command-line options over the settings (validated again)."""
    server: dict[str, Any] = {}
    if args.host:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.max_sessions is not None:
        server["max_sessions"] = args.max_sessions
    overrides: dict[str, Any] = {"server": server} if server else {}
    if args.kb:
        overrides["knowledge"] = {"dir": args.kb}
    if args.persona:
        overrides["persona"] = {"file": args.persona}
    if args.backend:
        overrides["brain"] = {"backend": args.backend}
    return settings.overridden(overrides)


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Serve until Ctrl-C."""
    import uvicorn

    from anima.engine import Engine
    from anima.server.app import create_app
    from anima.server.serving import DrainingServer

    settings = apply_args(args, settings)
    host, port = settings.server.host, settings.server.port

    async def main() -> None:
        engine = Engine.from_config(settings)
        with err.status("loading models…") as status:
            await engine.load(progress=lambda what: status.update(f"loading {what}…"))
        app = create_app(settings, engine, host=host)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        server = DrainingServer(config, app, settings.server.drain_seconds)
        task = asyncio.create_task(server.serve())
        try:
            # uvicorn offers only a flag for "listening"; poll it briefly.
            while not server.started and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if server.started:
                real_port = server.servers[0].sockets[0].getsockname()[1]
                shown = "localhost" if host in ("127.0.0.1", "::1", "localhost") else host
                err.print(f"anima is listening: [bold]http://{shown}:{real_port}/[/bold]")
                if app.state.token_required:
                    err.print(
                        "not on loopback: pages need ?token=… from POST /api/token "
                        "(Authorization: Bearer <webrtc.operator_key>)"
                    )
                err.print("open it in a browser and press 'Start talking'; Ctrl-C stops")
            await task
        finally:
            if not task.done():
                server.should_exit = True
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await engine.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
