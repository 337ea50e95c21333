"""The open WebRTC conversations of one server: limits, idle timeout, teardown of all.

The engine enforces ``server.max_sessions`` too (``EngineBusy``); checking here first answers
"busy" before a peer connection is built. A reaper task closes conversations that never
connected within ``webrtc.connect_timeout`` or had no user activity for ``server.idle_timeout``.

Per-client limits come from :class:`~anima.server.limits.ServerLimits`: sessions per client
address, and the message buckets each conversation's data channel spends from. Shutdown is
:meth:`Registry.drain`: refuse new sessions, let each open one finish its turn (close it as
soon as it is quiet), close the rest at the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

from anima.config import Settings
from anima.server import metrics
from anima.server.auth import ice_servers
from anima.server.limits import ServerLimits
from anima.server.rtc import RtcSession

log = logging.getLogger(__name__)

QUIET = ("idle", "listening")  # states in which a conversation may time out


class Busy(RuntimeError):
    """Every session slot is taken (or the server is shutting down)."""


class ClientBusy(Busy):
    """This client address already holds ``server.max_sessions_per_client`` sessions."""


class UnknownSession(KeyError):
    """No open session has this id."""

    def __str__(self) -> str:
        return f"no open session {self.args[0]!r}"


def new_session_id() -> str:
    """A random, URL-safe session id."""
    return secrets.token_urlsafe(12)


class Registry:
    """Open :class:`RtcSession` objects by id, created from one engine."""

    def __init__(self, engine: Any, settings: Settings, limits: ServerLimits | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.limits = limits or ServerLimits(settings.server)
        self.sessions: dict[str, RtcSession] = {}
        self.draining = False  # shutting down: no new sessions, no new turns
        self._deadline: float | None = None  # monotonic end of the drain
        self._reaper: asyncio.Task | None = None
        self._pending = 0  # slots held while an offer is being answered

    @property
    def max_sessions(self) -> int:
        """How many conversations may be open at once."""
        return self.settings.server.max_sessions

    def start(self) -> None:
        """Start the idle/connect-timeout reaper (call inside the running loop)."""
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="rtc-reaper")

    async def open(
        self,
        sid: str | None,
        avatar: str | None,
        sdp: str,
        *,
        greet: bool = True,
        client: str = "?",
        drive: bool = False,
        local: bool = False,
    ) -> tuple[RtcSession, Any]:
        """A new conversation answering ``sdp``: (session, answer).

        ``local`` says the request came from this machine itself (a loopback TCP peer whose
        ``X-Forwarded-For``, if any, was not believed: :meth:`ServerLimits.local`); only then
        is ``client`` exempt from the per-client session cap. Raises :class:`Busy` when the
        server is full or draining, :class:`ClientBusy` when ``client`` holds its share of
        sessions already.
        """
        if self.draining:
            metrics.REFUSED.labels("busy").inc()
            raise Busy("the server is shutting down; try again later")
        if len(self.sessions) + self._pending >= self.max_sessions:
            metrics.REFUSED.labels("busy").inc()
            raise Busy(f"all {self.max_sessions} session slots are in use; try again later")
        sid = sid or new_session_id()
        if sid in self.sessions:
            raise ValueError(f"session {sid!r} is already open")
        slots = self.limits.slots
        # The machine itself (a kiosk, a bench, the operator) is not capped per address. It is
        # judged on the TCP peer, not the derived address: a believed X-Forwarded-For saying
        # 127.0.0.1 is someone else's claim. A reverse proxy on this host must be listed in
        # server.trusted_proxies to be seen through, or all its clients share (and skip) this
        # cap (ServerLimits.client warns once about that).
        capped = not local
        if capped and not slots.acquire(client):
            metrics.REFUSED.labels("client_busy").inc()
            raise ClientBusy(
                f"this client already has {slots.limit} open sessions; close one first"
            )
        self._pending += 1
        try:
            if hasattr(self.engine, "avatar"):
                await self.engine.avatar(avatar)  # an unknown avatar fails here, before any pc
            engine_session = self.engine.session(avatar, greet=greet, drive=drive)
        except BaseException:
            self._pending -= 1
            if capped:
                slots.release(client)
            raise
        server = self.settings.server
        rtc = RtcSession(
            sid,
            engine_session,
            ice=ice_servers(self.settings.webrtc),
            queue_seconds=self.settings.webrtc.queue_seconds,
            avatar=avatar or "sample",
            on_closed=self._forget,
            client=client,
            allow=lambda: self.limits.allow(client, f"session:{sid}"),
            max_speech_seconds=server.max_speech_seconds,
        )
        rtc.holds_slot = capped
        try:
            answer = await rtc.answer(sdp)
        except BaseException:
            self._pending -= 1
            await rtc.close("signalling failed")  # releases the client's slot (_forget)
            raise
        self._pending -= 1
        self.sessions[sid] = rtc
        metrics.OPENED.inc()
        metrics.SESSIONS.set(len(self.sessions))
        return rtc, answer

    def get(self, sid: str) -> RtcSession:
        """The open session ``sid`` or :class:`UnknownSession`."""
        try:
            return self.sessions[sid]
        except KeyError:
            raise UnknownSession(sid) from None

    async def close(self, sid: str, reason: str) -> None:
        """Close one session (``UnknownSession`` if it is not open)."""
        await self.get(sid).close(reason)

    def _forget(self, rtc: RtcSession) -> None:
        if rtc.holds_slot:
            rtc.holds_slot = False
            self.limits.slots.release(rtc.client)
        if self.sessions.get(rtc.id) is rtc:
            del self.sessions[rtc.id]
            metrics.CLOSED.labels(metrics.close_reason(rtc.close_reason)).inc()
        metrics.SESSIONS.set(len(self.sessions))

    async def _reap(self) -> None:
        idle = self.settings.server.idle_timeout
        connect = self.settings.webrtc.connect_timeout
        heartbeat = self.settings.webrtc.heartbeat_timeout
        while True:
            await asyncio.sleep(min(1.0, idle / 4, connect / 4, heartbeat / 4))
            now = time.monotonic()
            for rtc in list(self.sessions.values()):
                if rtc.closed:
                    continue
                if rtc.connection_state != "connected" and time.time() - rtc.created > connect:
                    await rtc.close("connect timeout")
                elif rtc.last_ping is not None and now - rtc.last_ping > heartbeat:
                    # A crashed tab or lost network: close now rather than wait ~30 s for ICE
                    # consent to fail while aiortc keeps encoding.
                    await rtc.close("connection lost (no heartbeat)")
                elif now - rtc.last_activity > idle and rtc.session.state in QUIET:
                    rtc.send({"type": "idle_timeout", "seconds": idle})
                    await rtc.close("idle timeout")

    def hurry(self) -> None:
        """End a drain now: the sessions still open are closed at once."""
        self._deadline = 0.0

    async def drain(self, seconds: float) -> None:
        """Shut down gently: refuse new sessions and turns, close each open session once it
        is quiet (its current turn done), and the rest after ``seconds``. Calling it again
        (a second signal, the lifespan after a signal) only moves the deadline earlier."""
        deadline = time.monotonic() + max(0.0, seconds)
        self._deadline = deadline if self._deadline is None else min(self._deadline, deadline)
        if self.draining:
            # The first drain closes sessions from its own task; a short poll waits for it.
            while self.sessions and time.monotonic() < self._deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            await self.aclose()
            return
        self.draining = True
        closing: set[asyncio.Task] = set()
        for rtc in list(self.sessions.values()):
            rtc.draining = True
            rtc.send({"type": "draining", "seconds": round(seconds, 1)})
        while self.sessions and time.monotonic() < self._deadline:
            for rtc in list(self.sessions.values()):
                if not rtc.closed and rtc.quiet:
                    task = asyncio.get_running_loop().create_task(rtc.close("server shutdown"))
                    closing.add(task)
                    task.add_done_callback(closing.discard)
            await asyncio.sleep(0.05)
        await asyncio.gather(*closing, return_exceptions=True)
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session and stop the reaper (server shutdown)."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        await asyncio.gather(
            *(rtc.close("server shutdown") for rtc in list(self.sessions.values())),
            return_exceptions=True,
        )
