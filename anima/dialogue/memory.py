"""Opt-in long-term memory per user, across sessions, in one SQLite file.

Nothing is remembered unless the user asks for it ("remember that I prefer large print"),
and only for a user with an id (the kiosk's login, the web page's account). The facts are
recalled into the system prompt when that user comes back, so the avatar stays consistent.
"Forget me" / "delete my data" removes every fact and the user's record at once (see
:meth:`LongTermMemory.forget`; the agent also erases the user's audit entries).

SQLite in WAL mode lets one engine process serve many sessions: readers never block the
writer. Calls are short and synchronous; the agent runs them in an executor.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from anima.dialogue.knowledge import fold

MAX_FACT_CHARS = 300

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    user_id    TEXT PRIMARY KEY,
    first_seen REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
    text    TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS facts_user ON facts(user_id);
"""


class LongTermMemory:
    """Facts users chose to share, keyed by user id, in a SQLite file (WAL)."""

    def __init__(self, path: Path, *, max_facts: int = 50) -> None:
        self.path = Path(path)
        self.max_facts = max_facts
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the executor threads, serialised by a lock.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA secure_delete=ON")  # deleted facts are overwritten on disk
            self._db.executescript(_SCHEMA)

    def remember(self, user_id: str, fact: str) -> str:
        """Store ``fact`` for ``user_id`` (trimmed, deduplicated); returns what was stored."""
        fact = " ".join(fact.split())[:MAX_FACT_CHARS].rstrip(" .") + "."
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO users VALUES (?, ?, ?) "
                    "ON CONFLICT(user_id) DO UPDATE SET last_seen = excluded.last_seen",
                    (user_id, now, now),
                )
                known = {
                    fold(t)
                    for (t,) in self._db.execute(
                        "SELECT text FROM facts WHERE user_id = ?", (user_id,)
                    )
                }
                if fold(fact) not in known:
                    self._db.execute(
                        "INSERT INTO facts (user_id, text, created) VALUES (?, ?, ?)",
                        (user_id, fact, now),
                    )
                # Oldest facts go first once a user has too many.
                self._db.execute(
                    "DELETE FROM facts WHERE user_id = ? AND id NOT IN "
                    "(SELECT id FROM facts WHERE user_id = ? ORDER BY id DESC LIMIT ?)",
                    (user_id, user_id, self.max_facts),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return fact

    def recall(self, user_id: str) -> list[str]:
        """The facts of ``user_id``, oldest first (empty for an unknown user)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT text FROM facts WHERE user_id = ? ORDER BY id", (user_id,)
            ).fetchall()
            if rows:
                self._db.execute(
                    "UPDATE users SET last_seen = ? WHERE user_id = ?", (time.time(), user_id)
                )
        return [t for (t,) in rows]

    def known(self, user_id: str) -> bool:
        """True if the user has a record (they opted in on an earlier visit)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return row is not None

    def forget(self, user_id: str) -> int:
        """Delete everything stored for ``user_id``; returns the number of facts removed."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM facts WHERE user_id = ?", (user_id,)
            ).fetchone()
            self._db.execute("DELETE FROM users WHERE user_id = ?", (user_id,))
            self._db.execute("DELETE FROM facts WHERE user_id = ?", (user_id,))
            # Fold the WAL back so the deleted rows do not linger in the -wal file.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()


# --- what the user says to manage their memory -----------------------------------------------


@dataclass(frozen=True, slots=True)
class MemoryCommand:
    """A request about memory: ``remember`` (with the fact), ``recall`` or ``forget``."""

    action: str
    fact: str = ""


_REMEMBER = re.compile(
    r"^\s*(?:(?:please|could you|can you|would you|will you)\s+)*(?:remember|note|keep in mind|memori[sz]e)\s*(?:that|this)?\s*[:,]?\s*(?P<fact>.+?)\s*[.!]?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_FORGET = re.compile(
    r"\b(forget (about )?me|forget (everything|all|what) (you know |you remember )?about me|delete (all )?(of )?my (personal )?(data|information|details)|erase (all )?my (data|information|details)|remove (all )?my (data|information|details))\b",
    re.IGNORECASE,
)
_RECALL = re.compile(
    r"\bwhat (do|did) you (remember|know) about me\b|\bwhat have you remembered\b",
    re.IGNORECASE,
)


def parse_memory_command(text: str) -> MemoryCommand | None:
    """The memory request in ``text``, or None if it is not one."""
    if _FORGET.search(text):
        return MemoryCommand("forget")
    if _RECALL.search(text):
        return MemoryCommand("recall")
    m = _REMEMBER.match(text)
    if m and len(m.group("fact").split()) >= 2:
        # Stored in the user's own words; the prompt says whose words they are.
        return MemoryCommand("remember", m.group("fact"))
    return None
