"""``anima gateway``: the stateless front of a cluster — page, API, tokens, signalling over NATS.

The gateway holds no sessions and no models. It serves the same page and REST API as
``anima serve`` (``/``, ``/api/config``, ``/api/token``, ``/api/offer``, ``/api/sessions/…``)
and the kiosk WebSocket at ``/ws``; it forwards each offer (and each kiosk connection) to a
worker over NATS request/reply and each per-session call over ``anima.s.<id>``. Media never
passes through it: the answer's ICE candidates point at the worker.

Picking a worker: the live workers with a free slot, most free slots first (from heartbeats),
then the queue group ``anima-workers`` (whose members all have a free slot). A worker that
says ``busy`` or answers garbage is skipped for the next of ``cluster.attempts`` tries.

Failure answers, never hangs: no worker free → ``503 busy`` with ``Retry-After``; NATS down →
``503 unavailable`` at once (the client reconnects in the background and the gateway recovers
when NATS is back); a worker answering garbage → ``502 bad_worker``; a worker silent for
``cluster.lost_after`` → its sessions are written ``lost`` in the session book, ``GET
/api/sessions/{id}`` says so, and their kiosk sockets close with 1011 (the page reconnects with
a new offer, which lands on another worker). Tokens: as ``anima serve`` (off loopback a session
token opens exactly one session; the book remembers every session id, so a replayed token gets
``409``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import nats
from fastapi import Body, FastAPI, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from pydantic import ValidationError

from anima.cluster import wire
from anima.cluster.book import SessionBook
from anima.cluster.directory import Directory
from anima.cluster.kiosk import bridge
from anima.config import Settings
from anima.server.app import STATIC
from anima.server.auth import TokenError, TokenSigner, check_operator, ice_servers, is_loopback
from anima.server.bodies import Answer, Candidate, Offer, TokenRequest, text_body
from anima.server.contract import install_error_handlers
from anima.server.limits import ServerLimits
from anima.server.registry import new_session_id
from anima.server.throttle import install_rate_limit, request_token, token_checker

log = logging.getLogger(__name__)

CONTROL_TIMEOUT = 3.0  # seconds for a per-session call (describe, say…) to be answered

FORWARDED = Counter(
    "anima_gateway_forwarded_total",
    "Offers and kiosk sockets forwarded, by outcome.",
    ["what", "outcome"],
)
FORWARD_SECONDS = Histogram(
    "anima_gateway_forward_seconds", "Request to a worker until its answer.", ["what"]
)


class GatewayError(Exception):
    """An HTTP error with a JSON body and optional headers (``Retry-After``)."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class Cluster:
    """The gateway's NATS side: connection, heartbeats, the session book, forwarding."""

    def __init__(self, settings: Settings) -> None:
        self.cfg = settings.cluster
        self.directory = Directory(self.cfg.lost_after)
        self.nc: Any = None
        self.book: SessionBook | None = None
        self.kiosk_lost: dict[str, dict[str, asyncio.Event]] = {}  # worker -> cid -> event
        self._tasks: list[asyncio.Task] = []

    @property
    def connected(self) -> bool:
        """True while the NATS connection is up."""
        return self.nc is not None and self.nc.is_connected

    async def start(self) -> None:
        """Connect in the background (retrying) and watch the workers."""
        self._tasks.append(asyncio.create_task(self._connect(), name="gateway-connect"))
        self._tasks.append(asyncio.create_task(self._watch(), name="gateway-watch"))

    async def _connect(self) -> None:
        async def quiet(exc: Exception) -> None:
            log.debug("nats: %s", exc)

        async def down() -> None:
            self.directory.pause()
            log.warning("lost the NATS connection; answering 503 until it is back")

        async def up() -> None:
            self.directory.resume()
            log.warning("NATS connection restored")

        while self.nc is None:
            try:
                nc = await nats.connect(
                    self.cfg.nats_url.split(","),
                    name="anima-gateway",
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    connect_timeout=2,
                    allow_reconnect=True,
                    error_cb=quiet,
                    disconnected_cb=down,
                    reconnected_cb=up,
                )
            except Exception as exc:  # NATS not up yet: keep answering 503 and retry
                log.debug("cannot reach NATS yet: %s", exc)
                await asyncio.sleep(0.5)
                continue
            await nc.subscribe(wire.HEARTBEATS, cb=self._on_heartbeat)
            self.nc = nc
            self.directory.resume()

    async def _on_heartbeat(self, msg: Any) -> None:
        try:
            self.directory.saw(wire.Heartbeat.parse(msg.data))
        except (wire.BadReply, wire.WorkerError) as exc:
            log.warning("ignored a malformed heartbeat on %s: %s", msg.subject, exc)

    async def session_book(self) -> SessionBook | None:
        """The session book (bound on first use; None while JetStream is unreachable)."""
        if self.book is None and self.connected:
            try:
                self.book = await SessionBook.open(
                    self.nc.jetstream(), self.cfg.bucket, self.cfg.session_ttl
                )
            except Exception as exc:
                log.warning("cannot open the session book: %s", exc)
        return self.book

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(min(0.25, self.cfg.heartbeat_seconds))
            for beat in self.directory.stale():
                log.warning("worker %s is lost (no heartbeat)", beat.worker)
                for event in self.kiosk_lost.pop(beat.worker, {}).values():
                    event.set()
                book = await self.session_book()
                if book is not None:
                    with contextlib.suppress(Exception):
                        await book.mark_lost(beat.worker, beat.sessions, "worker lost")

    async def aclose(self) -> None:
        """Stop watching and close the connection."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()

    def unavailable(self) -> GatewayError:
        """The answer while NATS is down."""
        return GatewayError(
            503,
            "unavailable",
            "the cluster's message bus (NATS) is unreachable; try again shortly",
            {"Retry-After": str(self.cfg.retry_after)},
        )

    async def forward(self, what: str, payload: dict[str, Any], *required: str) -> dict[str, Any]:
        """Send an ``offer`` or ``kiosk`` request to a worker with a free slot; its reply.

        With ``cluster.queue_seconds``, a request that finds every worker full waits that long
        for a slot (tried again every 0.25 s) before ``busy``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.queue_seconds
        while True:
            try:
                return await self._forward_once(what, payload, required)
            except GatewayError as exc:
                if exc.code != "busy" or loop.time() + 0.25 > deadline:
                    raise
            await asyncio.sleep(0.25)

    async def _forward_once(
        self, what: str, payload: dict[str, Any], required: tuple[str, ...]
    ) -> dict[str, Any]:
        if not self.connected:
            raise self.unavailable()
        body = wire.encode(payload)
        tried: set[str] = set()
        garbage: str | None = None
        for _ in range(self.cfg.attempts):
            picks = self.directory.candidates(tried)
            target = picks[0] if picks else None
            subject = wire.direct(target, what) if target else f"anima.{what}"
            if target:
                tried.add(target)
                self.directory.taken(target)
            try:
                with FORWARD_SECONDS.labels(what).time():
                    msg = await self.nc.request(subject, body, timeout=self.cfg.request_timeout)
            except NoRespondersError:
                if target is None:
                    break  # nobody in the queue group: every worker is full
                continue
            except NatsTimeout:
                garbage = f"worker {target or '(queue)'} did not answer in time"
                continue
            except Exception as exc:  # the connection dropped mid-request
                log.warning("forwarding a %s failed: %s", what, exc)
                raise self.unavailable() from None
            try:
                reply = wire.decode(msg.data, *required)
                FORWARDED.labels(what, "ok").inc()
                return reply
            except wire.BadReply as exc:
                log.warning("worker %s answered garbage: %s", target or "(queue)", exc)
                garbage = f"worker {target or '(queue)'}: {exc}"
            except wire.WorkerError as exc:
                if exc.code != "busy":
                    raise GatewayError(exc.status, exc.code, exc.message) from None
        if garbage is not None:
            FORWARDED.labels(what, "bad_worker").inc()
            raise GatewayError(502, "bad_worker", garbage)
        FORWARDED.labels(what, "busy").inc()
        raise GatewayError(
            503,
            "busy",
            "every worker is at capacity; try again shortly",
            {"Retry-After": str(self.cfg.retry_after)},
        )

    async def control(self, sid: str, op: str, **fields: Any) -> dict[str, Any]:
        """A per-session call to the worker that owns ``sid``."""
        if not self.connected:
            raise self.unavailable()
        try:
            msg = await self.nc.request(
                wire.control(sid), wire.encode({"op": op, **fields}), timeout=CONTROL_TIMEOUT
            )
        except (NoRespondersError, NatsTimeout):
            raise await self._gone(sid) from None
        except Exception:
            raise self.unavailable() from None
        try:
            return wire.decode(msg.data)
        except wire.BadReply as exc:
            raise GatewayError(502, "bad_worker", str(exc)) from None
        except wire.WorkerError as exc:
            raise GatewayError(exc.status, exc.code, exc.message) from None

    async def record(self, sid: str) -> dict[str, Any] | None:
        """The session book's record of ``sid``; ``open`` on a lost worker reads ``lost``."""
        book = await self.session_book()
        try:
            record = await book.get(sid) if book is not None else None
        except Exception as exc:  # JetStream timed out or went away: say so, never a 500
            log.warning("reading session %s from the book failed: %s", sid, exc)
            raise self.unavailable() from None
        if (
            record
            and record.get("state") == "open"
            and not self.directory.alive(str(record.get("worker")))
        ):
            record["state"] = "lost"
            with contextlib.suppress(Exception):
                await book.mark_lost(str(record["worker"]), [sid], "worker lost")  # type: ignore[union-attr]
        return record

    async def _gone(self, sid: str) -> GatewayError:
        record = await self.record(sid)
        if record is None:
            return GatewayError(404, "unknown_session", f"no open session {sid!r}")
        state = record.get("state")
        if state == "lost":
            return GatewayError(410, "lost", "the worker of this session was lost; reconnect")
        return GatewayError(410, "closed", f"session {sid!r} is {state}")


def create_gateway(settings: Settings, *, host: str | None = None) -> FastAPI:
    """The gateway app for ``settings`` (``host``: the bind address; decides token need)."""
    cfg = settings.webrtc
    bound = host or settings.server.host
    token_required = cfg.require_token if cfg.require_token is not None else not is_loopback(bound)
    signer = TokenSigner.from_settings(cfg)
    limits = ServerLimits(settings.server)
    cluster = Cluster(settings)
    text_model = text_body(settings.limits.max_text_chars)

    def spoken(raw: Any) -> Any:
        """A ``say`` / ``ask`` body checked as ``anima serve`` checks it (400 names the field)."""
        try:
            return text_model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise GatewayError(400, "bad_request", f"{where}: {first['msg']}") from None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await cluster.start()
        try:
            yield
        finally:
            await cluster.aclose()

    app = FastAPI(
        title="anima gateway",
        summary="Signalling and session API in front of anima workers on NATS.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.cluster = cluster
    app.state.signer = signer
    app.state.token_required = token_required

    install_rate_limit(
        app,
        limits,
        settings.server.messages_per_second,
        token_checker(cfg, signer) if token_required else None,
    )

    # The error contract of ``anima serve``: every error is {"error", "message"} (400 for a
    # body that fails validation, 404/405 JSON, 500 for a bug).
    install_error_handlers(app, {"sdp": "bad_sdp", "candidate": "bad_candidate"})

    @app.exception_handler(GatewayError)
    async def _error(request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.code, "message": exc.message}, status_code=exc.status, headers=exc.headers
        )

    def authorize(request: Request, sid: str | None = None, token: str | None = None) -> None:
        if not token_required:
            return
        presented = token or request_token(request)
        if check_operator(cfg, presented):
            return
        try:
            signer.verify(presented, sid)
        except TokenError as exc:
            raise GatewayError(401, "unauthorized", str(exc)) from None

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", tags=["server"])
    async def health() -> dict[str, Any]:
        """Liveness: NATS reachable, live workers and their free slots."""
        live = cluster.directory.live() if cluster.connected else []
        return {
            "status": "ok" if cluster.connected else "unavailable",
            "nats": cluster.connected,
            "workers": len(live),
            "free": sum(0 if b.draining else b.free for b in live),
            "token_required": token_required,
        }

    @app.get("/metrics", tags=["server"], response_class=Response)
    async def prometheus() -> Response:
        """Prometheus metrics (forwarded offers by outcome, time to a worker's answer)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/workers", tags=["server"])
    async def workers(request: Request) -> dict[str, Any]:
        """The live workers as their heartbeats describe them (operator, off loopback)."""
        if token_required and not check_operator(cfg, request_token(request)):
            raise GatewayError(401, "unauthorized", "the operator key is required")
        return {"workers": [vars(b) for b in cluster.directory.live()]}

    @app.get("/api/config", tags=["webrtc"])
    async def page_config(request: Request) -> dict[str, Any]:
        """ICE servers (fresh TURN credentials) for the page."""
        authorize(request)
        return {
            "ice_servers": ice_servers(cfg),
            "avatars": ["sample"],
            "token_required": token_required,
        }

    @app.post("/api/token", tags=["webrtc"])
    async def token(request: Request, body: TokenRequest | None = None) -> dict[str, Any]:
        """A token that opens one session for a short time (needs the operator key)."""
        if cfg.operator_key is not None or token_required:
            if cfg.operator_key is None:
                raise GatewayError(403, "forbidden", "set webrtc.operator_key to issue tokens")
            if not check_operator(cfg, request_token(request)):
                raise GatewayError(401, "unauthorized", "the operator key is required")
        sid = (body.session_id if body else None) or new_session_id()
        text, grant = signer.issue(sid)
        return {"token": text, "session_id": sid, "expires": grant.expires}

    @app.post("/api/offer", tags=["webrtc"], response_model=Answer)
    async def offer(request: Request, body: Offer) -> Answer:
        """Open a session on a worker with a free slot: SDP offer in, SDP answer out."""
        sid = None
        if token_required:
            try:
                sid = signer.verify(body.token or request_token(request)).session_id
            except TokenError as exc:
                raise GatewayError(401, "unauthorized", str(exc)) from None
            if not cluster.connected:
                raise cluster.unavailable()
            if await cluster.record(sid) is not None:
                raise GatewayError(409, "conflict", "this token's session was already opened")
        reply = await cluster.forward(
            "offer",
            {
                "sid": sid or new_session_id(),
                "sdp": body.sdp,
                "avatar": body.avatar,
                "greet": body.greet,
                "drive": body.drive,
                "client": getattr(request.state, "client", "?"),
                "local": getattr(request.state, "local", False),
            },
            "sdp",
            "session_id",
        )
        return Answer(sdp=reply["sdp"], session_id=reply["session_id"])

    @app.post("/api/sessions/{sid}/ice", tags=["webrtc"], status_code=204)
    async def ice(request: Request, sid: str, body: Candidate) -> Response:
        """A trickled ICE candidate, passed to the session's worker."""
        authorize(request, sid)
        await cluster.control(sid, "ice", **body.model_dump())
        return Response(status_code=204)

    @app.get("/api/sessions/{sid}", tags=["sessions"])
    async def get_session(request: Request, sid: str) -> dict[str, Any]:
        """One session's state (from its worker; ``lost`` or ``closed`` from the book)."""
        authorize(request, sid)
        try:
            return await cluster.control(sid, "describe")
        except GatewayError as exc:
            if exc.status != 410:
                raise
        record = await cluster.record(sid) or {}
        return {"id": sid, **record}

    @app.delete("/api/sessions/{sid}", tags=["sessions"], status_code=204)
    async def delete_session(request: Request, sid: str) -> Response:
        """End a session now."""
        authorize(request, sid)
        await cluster.control(sid, "close", reason="deleted")
        return Response(status_code=204)

    @app.post("/api/sessions/{sid}/close", tags=["sessions"], status_code=204)
    async def beacon(request: Request, sid: str, token: str | None = None) -> Response:
        """The page-unload beacon; unknown or gone sessions are fine."""
        authorize(request, sid, token)
        with contextlib.suppress(GatewayError):
            await cluster.control(sid, "close", reason="page closed")
        return Response(status_code=204)

    @app.post("/api/sessions/{sid}/say", tags=["sessions"], status_code=202)
    async def say(request: Request, sid: str, raw: Any = Body(...)) -> dict[str, Any]:  # noqa: B008
        """Make the avatar say exactly this (``{"text": …, "emotion": …}``)."""
        authorize(request, sid)
        body = spoken(raw)
        return await cluster.control(sid, "say", text=body.text, emotion=body.emotion)

    @app.post("/api/sessions/{sid}/ask", tags=["sessions"], status_code=202)
    async def ask(request: Request, sid: str, raw: Any = Body(...)) -> dict[str, Any]:  # noqa: B008
        """Typed user text, answered like speech (``{"text": …}``)."""
        authorize(request, sid)
        return await cluster.control(sid, "ask", text=spoken(raw).text)

    @app.post("/api/sessions/{sid}/interrupt", tags=["sessions"], status_code=202)
    async def interrupt(request: Request, sid: str) -> dict[str, Any]:
        """Stop the avatar speaking now."""
        authorize(request, sid)
        return await cluster.control(sid, "interrupt")

    @app.websocket("/ws")
    async def kiosk(ws: WebSocket) -> None:
        """The kiosk WebSocket protocol, served by a worker through NATS."""
        await ws.accept()
        cid = new_session_id()
        if token_required:
            try:
                cid = signer.verify(ws.query_params.get("token")).session_id
            except TokenError as exc:
                await _refuse(ws, "unauthorized", str(exc), 1008)
                return
        if not cluster.connected:
            await _refuse(ws, "unavailable", cluster.unavailable().message, 1013)
            return
        out = await cluster.nc.subscribe(wire.kiosk_out(cid))
        try:
            client = ws.client.host if ws.client else "?"
            try:
                reply = await cluster.forward("kiosk", {"cid": cid, "client": client}, "worker")
            except GatewayError as exc:
                await _refuse(ws, exc.code, exc.message, 1013 if exc.status == 503 else 1011)
                return
            lost = asyncio.Event()
            cluster.kiosk_lost.setdefault(reply["worker"], {})[cid] = lost
            try:
                await bridge(
                    cluster.nc,
                    cid,
                    ws.receive,
                    ws.send_text,
                    ws.send_bytes,
                    lambda code, reason: _close(ws, code, reason),
                    out,
                    lost,
                )
            finally:
                cluster.kiosk_lost.get(reply["worker"], {}).pop(cid, None)
        finally:
            with contextlib.suppress(Exception):
                await out.unsubscribe()

    return app


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await ws.close(code, reason)


async def _refuse(ws: WebSocket, code: str, message: str, close_code: int) -> None:
    """The kiosk protocol's fatal error frame, then close."""
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "code": code, "message": message, "fatal": True})
    await _close(ws, close_code, message[:120])
