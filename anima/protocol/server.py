"""The kiosk WebSocket server: one connection = one :class:`~anima.engine.Session`.

A connection starts with the client's ``hello`` (media mode, mic format, avatar); the server
answers ``welcome`` and from then on streams the session's output while it reads mic PCM
(binary messages) and commands (JSON text). Errors in a message get an ``error`` frame and the
connection goes on; only a bad version, a wrong token, a full server ("busy") or silence longer
than ``server.idle_timeout`` close it. See ``docs/protocol.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from anima.engine import Engine, EngineBusy, Session
from anima.events import ErrorEvent, FaceParams
from anima.frames import AudioFrame, VideoFrame
from anima.pipeline import run_blocking
from anima.protocol.messages import (
    KIND_AUDIO,
    KIND_VIDEO,
    VERSION,
    AudioFormat,
    ProtocolError,
    bool_field,
    pack_media,
    parse_hello,
    parse_text,
    text_field,
)
from anima.ratelimit import ClientSlots, TokenBucket

log = logging.getLogger(__name__)

CONNECTIONS = Gauge("anima_ws_connections", "Open kiosk WebSocket connections.")
ERRORS = Counter("anima_ws_errors_total", "Error frames sent to kiosk clients.", ["code"])
RATE_LIMITED = Counter("anima_ws_rate_limited_total", "Client messages dropped over the rate.")

_HARD_LIMIT_FACTOR = 4  # beyond limit x this, websockets closes with 1009 instead of an error frame
_HELLO_TIMEOUT = 10.0  # seconds a new connection has to say hello


class ProtocolServer:
    """Serves the kiosk protocol for ``engine`` on ``host:port`` (loopback by default)."""

    def __init__(self, engine: Engine, host: str | None = None, port: int | None = None) -> None:
        self.engine = engine
        cfg = engine.settings.server
        self.host = host if host is not None else cfg.host
        self.port = port if port is not None else cfg.port
        self._server: Server | None = None
        self.clients = ClientSlots(cfg.max_sessions_per_client)  # sessions per address

    async def start(self) -> int:
        """Start listening; returns the bound port (useful with port 0)."""
        limit = self.engine.settings.server.ws_max_message_bytes
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            max_size=limit * _HARD_LIMIT_FACTOR,
            max_queue=16,
            compression=None,  # media is already compressed; permessage-deflate costs CPU
            process_response=json_refusal,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        return self.port

    async def serve_forever(self) -> None:
        """Run until cancelled."""
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def aclose(self) -> None:
        """Stop accepting, close every connection (their sessions close too)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> ProtocolServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _handle(self, ws: ServerConnection) -> None:
        CONNECTIONS.inc()
        try:
            await Connection(ws, self.engine, self.clients).run()
        finally:
            CONNECTIONS.dec()


class Connection:
    """One client: its session, its reader loop and its sender task."""

    def __init__(
        self, ws: ServerConnection, engine: Engine, clients: ClientSlots | None = None
    ) -> None:
        self.ws = ws
        self.engine = engine
        self.cfg = cfg = engine.settings.server
        self.clients = clients if clients is not None else ClientSlots(cfg.max_sessions_per_client)
        remote = getattr(ws, "remote_address", None)
        self.client = str(remote[0]) if isinstance(remote, tuple) and remote else "?"
        self._slot = False  # holds one of the client's session slots
        self._bucket = TokenBucket(cfg.messages_per_second, cfg.message_burst)
        self._limited = False  # told the client it is over its rate (once per episode)
        self.speech_seconds = 0.0  # mic audio received in this session
        self.session: Session | None = None
        self.audio = AudioFormat()
        self._send_lock = asyncio.Lock()
        self._sender: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Read messages until the client leaves, says bye or falls silent."""
        try:
            while True:
                timeout = (
                    self.cfg.idle_timeout
                    if self.session
                    else min(_HELLO_TIMEOUT, self.cfg.idle_timeout)
                )
                try:
                    async with asyncio.timeout(timeout):
                        data = await self.ws.recv()
                except TimeoutError:
                    await self._error(ProtocolError("timeout", "no message in time; closing", True))
                    await self.ws.close(1001, "idle timeout")
                    return
                try:
                    if not await self._on_message(data):
                        return
                except ProtocolError as exc:
                    await self._error(exc)
                    if exc.fatal:
                        await self.ws.close(_close_code(exc.code), exc.message[:120])
                        return
        except ConnectionClosed:
            return
        finally:
            await self._teardown()

    async def _teardown(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._sender
        if self.session is not None:
            await self.session.aclose()
            self.session = None
        if self._slot:
            self._slot = False
            self.clients.release(self.client)

    # -- input -------------------------------------------------------------------------------

    async def _on_message(self, data: str | bytes) -> bool:
        """Handle one message; False ends the connection (bye)."""
        if not self._bucket.take():
            # Over its rate: the message is dropped, the client told once, others unaffected.
            RATE_LIMITED.inc()
            if self._limited:
                return True
            self._limited = True
            raise ProtocolError(
                "rate_limited",
                f"more than {self.cfg.messages_per_second:g} messages a second; "
                "messages are being dropped",
            )
        self._limited = False
        if len(data) > self.cfg.ws_max_message_bytes:
            raise ProtocolError(
                "too_big",
                f"the message has {len(data)} bytes; the limit is {self.cfg.ws_max_message_bytes}",
            )
        if isinstance(data, bytes):
            if self.session is None:
                raise ProtocolError("not_ready", "send hello before any audio")
            pcm = self.audio.decode(data)
            seconds = len(pcm) / max(1, self.audio.rate * self.audio.channels)
            if self.speech_seconds + seconds > self.cfg.max_speech_seconds:
                if self.speech_seconds <= self.cfg.max_speech_seconds:
                    self.speech_seconds += seconds  # past the limit: told once
                    raise ProtocolError(
                        "speech_limit",
                        f"this session has sent {self.cfg.max_speech_seconds:g} s of audio, "
                        "its limit; further audio is ignored",
                    )
                return True
            self.speech_seconds += seconds
            if len(pcm):
                try:
                    self.session.push_audio(pcm, self.audio.rate, self.audio.channels)
                except ValueError as exc:  # a drive session checks its audio at once
                    raise ProtocolError("bad_audio", _one_line(exc)) from None
            return True
        msg = parse_text(data)
        kind = msg["type"]
        if kind == "hello":
            await self._hello(msg)
            return True
        if kind == "ping":
            await self._send_json({"type": "pong", "id": msg.get("id")})
            return True
        if kind == "bye":
            await self._send_json({"type": "bye"})
            await self.ws.close(1000, "bye")
            return False
        session = self.session
        if session is None:
            raise ProtocolError("not_ready", f"send hello before '{kind}'")
        await self._command(session, kind, msg)
        await self._send_json({"type": "ack", "command": kind, "id": msg.get("id")})
        return True

    async def _command(self, session: Session, kind: str, msg: dict[str, Any]) -> None:
        if session.drive and kind in ("say", "ask"):
            raise ProtocolError("out_of_order", f"'{kind}' is not available in a drive session")
        try:
            if kind == "say":
                emotion = msg.get("emotion", "neutral")
                if not isinstance(emotion, str):
                    raise ProtocolError("bad_message", "'emotion' must be a string")
                await session.say(text_field(msg), emotion)
            elif kind == "ask":
                await session.ask(text_field(msg))
            elif kind == "interrupt":
                await session.interrupt(str(msg.get("reason", "user"))[:40])
            elif kind == "set_avatar":
                await session.set_avatar(text_field(msg, "avatar"))
            elif kind == "set_persona":
                persona = msg.get("persona")
                if not isinstance(persona, dict):
                    raise ProtocolError("bad_message", "'set_persona' needs an object 'persona'")
                session.set_persona(persona)
            elif kind == "presence":
                session.presence(bool_field(msg, "present"))
            elif kind == "ptt_start":
                if session.listening != "ptt":
                    raise ProtocolError("out_of_order", "ptt_start needs hello listening 'ptt'")
                session.ptt_start()
            elif kind == "ptt_stop":
                if session.listening != "ptt":
                    raise ProtocolError("out_of_order", "ptt_stop needs hello listening 'ptt'")
                session.ptt_stop()
        except ProtocolError:
            raise
        except Exception as exc:  # AvatarError, ValueError from validation, pydantic errors
            code = "avatar" if kind == "set_avatar" else "bad_message"
            raise ProtocolError(code, _one_line(exc)) from None

    async def _hello(self, msg: dict[str, Any]) -> None:
        if self.session is not None:
            raise ProtocolError("out_of_order", "hello was already received on this connection")
        hello = parse_hello(msg)
        secret = self.cfg.token_secret
        if secret is not None and not hmac.compare_digest(
            (hello.token or "").encode(), secret.get_secret_value().encode()
        ):
            raise ProtocolError("unauthorized", "a valid 'token' is required in hello", True)
        if not self.clients.acquire(self.client):
            raise ProtocolError(
                "busy",
                f"this client already has {self.clients.limit} open sessions; close one first",
                True,
            )
        self._slot = True
        try:
            session = self.engine.session(
                hello.avatar,
                user_id=hello.user_id,
                media=hello.media,  # type: ignore[arg-type]
                greet=hello.greet,
                listening=hello.listening,  # type: ignore[arg-type]
                drive=hello.drive,
            )
        except EngineBusy as exc:
            raise ProtocolError("busy", str(exc), True) from None
        try:
            await session.start()
        except Exception as exc:  # unknown avatar, model failure: no session, say why
            await session.aclose()
            raise ProtocolError(
                "avatar" if "avatar" in str(exc) else "internal", _one_line(exc), True
            ) from None
        self.session = session
        self.audio = hello.audio
        s = self.engine.settings
        await self._send_json(
            {
                "type": "welcome",
                "version": VERSION,
                "session": session.id,
                "media": session.media,
                "listening": session.listening,
                "drive": session.drive,
                "output": {
                    "audio": None
                    if session.media == "events"
                    else {"format": "s16le", "rate": session.sample_rate, "channels": 1},
                    "video": {"codec": "jpeg", "width": s.render.size, "height": s.render.size}
                    if session.media == "video"
                    else None,
                    "fps": session.fps,
                },
                "limits": {"max_message_bytes": self.cfg.ws_max_message_bytes},
            }
        )
        self._sender = asyncio.create_task(self._send_output(session), name="ws-sender")

    # -- output ------------------------------------------------------------------------------

    async def _send_output(self, session: Session) -> None:
        quality = self.cfg.jpeg_quality
        try:
            async for item in session.frames():
                if isinstance(item, AudioFrame):
                    payload = np.asarray(item.pcm, "<i2").tobytes()
                    await self._send(
                        pack_media(KIND_AUDIO, item.turn, item.pts, payload, bool(item.turn))
                    )
                elif isinstance(item, VideoFrame):
                    jpeg = await run_blocking(encode_jpeg, item.image, quality)
                    await self._send(pack_media(KIND_VIDEO, item.turn, item.index, jpeg))
                elif isinstance(item, FaceParams):
                    await self._send_json(item.to_json())
                elif isinstance(item, ErrorEvent):
                    await self._send_json({**item.to_json(), "code": "backend", "fatal": False})
                elif hasattr(item, "to_json"):
                    await self._send_json(item.to_json())
        except ConnectionClosed:
            return

    async def _send(self, data: str | bytes) -> None:
        async with self._send_lock:
            await self.ws.send(data)

    async def _send_json(self, msg: dict[str, Any]) -> None:
        await self._send(json.dumps(msg, separators=(",", ":")))

    async def _error(self, exc: ProtocolError) -> None:
        ERRORS.labels(exc.code).inc()
        with contextlib.suppress(ConnectionClosed):
            await self._send_json(exc.to_json())


def encode_jpeg(image: np.ndarray, quality: int = 80) -> bytes:
    """An RGB uint8 image as JPEG bytes."""
    import cv2

    ok, buf = cv2.imencode(
        ".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def json_refusal(
    connection: ServerConnection, request: Request, response: Response
) -> Response | None:
    """A refused handshake (a plain HTTP request, a bad upgrade, shutting down) as JSON.

    The same body as ``anima serve``'s errors, ``{"error": code, "message": one line}``,
    instead of websockets' plain text; the status and its headers (``Upgrade``) are kept.
    """
    if response.status_code < 400:
        return None
    codes = {426: "upgrade_required", 500: "internal", 503: "busy"}
    text = bytes(response.body).decode("utf-8", "replace").strip().splitlines()
    message = " ".join(text) or response.reason_phrase
    body = json.dumps({"error": codes.get(response.status_code, "bad_request"), "message": message})
    headers = Headers(
        [(k, v) for k, v in response.headers.raw_items() if k.lower() not in _BODY_HEADERS]
    )
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = str(len(body.encode()))
    return Response(response.status_code, response.reason_phrase, headers, body.encode())


_BODY_HEADERS = {"content-type", "content-length"}


def _close_code(code: str) -> int:
    return {"busy": 1013, "unauthorized": 1008, "version": 1008, "timeout": 1001}.get(code, 1008)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
