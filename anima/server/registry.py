"""The open WebRTC conversations of one server: limits, idle timeout, teardown of all.

The engine enforces ``server.max_sessions`` too (``EngineBusy``); checking here first answers
"busy" before a peer connection is built. A reaper task closes conversations that never
connected within ``webrtc.connect_timeout`` or had no user activity for ``server.idle_timeout``.
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
from anima.server.rtc import RtcSession

log = logging.getLogger(__name__)

QUIET = ("idle", "listening")  # states in which a conversation may time out


class Busy(RuntimeError):
    """Every session slot is taken."""


class UnknownSession(KeyError):
    """No open session has this id."""

    def __str__(self) -> str:
        return f"no open session {self.args[0]!r}"


def new_session_id() -> str:
    """A random, URL-safe session id."""
    return secrets.token_urlsafe(12)


class Registry:
    """Open :class:`RtcSession` objects by id, created from one engine."""

    def __init__(self, engine: Any, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.sessions: dict[str, RtcSession] = {}
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
        self, sid: str | None, avatar: str | None, sdp: str, *, greet: bool = True
    ) -> tuple[RtcSession, Any]:
        """A new conversation answering ``sdp``: (session, answer). Raises :class:`Busy`."""
        if len(self.sessions) + self._pending >= self.max_sessions:
            metrics.REFUSED.labels("busy").inc()
            raise Busy(f"all {self.max_sessions} session slots are in use; try again later")
        sid = sid or new_session_id()
        if sid in self.sessions:
            raise ValueError(f"session {sid!r} is already open")
        self._pending += 1
        try:
            if hasattr(self.engine, "avatar"):
                await self.engine.avatar(avatar)  # an unknown avatar fails here, before any pc
            engine_session = self.engine.session(avatar, greet=greet)
        except Exception:
            self._pending -= 1
            raise
        rtc = RtcSession(
            sid,
            engine_session,
            ice=ice_servers(self.settings.webrtc),
            queue_seconds=self.settings.webrtc.queue_seconds,
            avatar=avatar or "sample",
            on_closed=self._forget,
        )
        try:
            answer = await rtc.answer(sdp)
        except BaseException:
            self._pending -= 1
            await rtc.close("signalling failed")
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
