import base64
import hashlib
import hmac

import pytest

from anima.config import IceServer, WebRTCSettings
from anima.server.auth import (
    TokenError,
    TokenSigner,
    check_operator,
    ice_servers,
    is_loopback,
    turn_credentials,
)

SECRET = b"0123456789abcdef0123456789abcdef"


class Clock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_token_round_trip_and_scope():
    clock = Clock()
    signer = TokenSigner(SECRET, ttl=60, clock=clock)
    token, grant = signer.issue("sess-A")
    assert grant.expires == clock.t + 60
    assert signer.verify(token).session_id == "sess-A"
    assert signer.verify(token, "sess-A").session_id == "sess-A"
    with pytest.raises(TokenError, match="another session"):
        signer.verify(token, "sess-B")


def test_token_expires():
    clock = Clock()
    signer = TokenSigner(SECRET, ttl=60, clock=clock)
    token, _ = signer.issue("s")
    clock.t += 59
    signer.verify(token)
    clock.t += 1
    with pytest.raises(TokenError, match="expired"):
        signer.verify(token)


@pytest.mark.parametrize("bad", [None, "", "nodot", ".sig", "payload."])
def test_malformed_tokens(bad):
    with pytest.raises(TokenError):
        TokenSigner(SECRET, 60).verify(bad)


def test_forged_and_tampered_tokens():
    signer = TokenSigner(SECRET, 60)
    token, _ = signer.issue("s")
    other, _ = TokenSigner(b"another-secret-of-16+bytes", 60).issue("s")
    with pytest.raises(TokenError, match="signature"):
        signer.verify(other)
    payload, sig = token.split(".")
    forged = base64.urlsafe_b64encode(b'{"sid": "s", "exp": 99999999999}').rstrip(b"=").decode()
    with pytest.raises(TokenError, match="signature"):
        signer.verify(f"{forged}.{sig}")


def test_short_secret_refused():
    with pytest.raises(ValueError, match="16 bytes"):
        TokenSigner(b"short", 60)


def test_turn_credentials_follow_coturn_rest_api():
    user, password = turn_credentials("s3cret", 3600, user="bob", now=1000)
    assert user == "4600:bob"
    expected = base64.b64encode(hmac.new(b"s3cret", b"4600:bob", hashlib.sha1).digest()).decode()
    assert password == expected


def test_ice_servers_from_settings():
    cfg = WebRTCSettings(
        ice_servers=[IceServer(urls=["stun:stun.example.org:3478"])],
        turn_urls=["turn:turn.example.org:3478?transport=udp"],
        turn_secret="shared",
        turn_ttl=600,
    )
    servers = ice_servers(cfg, now=0)
    assert servers[0] == {"urls": ["stun:stun.example.org:3478"]}
    assert servers[1]["urls"] == ["turn:turn.example.org:3478?transport=udp"]
    assert servers[1]["username"] == "600:anima"
    assert ice_servers(WebRTCSettings()) == []


def test_loopback_detection():
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.5"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org"):
        assert not is_loopback(host), host


def test_operator_key():
    cfg = WebRTCSettings(operator_key="op-key")
    assert check_operator(cfg, "op-key")
    assert not check_operator(cfg, "op-kez")
    assert not check_operator(cfg, None)
    assert not check_operator(WebRTCSettings(), "anything")
