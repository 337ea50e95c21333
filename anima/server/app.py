"""The ASGI app of ``anima serve``: the page, WebRTC signalling and the REST API.

Routes (OpenAPI docs at ``/docs``):

- ``GET /`` the chat page, ``/static/*`` its files;
- ``GET /api/health``, ``GET /metrics`` (Prometheus);
- ``GET /api/strings?lang=`` the page's strings (English, Chinese) from the language packs;
- ``GET /api/config`` ICE servers (with fresh TURN credentials) and avatars for the page;
- ``POST /api/token`` (operator key) a short-lived token scoped to one new session id;
- ``POST /api/offer`` SDP offer → answer; the session opens (non-trickle from the server:
  aiortc puts every candidate in the answer; the page may trickle late candidates with
  ``POST /api/sessions/{id}/ice``);
- ``GET /api/sessions``, ``GET|DELETE /api/sessions/{id}``, ``POST /api/sessions/{id}/say``,
  ``/ask``, ``/interrupt``, ``/close`` (the page-unload beacon).

Limits (:mod:`anima.server.limits`): every ``/api/*`` request but ``/api/health`` spends from
a token bucket of its client address and, once that allows it, of its token (when tokens are
required, only a genuine one) (``429 rate_limited``); an offer past
``server.max_sessions_per_client`` gets ``429 busy``, past ``server.max_sessions`` ``503 busy``.
The client address honours ``X-Forwarded-For`` only from ``server.trusted_proxies``. On
shutdown the registry drains (:meth:`Registry.drain`): new offers get ``503 busy``, open
sessions finish their turn for up to ``server.drain_seconds``, then close.

Access: bound to loopback, nothing needs a token. Otherwise (or with
``webrtc.require_token``) signalling and per-session calls need a session token (or the
operator key), and listing sessions needs the operator key. CORS allows only
``webrtc.cors_origins``.

The contract (:mod:`anima.server.contract`, :mod:`anima.server.bodies`): every error, from a
handler, validation (400, not FastAPI's 422), routing (404; 405 with ``Allow``), the limiter or
CORS, is JSON ``{"error": code, "message": one line}``; each route documents every status it
can answer with; bodies are typed as tightly as the handlers check them; the routes that need
a token declare bearer security only when this server requires tokens; an offer's response
links the calls that take its ``session_id``. ``tests/server/test_contract.py`` runs
schemathesis (all checks) against it.
"""

# No ``from __future__ import annotations`` here: the routes' annotations name models made per
# app (the text body's length follows the settings), which FastAPI must see as classes.
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request, Security
from fastapi.responses import FileResponse, Response
from fastapi.security import HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from anima.config import Settings
from anima.server import metrics
from anima.server.auth import TokenError, TokenSigner, check_operator, ice_servers, is_loopback
from anima.server.bodies import (
    Answer,
    Avatars,
    Candidate,
    Health,
    Offer,
    PageConfig,
    PageStrings,
    Sessions,
    Status,
    TokenGrant,
    TokenRequest,
    text_body,
)
from anima.server.contract import (
    ApiError,
    JsonCORSMiddleware,
    errors,
    install_error_handlers,
)
from anima.server.limits import ServerLimits
from anima.server.registry import Busy, ClientBusy, Registry, UnknownSession, new_session_id
from anima.server.rtc import SignallingError
from anima.server.throttle import install_rate_limit, request_token, token_checker

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
# What a client can do with the session an offer opened (OpenAPI links, for clients and testers).
SESSION_LINKS = {
    op: {"operationId": op, "parameters": {"sid": "$response.body#/session_id"}}
    for op in (
        "getSession",
        "addCandidate",
        "say",
        "ask",
        "interrupt",
        "closeSession",
        "deleteSession",
    )
}


def create_app(
    settings: Settings, engine: Any | None = None, *, host: str | None = None
) -> FastAPI:
    """The app for ``settings``; ``engine`` is built (and loaded) at startup unless given.

    ``host`` is the address the server binds to; it decides whether tokens are required.
    """
    cfg = settings.webrtc
    bound = host or settings.server.host
    token_required = cfg.require_token if cfg.require_token is not None else not is_loopback(bound)
    signer = TokenSigner.from_settings(cfg)
    limits = ServerLimits(settings.server)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        eng = engine
        owned = eng is None
        if owned:
            from anima.engine import Engine

            eng = Engine.from_config(settings)
            await eng.load()
        if hasattr(eng, "avatar"):
            await eng.avatar(None)  # prepare the sample portrait now, not in the first offer
        registry = Registry(eng, settings, limits)
        registry.start()
        state["registry"] = registry
        app.state.registry = registry
        try:
            yield
        finally:
            # Finish the turns in flight (a signal may have started this already), then close.
            await registry.drain(settings.server.drain_seconds)
            if owned:
                await eng.aclose()

    app = FastAPI(
        title="anima",
        summary="Talk to a digital human in the browser (WebRTC) and steer its sessions.",
        version="0.1.0",
        lifespan=lifespan,
    )

    install_rate_limit(
        app,
        limits,
        settings.server.messages_per_second,
        token_checker(cfg, signer) if token_required else None,
    )

    # Added last, so outermost: a 429 from the limiter still carries the CORS headers (the
    # page can read it), and preflights are answered here without spending from the buckets.
    if cfg.cors_origins:
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=cfg.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )

    install_error_handlers(app, {"sdp": "bad_sdp", "candidate": "bad_candidate"})

    # The OpenAPI security of the routes that need a token: declared only when one is needed,
    # so the schema says what this server (bound here, so configured) really asks for.
    bearer = HTTPBearer(
        auto_error=False,
        scheme_name="token",
        description="A session token from POST /api/token, or the operator key.",
    )
    needs_token = [Security(bearer)] if token_required else []
    operator_issues = cfg.operator_key is not None or token_required
    needs_operator = [Security(bearer)] if operator_issues else []
    TextBody = text_body(settings.limits.max_text_chars)  # a model class made for these settings

    def registry() -> Registry:
        return state["registry"]

    def authorize(request: Request, sid: str | None = None, token: str | None = None) -> None:
        """Session-scoped access: operator key, or a token for ``sid`` (any, if None)."""
        if not token_required:
            return
        presented = token or request_token(request)
        if check_operator(cfg, presented):
            return
        try:
            signer.verify(presented, sid)
        except TokenError as exc:
            metrics.REFUSED.labels("token").inc()
            raise ApiError(401, "unauthorized", str(exc)) from None

    def operator_only(request: Request) -> None:
        if not token_required:
            return
        if not check_operator(cfg, request_token(request)):
            metrics.REFUSED.labels("operator").inc()
            raise ApiError(401, "unauthorized", "the operator key is required")

    def _not_draining() -> None:
        if registry().draining:
            raise ApiError(503, "busy", "the server is shutting down; no new turns")

    def _not_driven(rtc: Any, what: str) -> None:
        # As the kiosk WebSocket server: a drive session's only voice is the driver's audio.
        if rtc.session.drive:
            raise ApiError(409, "unavailable", f"'{what}' is not available in a drive session")

    def session(sid: str):
        try:
            return registry().get(sid)
        except UnknownSession as exc:
            raise ApiError(404, "unknown_session", str(exc)) from None

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/health", tags=["server"], operation_id="health", response_model=Health)
    async def health() -> dict[str, Any]:
        """Liveness and load."""
        reg = registry()
        return {
            "status": "draining" if reg.draining else "ok",
            "sessions": len(reg.sessions),
            "max_sessions": reg.max_sessions,
            "token_required": token_required,
        }

    @app.get(
        "/metrics",
        tags=["server"],
        operation_id="metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
    )
    async def prometheus() -> Response:
        """Prometheus metrics (sessions, refusals, turn latency, pipeline stages)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get(
        "/api/avatars",
        tags=["avatars"],
        operation_id="listAvatars",
        response_model=Avatars,
        responses=errors(429),
    )
    async def avatars() -> dict[str, list[str]]:
        """Avatars a session may use."""
        return {"avatars": _avatar_names(registry().engine)}

    @app.get(
        "/api/strings",
        tags=["server"],
        operation_id="pageStrings",
        response_model=PageStrings,
        responses=errors(429),
    )
    async def strings(
        lang: str = Query("", max_length=35, description="zh-CN, en…; empty: the persona's"),
    ) -> dict[str, Any]:
        """The page's strings in ``lang``; unknown languages and missing keys get English."""
        from anima.lang import LanguageError, get_pack, members, page_strings

        try:
            code = members(get_pack(lang or registry().engine.settings.persona.language))[0].code
        except LanguageError:
            code = "en"
        return {"lang": code, "strings": page_strings(code)}

    @app.get(
        "/api/config",
        tags=["webrtc"],
        operation_id="pageConfig",
        response_model=PageConfig,
        responses=errors(401, 429),
        dependencies=needs_token,
    )
    async def page_config(request: Request) -> dict[str, Any]:
        """What the page needs before its offer: ICE servers (fresh TURN credentials)."""
        authorize(request)
        return {
            "ice_servers": ice_servers(cfg),
            "avatars": _avatar_names(registry().engine),
            "token_required": token_required,
        }

    @app.post(
        "/api/token",
        tags=["webrtc"],
        operation_id="issueToken",
        response_model=TokenGrant,
        responses=errors(400, 401, 403, 429),
        dependencies=needs_operator,
    )
    async def token(request: Request, body: TokenRequest | None = None) -> dict[str, Any]:
        """A token that opens one session for a short time (needs the operator key)."""
        if operator_issues:
            if cfg.operator_key is None:
                raise ApiError(403, "forbidden", "set webrtc.operator_key to issue tokens")
            if not check_operator(cfg, request_token(request)):
                metrics.REFUSED.labels("operator").inc()
                raise ApiError(401, "unauthorized", "the operator key is required")
        sid = (body.session_id if body else None) or new_session_id()
        text, grant = signer.issue(sid)
        return {"token": text, "session_id": sid, "expires": grant.expires}

    @app.post(
        "/api/offer",
        tags=["webrtc"],
        operation_id="openSession",
        response_model=Answer,
        responses={**errors(400, 401, 404, 409, 429, 500, 503), 200: {"links": SESSION_LINKS}},
        dependencies=needs_token,
    )
    async def offer(request: Request, body: Offer) -> Answer:
        """Open a session: SDP offer in, SDP answer out (candidates included).

        Needs a session token (in the body or as a bearer token) when tokens are required;
        the operator key opens a session of a new id.
        """
        sid = None
        if token_required:
            presented = body.token or request_token(request)
            if not check_operator(cfg, presented):
                try:
                    sid = signer.verify(presented).session_id
                except TokenError as exc:
                    metrics.REFUSED.labels("token").inc()
                    raise ApiError(401, "unauthorized", str(exc)) from None
                if sid in registry().sessions:
                    raise ApiError(409, "conflict", "this token's session is already open")
        client = getattr(request.state, "client", None) or "?"
        try:
            rtc, answer = await registry().open(
                sid,
                body.avatar,
                body.sdp,
                greet=body.greet,
                client=client,
                drive=body.drive,
                local=getattr(request.state, "local", False),
            )
        except ClientBusy as exc:
            raise ApiError(429, "busy", str(exc)) from None
        except Busy as exc:
            raise ApiError(503, "busy", str(exc)) from None
        except SignallingError as exc:
            metrics.REFUSED.labels("bad_sdp").inc()
            raise ApiError(400, "bad_sdp", str(exc)) from None
        except Exception as exc:
            raise _engine_error(exc) from None
        return Answer(sdp=answer.sdp, session_id=rtc.id)

    @app.post(
        "/api/sessions/{sid}/ice",
        tags=["webrtc"],
        operation_id="addCandidate",
        status_code=204,
        responses=errors(400, 401, 404, 429),
        dependencies=needs_token,
    )
    async def ice(request: Request, sid: str, body: Candidate) -> Response:
        """A trickled ICE candidate from the page."""
        authorize(request, sid)
        try:
            await session(sid).add_candidate(body.candidate, body.sdpMid, body.sdpMLineIndex)
        except SignallingError as exc:
            raise ApiError(400, "bad_candidate", str(exc)) from None
        return Response(status_code=204)

    @app.get(
        "/api/sessions",
        tags=["sessions"],
        operation_id="listSessions",
        response_model=Sessions,
        responses=errors(401, 429),
        dependencies=needs_token,
    )
    async def list_sessions(request: Request) -> dict[str, Any]:
        """Every open session (operator)."""
        operator_only(request)
        return {"sessions": [s.describe() for s in registry().sessions.values()]}

    @app.get(
        "/api/sessions/{sid}",
        tags=["sessions"],
        operation_id="getSession",
        responses=errors(401, 404, 429),
        dependencies=needs_token,
    )
    async def get_session(request: Request, sid: str) -> dict[str, Any]:
        """One session's state and counters."""
        authorize(request, sid)
        return session(sid).describe()

    @app.delete(
        "/api/sessions/{sid}",
        tags=["sessions"],
        operation_id="deleteSession",
        status_code=204,
        responses=errors(401, 404, 429),
        dependencies=needs_token,
    )
    async def delete_session(request: Request, sid: str) -> Response:
        """End a session now."""
        authorize(request, sid)
        await session(sid).close("deleted")
        return Response(status_code=204)

    @app.post(
        "/api/sessions/{sid}/close",
        tags=["sessions"],
        operation_id="closeSession",
        status_code=204,
        responses=errors(401, 429),
        dependencies=needs_token,
    )
    async def beacon(
        request: Request,
        sid: str,
        token: str | None = Query(
            None, max_length=1024, description="The session token (a beacon sends no header)."
        ),
    ) -> Response:
        """The page-unload beacon (``navigator.sendBeacon``); unknown ids are fine."""
        authorize(request, sid, token)
        rtc = registry().sessions.get(sid)
        if rtc is not None:
            await rtc.close("page closed")
        return Response(status_code=204)

    @app.post(
        "/api/sessions/{sid}/say",
        tags=["sessions"],
        operation_id="say",
        status_code=202,
        response_model=Status,
        responses=errors(400, 401, 404, 409, 429, 503),
        dependencies=needs_token,
    )
    async def say(request: Request, sid: str, body: TextBody) -> dict[str, str]:
        """Make the avatar say exactly this (queued after current speech)."""
        authorize(request, sid)
        rtc = session(sid)
        _not_draining()
        _not_driven(rtc, "say")
        rtc.touch()
        await _call(rtc.session.say(body.text, body.emotion))
        return {"status": "queued"}

    @app.post(
        "/api/sessions/{sid}/ask",
        tags=["sessions"],
        operation_id="ask",
        status_code=202,
        response_model=Status,
        responses=errors(400, 401, 404, 409, 429, 503),
        dependencies=needs_token,
    )
    async def ask(request: Request, sid: str, body: TextBody) -> dict[str, str]:
        """Typed user text, answered like speech."""
        authorize(request, sid)
        rtc = session(sid)
        _not_draining()
        _not_driven(rtc, "ask")
        rtc.touch()
        await _call(rtc.session.ask(body.text))
        return {"status": "asked"}

    @app.post(
        "/api/sessions/{sid}/interrupt",
        tags=["sessions"],
        operation_id="interrupt",
        status_code=202,
        response_model=Status,
        responses=errors(401, 404, 409, 429),
        dependencies=needs_token,
    )
    async def interrupt(request: Request, sid: str) -> dict[str, str]:
        """Stop the avatar speaking now."""
        authorize(request, sid)
        await _call(session(sid).session.interrupt("operator"))
        return {"status": "interrupted"}

    app.state.token_required = token_required
    app.state.signer = signer
    app.state.limits = limits
    return app


async def _call(work) -> None:
    try:
        await work
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    except RuntimeError as exc:  # the session closed under the request
        raise ApiError(409, "unavailable", str(exc)) from None


def _avatar_names(engine: Any) -> list[str]:
    names = ["sample"]
    store = getattr(engine, "avatars", None)
    if store is not None:
        names += [n for n in store.names() if n != "sample"]
    return names


def _engine_error(exc: Exception) -> ApiError:
    """Map what ``Engine.session`` raises to an HTTP error (unknown ones are bugs: 500)."""
    name = type(exc).__name__
    if name == "EngineBusy":
        metrics.REFUSED.labels("busy").inc()
        return ApiError(503, "busy", str(exc) or "the engine is at its session limit")
    if name == "AvatarError" or isinstance(exc, KeyError | FileNotFoundError):
        return ApiError(404, "unknown_avatar", str(exc).strip("'\""))
    if isinstance(exc, ValueError):
        return ApiError(400, "bad_request", str(exc))
    log.exception("opening a session failed")
    return ApiError(500, "internal", f"opening the session failed: {exc}")
