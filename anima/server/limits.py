"""Per-client and per-token limits of ``anima serve``, and who the client really is.

The same counters as the kiosk WebSocket server (:mod:`anima.ratelimit`), applied to the
WebRTC server's HTTP requests (signalling and the session API) and data-channel messages:

- a token bucket per client address and one per presented token (``server.messages_per_second``,
  ``server.message_burst``): a request over either gets ``429 rate_limited`` with
  ``Retry-After``; a data-channel message over either is dropped with one ``rate_limited``
  error per episode;
- concurrent sessions per client address (``server.max_sessions_per_client``): one more offer
  gets ``429 busy``. A session token opens exactly one session (``409`` for a second offer), so
  sessions per token are capped at one by construction.

The client address is the TCP peer, unless the peer is one of ``server.trusted_proxies``: then
``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first address not
trusted is the client. With no trusted proxies the header is ignored, so a client cannot pick
its own rate-limit key by sending one. Only a loopback peer whose header was not believed is
"this machine" (:meth:`ServerLimits.local`), exempt from the per-client session cap.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from anima.config import ServerSettings
from anima.ratelimit import ClientSlots, TokenBucket

log = logging.getLogger(__name__)

MAX_KEYS = 10_000  # buckets kept; the least recently used are forgotten (bounded memory)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(entries: Iterable[str]) -> list[Network]:
    """Addresses or CIDRs as networks (ValueError names a bad entry)."""
    out: list[Network] = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted_proxies: {entry!r} is not an address or CIDR") from None
    return out


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # "[v6]:port"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # "v4:port"
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = getattr(ip, "ipv4_mapped", None)
    return mapped or ip


def _is_loopback(peer: str | None) -> bool:
    ip = _ip(peer) if peer else None
    return ip is not None and ip.is_loopback


def _trusted(peer: str | None, proxies: list[Network]) -> bool:
    ip = _ip(peer) if peer else None
    return ip is not None and any(ip in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: list[Network]) -> str:
    """The real client of a request from ``peer`` carrying ``X-Forwarded-For`` ``forwarded_for``.

    The header is believed only when ``peer`` is a trusted proxy, and only as far back as the
    chain of trusted proxies goes: its rightmost untrusted address is the client (entries left
    of that were written by the client itself and may be forged). A malformed entry stops the
    walk at the last good one.
    """
    peer = peer or "?"
    if not proxies or not forwarded_for:
        return peer
    ip = _ip(peer)
    if ip is None or not any(ip in net for net in proxies):
        return peer
    client = peer
    for hop in reversed(forwarded_for.split(",")):
        hop_ip = _ip(hop)
        if hop_ip is None:
            break
        client = str(hop_ip)
        if not any(hop_ip in net for net in proxies):
            break
    return client


def token_key(token: str) -> str:
    """A short, non-secret key for a presented token (the token itself is never kept)."""
    return "t:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:24]


class Buckets:
    """One :class:`TokenBucket` per key, at most ``MAX_KEYS`` of them (LRU)."""

    def __init__(
        self, rate: float, burst: float, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate, self.burst, self._now = rate, burst, now
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str) -> bool:
        """Spend one message of ``key``'s allowance (False: over its rate)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._now)
            if len(self._buckets) > MAX_KEYS:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take()

    def __len__(self) -> int:
        return len(self._buckets)


class ServerLimits:
    """The WebRTC server's rate buckets and session slots, from ``server.*`` settings."""

    def __init__(self, cfg: ServerSettings, now: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.proxies = parse_proxies(cfg.trusted_proxies)
        self.clients = Buckets(cfg.messages_per_second, cfg.message_burst, now)
        self.tokens = Buckets(cfg.messages_per_second, cfg.message_burst, now)
        self.slots = ClientSlots(cfg.max_sessions_per_client)
        self._warned = False  # the unlisted same-host proxy warning is logged once

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client address for limits and logs (see :func:`client_address`)."""
        if forwarded_for and not self.proxies and not self._warned and _is_loopback(peer):
            # Almost always a reverse proxy on this host that nobody listed: every client
            # behind it shares one rate bucket and skips the per-client session cap.
            self._warned = True
            log.warning(
                "a request from %s carries X-Forwarded-For but server.trusted_proxies is "
                "empty: the header is ignored; list a same-host reverse proxy there",
                peer,
            )
        return client_address(peer, forwarded_for, self.proxies)

    def local(self, peer: str | None, forwarded_for: str | None) -> bool:
        """True for a request from this machine itself: exempt from the per-client session cap.

        The TCP peer must be loopback and ``X-Forwarded-For`` must not have been believed: a
        header saying ``127.0.0.1`` names whoever the proxy saw, not this machine.
        """
        if not _is_loopback(peer):
            return False
        believed = bool(forwarded_for) and _trusted(peer, self.proxies)
        return not believed

    def allow(
        self,
        client: str,
        token: str | None = None,
        valid: Callable[[str], bool] | None = None,
    ) -> bool:
        """One message from ``client`` (presenting ``token``): False when over either rate.

        The client's bucket is charged first; only a message it allows charges the token's
        bucket (and only a token ``valid`` accepts, when given), so a client over its rate
        cannot create token buckets, and random tokens cannot push real ones out of the LRU.
        A token shared by many addresses is still capped by its own bucket.
        """
        if not self.clients.take(client):
            return False
        if token and (valid is None or valid(token)):
            return self.tokens.take(token_key(token))
        return True

    def retry_after(self) -> int:
        """Whole seconds until one more message is allowed (for the ``Retry-After`` header)."""
        return max(1, round(1 / self.cfg.messages_per_second))
