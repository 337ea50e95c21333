"""Live comments: a flood stays bounded, answers are paced, moderation refuses, nothing raises."""

from anima.live.comments import CommentQueue


def test_flood_is_bounded_and_rate_limited():
    q = CommentQueue(maxsize=50, answers_per_minute=6, user_cooldown=10)
    verdicts = [q.submit(f"user{i}", f"comment number {i}", now=i * 0.001) for i in range(10_000)]
    assert all(v.accepted for v in verdicts)
    assert len(q) == 50 and q.counts["dropped"] == 10_000 - 50
    # Six answers per minute: one now, the next only ten seconds later.
    assert q.pick(now=10.0) is not None
    assert q.pick(now=15.0) is None
    assert q.pick(now=20.0) is not None
    answered = sum(q.pick(now=float(t)) is not None for t in range(21, 81))  # the next minute
    assert answered == 6


def test_bad_comments_are_refused_with_a_reason():
    q = CommentQueue(
        max_chars=20, user_cooldown=30, moderate=lambda t: "blocked term" if "spam" in t else None
    )
    assert q.submit("a", "   ", 0).reason == "empty comment"
    assert "longer than 20" in q.submit("a", "x" * 21, 0).reason
    assert q.submit("a", "buy spam now", 0).reason == "blocked term"
    assert q.submit("a", "hello", 0).accepted
    assert q.submit("a", "hello again", 5).reason == "too many comments from this user"
    assert q.submit("b", "HELLO", 6).accepted  # another user may say the same
    assert q.submit(None, "\x00" * 5, 7).accepted  # odd input never raises

    def broken(text):
        raise RuntimeError("filter down")

    q2 = CommentQueue(moderate=broken)
    assert q2.submit("a", "hi", 0).reason == "moderation unavailable"


def test_questions_and_new_viewers_are_preferred_and_old_comments_expire():
    q = CommentQueue(answers_per_minute=60, user_cooldown=0, max_age=100)
    q.submit("ann", "nice stream", 0)
    q.submit("bob", "what time do tours start?", 1)
    q.submit("cid", "hello", 2)
    assert q.pick(3).user == "bob"
    q.submit("bob", "and on sunday?", 4)
    assert q.pick(10).user != "bob"  # spread answers over viewers
    assert q.pick(500) is None and q.counts["expired"] >= 1
