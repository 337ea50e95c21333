"""Access control for ``anima serve``: session tokens, the operator key, TURN credentials.

A session token is ``<payload>.<signature>`` in URL-safe base64: the payload is JSON
``{"sid": session id, "exp": unix expiry}``, the signature HMAC-SHA256 over the payload with
the server's token secret. A token lets its holder open and steer exactly one session, for a
short time; it is minted by ``POST /api/token``, which itself needs the operator key.

TURN credentials follow coturn's REST API (``use-auth-secret``): the username is
``"<expiry>:<user>"`` and the password base64(HMAC-SHA1(shared secret, username)), so coturn
can check them without a database and they expire on their own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import time
from dataclasses import dataclass

from anima.config import WebRTCSettings

LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class TokenError(ValueError):
    """A token that is missing, malformed, forged, expired or for another session."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_loopback(host: str) -> bool:
    """True when ``host`` (an address or name the server binds to) is only reachable locally."""
    host = host.strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname or 0.0.0.0 / :: (every interface)


@dataclass(frozen=True)
class Token:
    """A verified token: the session it opens and when it stops working (unix seconds)."""

    session_id: str
    expires: float


class TokenSigner:
    """Mints and checks session tokens with one HMAC key and an injectable clock."""

    def __init__(self, secret: bytes, ttl: float, clock=time.time) -> None:
        if len(secret) < 16:
            raise ValueError("the token secret must be at least 16 bytes")
        self._secret = secret
        self.ttl = ttl
        self._clock = clock

    @classmethod
    def from_settings(cls, cfg: WebRTCSettings) -> TokenSigner:
        """The configured secret, or a random one (tokens then die with the process)."""
        if cfg.token_secret is not None:
            secret = cfg.token_secret.get_secret_value().encode()
        else:
            secret = secrets.token_bytes(32)
        return cls(secret, cfg.token_ttl)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode("ascii"), hashlib.sha256).digest())

    def issue(self, session_id: str) -> tuple[str, Token]:
        """A new token string for ``session_id`` and what it grants."""
        expires = int(self._clock() + self.ttl)
        payload = _b64(json.dumps({"sid": session_id, "exp": expires}).encode())
        return f"{payload}.{self._sign(payload)}", Token(session_id, expires)

    def verify(self, token: str | None, session_id: str | None = None) -> Token:
        """The token's grant; :class:`TokenError` unless it is genuine, fresh and for
        ``session_id`` (when given)."""
        if not token:
            raise TokenError("a session token is required (get one from POST /api/token)")
        payload, _, signature = token.partition(".")
        if not payload or not signature:
            raise TokenError("the token is malformed")
        if not hmac.compare_digest(self._sign(payload), signature):
            raise TokenError("the token signature is invalid")
        try:
            claims = json.loads(_unb64(payload))
            sid, expires = str(claims["sid"]), float(claims["exp"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise TokenError("the token payload is malformed") from exc
        if self._clock() >= expires:
            raise TokenError("the token has expired")
        if session_id is not None and sid != session_id:
            raise TokenError("the token is for another session")
        return Token(sid, expires)


def check_operator(cfg: WebRTCSettings, presented: str | None) -> bool:
    """True when ``presented`` is the configured operator key (constant-time compare)."""
    if cfg.operator_key is None or not presented:
        return False
    return hmac.compare_digest(cfg.operator_key.get_secret_value().encode(), presented.encode())


def turn_credentials(
    secret: str, ttl: int, user: str = "anima", now: float | None = None
) -> tuple[str, str]:
    """coturn REST API credentials valid ``ttl`` seconds: (username, password)."""
    expiry = int((time.time() if now is None else now) + ttl)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers(cfg: WebRTCSettings, now: float | None = None) -> list[dict[str, object]]:
    """ICE servers as the browser's ``RTCConfiguration.iceServers`` wants them."""
    out: list[dict[str, object]] = []
    for server in cfg.ice_servers:
        entry: dict[str, object] = {"urls": list(server.urls)}
        if server.username is not None:
            entry["username"] = server.username
        if server.credential is not None:
            entry["credential"] = server.credential.get_secret_value()
        out.append(entry)
    if cfg.turn_urls and cfg.turn_secret is not None:
        user, password = turn_credentials(cfg.turn_secret.get_secret_value(), cfg.turn_ttl, now=now)
        out.append({"urls": list(cfg.turn_urls), "username": user, "credential": password})
    return out
