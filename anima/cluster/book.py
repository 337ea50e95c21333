"""The cluster's session book: ``session → worker`` in a JetStream key-value bucket.

The worker that answers an offer writes ``open``; it writes ``closed`` (with the reason) when the
conversation ends. A gateway that sees a worker's heartbeats stop writes ``lost`` over that
worker's open sessions (every gateway may do it: the write is idempotent). Records expire after
``cluster.session_ttl``; a bucket of history 1 keeps only the latest state of each.
"""

from __future__ import annotations

import json
import time
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from nats.js.kv import KeyValue

STATES = ("open", "closed", "lost")


class SessionBook:
    """Read and write session records in one bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @classmethod
    async def open(cls, js: JetStreamContext, bucket: str, ttl: float) -> SessionBook:
        """Bind to ``bucket``, creating it if it does not exist yet."""
        try:
            kv = await js.key_value(bucket)
        except BucketNotFoundError:
            kv = await js.create_key_value(KeyValueConfig(bucket=bucket, history=1, ttl=ttl))
        return cls(kv)

    async def put(self, sid: str, worker: str, state: str, **extra: Any) -> None:
        """Record ``sid``'s ``state`` on ``worker``."""
        record = {"session_id": sid, "worker": worker, "state": state, "updated": time.time()}
        record.update(extra)
        await self.kv.put(sid, json.dumps(record).encode())

    async def get(self, sid: str) -> dict[str, Any] | None:
        """The record of ``sid`` or None (unknown, expired or malformed)."""
        try:
            entry = await self.kv.get(sid)
        except KeyNotFoundError:
            return None
        if entry is None or not entry.value:
            return None
        try:
            record = json.loads(entry.value)
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    async def mark_lost(self, worker: str, sids: list[str], reason: str) -> list[str]:
        """Write ``lost`` over those of ``sids`` still ``open`` on ``worker``; which were."""
        lost = []
        for sid in sids:
            record = await self.get(sid)
            if record and record.get("worker") == worker and record.get("state") == "open":
                await self.put(sid, worker, "lost", reason=reason, node=record.get("node"))
                lost.append(sid)
        return lost
