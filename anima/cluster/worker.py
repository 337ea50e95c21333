"""``anima worker``: one engine (models loaded once) serving sessions that gateways send it.

The worker answers WebRTC offers with the same code as ``anima serve``
(:class:`anima.server.registry.Registry` and :class:`anima.server.rtc.RtcSession`) and kiosk
WebSockets with the same code as ``anima kiosk`` (:class:`anima.protocol.server.Connection`
over a :class:`~anima.cluster.kiosk.NatsSocket`): the cluster adds a transport for signalling,
never a second conversation engine. Media goes peer ↔ worker directly.

On NATS it

- registers as the micro service ``anima`` (node, device, capacity in its metadata; free slots
  in its stats and on ``anima.w.<id>.status``);
- is a member of the queue group ``anima-workers`` on ``anima.offer`` / ``anima.kiosk`` only
  while it has a free slot: a full worker leaves the group and rejoins when a session ends (a
  plain queue group picks at random and would ignore capacity);
- answers its own ``anima.w.<id>.offer`` / ``.kiosk`` (a gateway's pick by free slots) with
  ``busy`` when full;
- records ``session → worker`` in the session book (:mod:`anima.cluster.book`);
- publishes a heartbeat (free slots, open sessions) every ``cluster.heartbeat_seconds``.

Draining (SIGTERM, :meth:`Worker.drain`): it leaves the queue group, says ``draining`` in its
heartbeat (gateways stop picking it), refuses new offers, lets each open session finish its turn
(up to ``server.drain_seconds``) and then exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from typing import Any

import nats
from nats.aio.msg import Msg

from anima.cluster import wire
from anima.cluster.book import SessionBook
from anima.cluster.kiosk import NatsSocket
from anima.config import Settings
from anima.server.registry import Busy, ClientBusy, Registry
from anima.server.rtc import RtcSession, SignallingError

log = logging.getLogger(__name__)

MAX_OFFER_BYTES = 256 * 1024  # an SDP is at most 64 KiB (rtc.MAX_SDP_BYTES) plus a few fields


class _Registry(Registry):
    """The server's registry, telling the worker when a conversation is gone."""

    def __init__(self, *args: Any, on_gone: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_gone = on_gone

    def _forget(self, rtc: RtcSession) -> None:
        super()._forget(rtc)
        self._on_gone(rtc)


def default_name() -> str:
    """``<host>-<pid>``, as a NATS-subject-safe token."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host or 'worker'}-{os.getpid()}"


class Worker:
    """An engine on a NATS cluster; :meth:`start`, then :meth:`drain` or :meth:`aclose`."""

    def __init__(self, settings: Settings, engine: Any) -> None:
        self.settings = settings
        self.cfg = settings.cluster
        self.engine = engine
        self.id = self.cfg.worker_name or default_name()
        self.node = self.cfg.node or socket.gethostname()
        self.capacity = settings.server.max_sessions
        self.draining = False
        self.gone = False  # closed: the last heartbeat says so (gateways forget it, not "lost")
        self.nc: Any = None
        self.book: SessionBook | None = None
        self.registry = _Registry(engine, settings, on_gone=self._gone)
        self._reserved = 0  # offers accepted, still being answered
        self._controls: dict[str, Any] = {}  # sid -> its control subscription
        self._kiosk: dict[str, NatsSocket] = {}  # cid -> socket of a bridged kiosk session
        self._queue_subs: list[Any] = []
        self._queue_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._heartbeat: asyncio.Task | None = None
        self._service: Any = None

    # -- state ---------------------------------------------------------------------------

    @property
    def free(self) -> int:
        """Session slots free now (WebRTC and kiosk sessions share them)."""
        used = len(self.registry.sessions) + self._reserved + len(self._kiosk)
        return max(0, self.capacity - used)

    def heartbeat(self) -> wire.Heartbeat:
        """What this worker announces now."""
        return wire.Heartbeat(
            worker=self.id,
            node=self.node,
            device=self.settings.device,
            capacity=self.capacity,
            free=0 if self.draining else self.free,
            draining=self.draining,
            gone=self.gone,
            sessions=[*self.registry.sessions, *self._kiosk],
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, bind the session book, register, subscribe and start heart-beating."""
        from nats.micro import add_service

        self.nc = await nats.connect(
            self.cfg.nats_url.split(","),
            name=f"anima-worker-{self.id}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
        )
        self.book = await SessionBook.open(
            self.nc.jetstream(), self.cfg.bucket, self.cfg.session_ttl
        )
        self.registry.start()
        self._service = await add_service(
            self.nc,
            name=wire.SERVICE,
            version="0.1.0",
            description="anima engine worker",
            metadata={
                "worker": self.id,
                "node": self.node,
                "device": self.settings.device,
                "capacity": str(self.capacity),
            },
            stats_handler=lambda _endpoint: {"free": self.free, "draining": self.draining},
        )
        await self._service.add_endpoint(
            name="status",
            subject=wire.direct(self.id, "status"),
            queue_group=self.id,
            handler=self._on_status,
        )
        await self.nc.subscribe(wire.direct(self.id, "offer"), cb=self._on_offer)
        await self.nc.subscribe(wire.direct(self.id, "kiosk"), cb=self._on_kiosk)
        await self._sync_queue()
        self._heartbeat = asyncio.create_task(self._beat(), name="worker-heartbeat")
        log.info("worker %s on %s: %d slots", self.id, self.node, self.capacity)

    async def drain(self, seconds: float | None = None) -> None:
        """Stop taking sessions, let open ones finish their turn, then close everything."""
        seconds = self.settings.server.drain_seconds if seconds is None else seconds
        self.draining = True
        await self._sync_queue()
        await self._publish_heartbeat()
        deadline = asyncio.get_running_loop().time() + seconds
        await self.registry.drain(seconds)
        while self._kiosk and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await self.aclose()

    async def aclose(self) -> None:
        """Close every session and the connection (a drained worker ends here too)."""
        self.draining = True
        await self.registry.aclose()
        for sock in list(self._kiosk.values()):
            await sock.close(1001, "worker shutting down")
        if self._tasks:  # let the last records and heartbeats go out, briefly
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        if self.nc is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):
                self.gone = True
                await self._publish_heartbeat()
                if self._service is not None:
                    await self._service.stop()
                await self.nc.drain()
        self.nc = None

    # -- queue membership and heartbeats -------------------------------------------------

    async def _sync_queue(self) -> None:
        """Be in the queue group exactly while a slot is free and the worker is not draining."""
        async with self._queue_lock:
            want = not self.draining and self.free > 0
            if want and not self._queue_subs:
                self._queue_subs = [
                    await self.nc.subscribe(wire.OFFER, queue=wire.QUEUE, cb=self._on_offer),
                    await self.nc.subscribe(wire.KIOSK, queue=wire.QUEUE, cb=self._on_kiosk),
                ]
            elif not want and self._queue_subs:
                subs, self._queue_subs = self._queue_subs, []
                for sub in subs:
                    with contextlib.suppress(Exception):
                        await sub.unsubscribe()

    async def _publish_heartbeat(self) -> None:
        if self.nc is not None and self.nc.is_connected:
            await self.nc.publish(wire.heartbeat_subject(self.id), self.heartbeat().to_bytes())

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a NATS outage: try again next period
                await self._publish_heartbeat()
            await asyncio.sleep(self.cfg.heartbeat_seconds)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _gone(self, rtc: RtcSession) -> None:
        """A WebRTC conversation ended (or never opened): free its slot everywhere."""
        sub = self._controls.pop(rtc.id, None)
        if sub is None:
            return  # signalling failed before it was ours: nothing was recorded
        self._spawn(self._after_end(rtc.id, rtc.close_reason, sub), f"gone-{rtc.id}")

    async def _after_end(self, sid: str, reason: str, sub: Any) -> None:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        await self._record(sid, "closed", reason=reason)
        await self._sync_queue()
        with contextlib.suppress(Exception):
            await self._publish_heartbeat()

    async def _record(self, sid: str, state: str, **extra: Any) -> None:
        if self.book is None:
            return
        try:
            await self.book.put(sid, self.id, state, node=self.node, **extra)
        except Exception as exc:  # the bucket is down: the session goes on without its record
            log.warning("session %s: cannot record %s: %s", sid, state, exc)

    # -- handlers ------------------------------------------------------------------------

    async def _on_status(self, req: Any) -> None:
        await req.respond(self.heartbeat().to_bytes())

    def _refuse(self) -> bytes | None:
        if self.draining:
            return wire.error(503, "busy", f"worker {self.id} is draining")
        if self.free <= 0:
            return wire.error(503, "busy", f"worker {self.id} has no free slot")
        return None

    async def _on_offer(self, msg: Msg) -> None:
        refusal = self._refuse()
        if refusal is not None:
            await msg.respond(refusal)
            return
        try:
            req = _request(msg.data, "sid", "sdp")
        except ValueError as exc:
            await msg.respond(wire.error(400, "bad_request", str(exc)))
            return
        self._reserved += 1  # before any await: the next offer sees the slot taken
        self._spawn(self._answer(msg, req), f"offer-{req['sid']}")

    async def _answer(self, msg: Msg, req: dict[str, Any]) -> None:
        sid = req["sid"]
        try:
            await self._sync_queue()
            try:
                rtc, answer = await self.registry.open(
                    sid,
                    req.get("avatar") if isinstance(req.get("avatar"), str) else None,
                    req["sdp"],
                    greet=bool(req.get("greet", True)),
                    client=str(req.get("client") or "?"),
                    drive=bool(req.get("drive", False)),
                    local=bool(req.get("local", False)),
                )
            except Exception as exc:
                await msg.respond(_open_error(exc))
                return

            async def on_control(m: Msg) -> None:
                self._spawn(self._on_control(m, sid), f"ctl-{sid}")

            try:
                self._controls[sid] = await self.nc.subscribe(wire.control(sid), cb=on_control)
                await self._record(sid, "open", avatar=rtc.avatar)
                reply = {"sdp": answer.sdp, "session_id": sid, "worker": self.id}
                await msg.respond(wire.encode({**reply, "node": self.node}))
            except Exception as exc:  # NATS dropped under us: the session is nobody's; end it
                log.warning("session %s: could not be handed over: %s", sid, exc)
                await rtc.close("signalling failed")
        finally:
            self._reserved -= 1
            await self._sync_queue()
            with contextlib.suppress(Exception):
                await self._publish_heartbeat()

    async def _on_control(self, msg: Msg, sid: str) -> None:
        rtc = self.registry.sessions.get(sid)
        if rtc is None:
            await msg.respond(wire.error(404, "unknown_session", f"no open session {sid!r}"))
            return
        try:
            req = _request(msg.data, "op")
            reply = await self._control(rtc, req)
        except ValueError as exc:
            reply = {"error": "bad_request", "message": str(exc), "status": 400}
        except RuntimeError as exc:  # the session closed under the request
            reply = {"error": "unavailable", "message": str(exc), "status": 409}
        await msg.respond(wire.encode(reply))

    async def _control(self, rtc: RtcSession, req: dict[str, Any]) -> dict[str, Any]:
        op = req["op"]
        if op == "describe":
            return {**rtc.describe(), "worker": self.id, "node": self.node}
        if op == "close":
            await rtc.close(str(req.get("reason") or "deleted")[:80])
            return {"status": "closed"}
        if op == "interrupt":
            await rtc.session.interrupt("operator")
            return {"status": "interrupted"}
        if op == "ice":
            try:
                await rtc.add_candidate(
                    str(req.get("candidate") or ""), req.get("sdpMid"), req.get("sdpMLineIndex")
                )
            except SignallingError as exc:
                return {"error": "bad_candidate", "message": str(exc), "status": 400}
            return {"status": "added"}
        if op in ("say", "ask"):
            if self.draining or rtc.draining:
                return {"error": "busy", "message": "the worker is draining", "status": 503}
            if rtc.session.drive:
                return {
                    "error": "unavailable",
                    "message": f"'{op}' is not available in a drive session",
                    "status": 409,
                }
            text = req.get("text")
            if not isinstance(text, str) or not text.strip():
                raise ValueError("'text' must be a non-empty string")
            rtc.touch()
            if op == "say":
                await rtc.session.say(text, str(req.get("emotion") or "neutral"))
                return {"status": "queued"}
            await rtc.session.ask(text)
            return {"status": "asked"}
        raise ValueError(f"unknown op {op!r}")

    async def _on_kiosk(self, msg: Msg) -> None:
        refusal = self._refuse()
        if refusal is not None:
            await msg.respond(refusal)
            return
        try:
            req = _request(msg.data, "cid")
        except ValueError as exc:
            await msg.respond(wire.error(400, "bad_request", str(exc)))
            return
        cid = req["cid"]
        if cid in self._kiosk:
            await msg.respond(wire.error(409, "conflict", "this connection is already open"))
            return
        sock = NatsSocket(self.nc, cid, str(req.get("client") or "?"))
        self._kiosk[cid] = sock
        await sock.start()
        self._spawn(self._run_kiosk(cid, sock), f"kiosk-{cid}")
        await self._record(cid, "open", kind="kiosk")
        await self._sync_queue()
        await msg.respond(wire.encode({"cid": cid, "worker": self.id, "node": self.node}))

    async def _run_kiosk(self, cid: str, sock: NatsSocket) -> None:
        from anima.protocol.server import Connection

        try:
            await Connection(sock, self.engine).run()  # type: ignore[arg-type]
        except Exception:
            log.exception("kiosk connection %s failed", cid)
        finally:
            await sock.aclose()
            self._kiosk.pop(cid, None)
            await self._record(cid, "closed", kind="kiosk")
            await self._sync_queue()
            with contextlib.suppress(Exception):
                await self._publish_heartbeat()


def _request(data: bytes, *required: str) -> dict[str, Any]:
    """A gateway's request body; ValueError says what is wrong with it."""
    if len(data) > MAX_OFFER_BYTES:
        raise ValueError(f"the request has {len(data)} bytes; the limit is {MAX_OFFER_BYTES}")
    try:
        req = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the request is not JSON") from None
    if not isinstance(req, dict):
        raise ValueError("the request is not a JSON object")
    for key in required:
        if not isinstance(req.get(key), str) or not req[key]:
            raise ValueError(f"the request lacks {key!r}")
    return req


def _open_error(exc: Exception) -> bytes:
    """What opening a session raised, as an error reply (unknown ones are bugs: 500)."""
    name = type(exc).__name__
    if isinstance(exc, ClientBusy):
        return wire.error(429, "busy", str(exc))
    if isinstance(exc, Busy) or name == "EngineBusy":
        return wire.error(503, "busy", str(exc) or "the worker is at its session limit")
    if isinstance(exc, SignallingError):
        return wire.error(400, "bad_sdp", str(exc))
    if name == "AvatarError" or isinstance(exc, KeyError | FileNotFoundError):
        return wire.error(404, "unknown_avatar", str(exc).strip("'\""))
    if isinstance(exc, ValueError):
        return wire.error(409 if "already open" in str(exc) else 400, "bad_request", str(exc))
    log.exception("opening a session failed")
    return wire.error(500, "internal", f"opening the session failed: {exc}")
