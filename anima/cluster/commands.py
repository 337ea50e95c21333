"""``anima worker``, ``anima gateway`` and ``anima deploy``: arguments and what they do.

Only argparse is imported at module load (``anima --help`` stays fast); each ``run_*`` takes
the parsed arguments and the settings and returns the exit code.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_worker_parser(sub: argparse._SubParsersAction) -> None:
    """The ``worker`` sub-command."""
    w = sub.add_parser("worker", help="serve sessions for gateways on a NATS cluster")
    w.add_argument("--nats", help="NATS URL(s), comma-separated (cluster.nats_url)")
    w.add_argument("--name", help="this worker's id (cluster.worker_name; default host-pid)")
    w.add_argument("--node", help="the machine it reports (cluster.node)")
    w.add_argument("--capacity", type=int, help="sessions at once (server.max_sessions)")
    w.add_argument("--kb", type=Path, help="knowledge folder (also knowledge.dir)")
    w.add_argument("--backend", help="brain: gguf, openai or kb (also brain.backend)")


def add_gateway_parser(sub: argparse._SubParsersAction) -> None:
    """The ``gateway`` sub-command."""
    g = sub.add_parser("gateway", help="stateless page, API and signalling in front of workers")
    g.add_argument("--nats", help="NATS URL(s), comma-separated (cluster.nats_url)")
    g.add_argument("--host", help="listen address (server.host); off loopback tokens are needed")
    g.add_argument("--port", type=int, help="listen port (server.port); 0 picks a free one")


def add_deploy_parser(sub: argparse._SubParsersAction) -> None:
    """The ``deploy`` sub-command."""
    d = sub.add_parser("deploy", help="write NATS and nginx-rtmp fan-out configs")
    d.add_argument("what", choices=["nats", "fanout", "all"], help="which configs to write")
    d.add_argument("--out", type=Path, default=Path("deploy"), help="folder to write into")
    d.add_argument("--name", default="anima", help="NATS cluster name")
    d.add_argument("--routes", default="", help="other NATS servers' cluster URLs, comma-separated")
    d.add_argument("--origin", default="127.0.0.1:1935", help="origin RTMP host:port")
    d.add_argument("--edges", default="127.0.0.1:1936", help="edge RTMP host:port list")
    d.add_argument("--hls-port", type=int, default=8080, help="origin HLS HTTP port")
    d.add_argument("--cache-port", type=int, default=8081, help="HLS cache tier HTTP port")
    d.add_argument("--root", type=Path, default=Path("/var/lib/anima"), help="runtime folder")


def _cluster_overrides(args: argparse.Namespace) -> dict[str, Any]:
    cluster: dict[str, Any] = {}
    for arg, key in (("nats", "nats_url"), ("name", "worker_name"), ("node", "node")):
        if getattr(args, arg, None):
            cluster[key] = getattr(args, arg)
    return {"cluster": cluster} if cluster else {}


def run_worker(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Load the engine once, join the cluster, serve until SIGTERM (drain) or Ctrl-C."""
    overrides = _cluster_overrides(args)
    if args.capacity is not None:
        overrides["server"] = {"max_sessions": args.capacity}
    if args.kb:
        overrides["knowledge"] = {"dir": args.kb}
    if args.backend:
        overrides["brain"] = {"backend": args.backend}
    settings = settings.overridden(overrides)

    async def main() -> int:
        from anima.cluster.worker import Worker
        from anima.engine import Engine

        engine = Engine.from_config(settings)
        await engine.load()
        await engine.avatar(None)
        worker = Worker(settings, engine)
        try:
            await worker.start()
        except Exception as exc:
            await engine.aclose()
            err.print(f"anima: error: cannot join NATS at {settings.cluster.nats_url}: {exc}")
            return 2
        err.print(
            f"worker {worker.id} ready: {worker.capacity} slots on {settings.cluster.nats_url}"
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        err.print(f"worker {worker.id}: draining")
        try:
            await worker.drain()
        finally:
            await engine.aclose()
        return 0

    return asyncio.run(main())


def run_gateway(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Serve the gateway until Ctrl-C / SIGTERM."""
    import uvicorn

    from anima.cluster.gateway import create_gateway

    overrides = _cluster_overrides(args)
    server: dict[str, Any] = {}
    if args.host:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if server:
        overrides["server"] = server
    settings = settings.overridden(overrides)
    host, port = settings.server.host, settings.server.port
    app = create_gateway(settings, host=host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    config.proxy_headers = False  # server.trusted_proxies alone decides (as anima serve)
    err.print(f"gateway on http://{host}:{port}/ for NATS {settings.cluster.nats_url}")
    uvicorn.Server(config).run()
    return 0


def run_deploy(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Write the configs; print what was written."""
    from anima.cluster.deploy import Fanout, write_fanout, write_nats

    written: list[Path] = []
    if args.what in ("nats", "all"):
        routes = [r for r in args.routes.split(",") if r]
        written += write_nats(args.out, args.name, routes, args.root / "nats")
    if args.what in ("fanout", "all"):
        fan = Fanout(
            origin=args.origin,
            edges=[e for e in args.edges.split(",") if e],
            hls_port=args.hls_port,
            cache_port=args.cache_port,
            root=args.root,
        )
        written += write_fanout(args.out, fan)
    for path in written:
        err.print(f"wrote {path}")
    return 0
