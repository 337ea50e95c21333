"""What gateways and workers say to each other over NATS: subjects and JSON messages.

Subjects (``<wid>`` a worker id, ``<sid>`` a session id, ``<cid>`` a kiosk connection id):

- ``anima.offer`` / ``anima.kiosk`` — the queue group ``anima-workers``: a worker is a member
  only while it has a free slot;
- ``anima.w.<wid>.offer`` / ``anima.w.<wid>.kiosk`` — the same, to one worker (the gateway picks
  the one with the most free slots from the heartbeats and falls back to the queue group);
- ``anima.hb.<wid>`` — a worker's heartbeat (:class:`Heartbeat`) every
  ``cluster.heartbeat_seconds``;
- ``anima.s.<sid>`` — request/reply control of one WebRTC session (``op``: say, ask,
  interrupt, close, describe, ice);
- ``anima.k.<cid>.in`` / ``anima.k.<cid>.out`` — one kiosk WebSocket's messages, each with the
  header ``k``: ``t`` (text), ``b`` (binary) or ``close`` (the body is the close code and reason).

A reply is a JSON object; an error reply is ``{"error": code, "message": line, "status": http}``.
Anything else a gateway gets back (not JSON, not an object, missing fields) is
:class:`BadReply`: a worker answering garbage costs its caller one clear error, nothing more.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUE = "anima-workers"
OFFER = "anima.offer"
KIOSK = "anima.kiosk"
HEARTBEATS = "anima.hb.*"
SERVICE = "anima"  # the NATS micro service name workers register under
KIND = "k"  # the header naming a kiosk message's kind


def direct(worker: str, what: str) -> str:
    """One worker's own ``offer`` or ``kiosk`` subject."""
    return f"anima.w.{worker}.{what}"


def heartbeat_subject(worker: str) -> str:
    """Where ``worker`` publishes its heartbeats."""
    return f"anima.hb.{worker}"


def control(sid: str) -> str:
    """The control subject of session ``sid``."""
    return f"anima.s.{sid}"


def kiosk_in(cid: str) -> str:
    """Client → worker messages of kiosk connection ``cid``."""
    return f"anima.k.{cid}.in"


def kiosk_out(cid: str) -> str:
    """Worker → client messages of kiosk connection ``cid``."""
    return f"anima.k.{cid}.out"


class BadReply(ValueError):
    """A worker's reply that is not the JSON object the protocol says."""


class WorkerError(Exception):
    """A worker's error reply: an HTTP status, a code and one line."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def encode(payload: dict[str, Any]) -> bytes:
    """A message body."""
    return json.dumps(payload, separators=(",", ":")).encode()


def error(status: int, code: str, message: str) -> bytes:
    """An error reply body."""
    return encode({"error": code, "message": message, "status": status})


def decode(data: bytes, *required: str) -> dict[str, Any]:
    """A reply body as a dict; :class:`WorkerError` for an error reply, :class:`BadReply` for
    garbage (including a missing ``required`` field)."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadReply(f"the worker's reply is not JSON ({len(data)} bytes)") from None
    if not isinstance(msg, dict):
        raise BadReply("the worker's reply is not a JSON object")
    if "error" in msg:
        status = msg.get("status")
        if not isinstance(status, int) or not 400 <= status <= 599:
            status = 502
        raise WorkerError(status, str(msg["error"])[:40], str(msg.get("message"))[:300])
    missing = [k for k in required if not isinstance(msg.get(k), str) or not msg[k]]
    if missing:
        raise BadReply(f"the worker's reply lacks {', '.join(missing)}")
    return msg


@dataclass
class Heartbeat:
    """A worker's state as it announces it: who, where, how full."""

    worker: str
    node: str
    device: str
    capacity: int
    free: int
    draining: bool = False
    gone: bool = False  # the worker closed cleanly (its sessions were closed, not lost)
    sessions: list[str] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        """The heartbeat's message body."""
        return encode(asdict(self))

    @classmethod
    def parse(cls, data: bytes) -> Heartbeat:
        """A heartbeat from a message body (:class:`BadReply` if it is not one)."""
        msg = decode(data, "worker")
        try:
            return cls(
                worker=str(msg["worker"]),
                node=str(msg.get("node", "?")),
                device=str(msg.get("device", "?")),
                capacity=int(msg["capacity"]),
                free=int(msg["free"]),
                draining=bool(msg.get("draining", False)),
                gone=bool(msg.get("gone", False)),
                sessions=[str(s) for s in msg.get("sessions", [])][:10_000],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadReply(f"malformed heartbeat: {exc}") from None
