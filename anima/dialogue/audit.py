"""The audit log: every question, the answer as spoken, the route, sources and timings.

One JSON object per line (``audit.jsonl``), appended and flushed per turn, so it can be
tailed or shipped by any log collector. Size is bounded: past ``max_bytes`` the file is
rotated to ``audit.jsonl.1`` … ``.N`` and the oldest dropped.

Privacy decisions (documented in the README too):

* the question is stored with PII masked (the same masker as the spoken output); the answer
  is stored exactly as spoken (it was masked before the TTS);
* the user id is never stored in clear: entries carry a pseudonym, an HMAC-SHA256 of the id
  with a per-installation secret key (``audit.key``, created on first use, mode 0600);
* "delete my data" (:meth:`AuditLog.forget`) *anonymises* that user's entries in every file
  instead of deleting them: question and answer become ``"[erased]"`` and the pseudonym is
  removed, while route, sources and timings stay, so the operator's statistics and the proof
  of which approved texts were spoken survive without anything personal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ERASED = "[erased]"


@dataclass
class AuditEntry:
    """One turn as the log records it."""

    route: str  # intent|kb|llm|fallback|smalltalk|refusal|handoff|memory|closed|error
    question: str
    answer: str
    sources: Sequence[str] = ()
    confidence: float | None = None
    session: str = ""
    intent: str | None = None
    reason: str | None = None  # why a refusal / hand-off / error happened
    interrupted: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds


class AuditLog:
    """Append-only JSON lines with size-based rotation and per-user erasure."""

    def __init__(self, folder: Path, *, max_bytes: int = 5_000_000, backups: int = 5) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "audit.jsonl"
        self.max_bytes = max_bytes
        self.backups = backups
        self._key = _load_key(self.folder / "audit.key")
        self._lock = threading.Lock()

    def pseudonym(self, user_id: str) -> str:
        """The stable, non-reversible id under which ``user_id`` appears in the log."""
        return hmac.new(self._key, user_id.encode(), hashlib.sha256).hexdigest()[:24]

    def record(self, entry: AuditEntry, *, user_id: str | None = None) -> None:
        """Append one entry (with a timestamp and the user's pseudonym)."""
        row: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z",
            "user": self.pseudonym(user_id) if user_id else None,
            **asdict(entry),
        }
        row["sources"] = list(entry.sources)
        line = json.dumps(row, ensure_ascii=False) + "\n"
        data = line.encode("utf-8")
        with self._lock:
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
            with open(self.path, "ab") as f:
                f.write(data)

    def files(self) -> list[Path]:
        """The current file and its rotated backups, newest first."""
        paths = [self.path] + [self._backup(i) for i in range(1, self.backups + 1)]
        return [p for p in paths if p.exists()]

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry, oldest first (across rotated files)."""
        for path in reversed(self.files()):
            with open(path, encoding="utf-8") as f:
                for line in f:
                    if line.strip():
                        yield json.loads(line)

    def forget(self, user_id: str) -> int:
        """Anonymise every entry of ``user_id`` in every file; returns how many changed."""
        who = self.pseudonym(user_id)
        changed = 0
        with self._lock:
            for path in self.files():
                lines = path.read_text(encoding="utf-8").splitlines()
                out = []
                for line in lines:
                    if not line.strip():
                        continue
                    row = json.loads(line)
                    if row.get("user") == who:
                        row.update(user=None, question=ERASED, answer=ERASED, erased=True)
                        changed += 1
                    out.append(json.dumps(row, ensure_ascii=False))
                tmp = path.with_suffix(path.suffix + ".tmp")
                tmp.write_text("\n".join(out) + ("\n" if out else ""), encoding="utf-8")
                os.replace(tmp, path)  # atomic: a crash leaves the old or the new file
        return changed

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate(self) -> None:
        self._backup(self.backups).unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            if self._backup(n).exists():
                os.replace(self._backup(n), self._backup(n + 1))
        os.replace(self.path, self._backup(1))


def _load_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            return path.read_bytes()
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
