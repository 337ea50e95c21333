"""The audit log: JSON lines, pseudonymous users, rotation, and erasure on delete-my-data."""

import json

from anima.dialogue.audit import ERASED, AuditEntry, AuditLog


def test_entries_rotation_and_forget(tmp_path):
    log = AuditLog(tmp_path, max_bytes=10_000, backups=2)
    for n in range(100):
        log.record(
            AuditEntry("kb", f"question {n} " + "x" * 200, f"answer {n}", sources=["faq.csv:2"]),
            user_id="alice" if n % 2 else "bob",
        )
    files = log.files()
    assert len(files) == 3 and all(f.stat().st_size <= 10_000 for f in files)
    entries = list(log.entries())
    assert entries[-1]["question"].startswith("question 99")
    assert len(entries) < 100  # the oldest rotated away
    raw = "".join(f.read_text() for f in files)
    assert "alice" not in raw and "bob" not in raw  # only pseudonyms
    assert entries[-1]["user"] == log.pseudonym("alice") != log.pseudonym("bob")
    assert entries[-1]["sources"] == ["faq.csv:2"] and "ts" in entries[-1]

    changed = log.forget("alice")
    assert changed == sum(1 for e in entries if e["user"] == log.pseudonym("alice"))
    after = list(log.entries())
    assert len(after) == len(entries)
    for e in after:
        if e.get("erased"):
            assert e["question"] == e["answer"] == ERASED and e["user"] is None
            assert e["route"] == "kb" and e["sources"] == ["faq.csv:2"]  # stats survive
        else:
            assert e["user"] == log.pseudonym("bob")
    for f in log.files():
        for line in f.read_text().splitlines():
            json.loads(line)


def test_pseudonym_is_stable_per_installation(tmp_path):
    a = AuditLog(tmp_path / "a")
    assert a.pseudonym("x") == AuditLog(tmp_path / "a").pseudonym("x")
    assert a.pseudonym("x") != AuditLog(tmp_path / "b").pseudonym("x")
    assert (tmp_path / "a" / "audit.key").stat().st_mode & 0o777 == 0o600
