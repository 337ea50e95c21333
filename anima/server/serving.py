"""Running the app under uvicorn with a graceful drain on SIGTERM / Ctrl-C.

Plain uvicorn, on a signal, first closes its listening sockets and only then runs the app's
lifespan shutdown, so a client arriving during the drain gets "connection refused" rather than
an answer. :class:`DrainingServer` drains first: on the first SIGTERM or SIGINT the registry
stops taking sessions (new offers get ``503 busy``, ``/api/health`` says ``draining``) while
HTTP is still served, open sessions finish their turn for up to ``server.drain_seconds``, and
only then does uvicorn shut down. A second signal cuts the drain short.

It also turns off uvicorn's own ``X-Forwarded-For`` handling (on by default for 127.0.0.1),
so the client address the limits key on is decided by ``server.trusted_proxies`` alone.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from types import FrameType
from typing import Any

import uvicorn

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """A ``uvicorn.Server`` for an app made by :func:`anima.server.app.create_app`."""

    def __init__(self, config: uvicorn.Config, app: Any, drain_seconds: float) -> None:
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default and rewrites the client
        # address before the app sees it; server.trusted_proxies must be the only judge.
        config.proxy_headers = False
        super().__init__(config)
        self.app = app
        self.drain_seconds = drain_seconds
        self._drain: asyncio.Task | None = None
        # Set by the first signal itself: the drain task only exists once the loop has run the
        # scheduled callback, and a second signal arriving before then must still cut it short.
        self.drain_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: Any = None) -> None:
        """Serve until a signal (or ``should_exit``) and the drain are done."""
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """First signal: drain, then exit. Another one: exit now (as plain uvicorn)."""
        registry = getattr(self.app.state, "registry", None)
        if not self.drain_requested and registry is not None and self._loop is not None:
            self.drain_requested = True
            log.warning("signal %s: draining sessions (up to %gs)", sig, self.drain_seconds)
            # A signal handler runs between bytecodes of the loop's thread: schedule, not await.
            self._loop.call_soon_threadsafe(self._start_drain, registry)
            return
        if registry is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._hurry, registry)
        super().handle_exit(sig, frame)

    def begin_drain(self) -> None:
        """What SIGTERM does, without a signal (for embedding programs and tests)."""
        self.handle_exit(signal.SIGTERM, None)

    def _start_drain(self, registry: Any) -> None:
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(
                self._drain_then_exit(registry), name="anima-drain"
            )

    def _hurry(self, registry: Any) -> None:
        if self._drain is not None:
            self._drain.cancel()
        registry.hurry()  # the lifespan's drain then closes everything at once

    async def _drain_then_exit(self, registry: Any) -> None:
        try:
            await registry.drain(self.drain_seconds)
        finally:
            self.should_exit = True
