"""Likeness consent: stored avatars without it are refused by the engine (server, kiosk, SDK)."""

from __future__ import annotations

import dataclasses

import pytest
from engine_helpers import make_engine

from anima.render.avatar import Avatar, AvatarError, AvatarStore, Consent


def _store(tmp_path, avatar: Avatar, name: str, consent: Consent | None) -> None:
    AvatarStore(tmp_path / "avatars").add(dataclasses.replace(avatar, name=name, consent=consent))


async def test_avatar_without_consent_is_refused(tmp_path, avatar):
    _store(tmp_path, avatar, "nobody-asked", None)
    engine = make_engine(tmp_path)
    with pytest.raises(AvatarError, match="no recorded likeness consent"):
        await engine.avatar("nobody-asked")


async def test_avatar_with_consent_is_served(tmp_path, avatar):
    _store(tmp_path, avatar, "agreed", Consent.now("Jo Operator"))
    got = await make_engine(tmp_path).avatar("agreed")
    assert got.consent is not None and got.consent.by == "Jo Operator"
    assert got.consent.at.endswith("+00:00")  # when, in UTC


async def test_requirement_off_explicitly_allows_it(tmp_path, avatar):
    _store(tmp_path, avatar, "nobody-asked", None)
    engine = make_engine(tmp_path, limits={"require_consent": False})
    assert (await engine.avatar("nobody-asked")).consent is None


async def test_sample_portrait_needs_no_consent(tmp_path, avatar, monkeypatch):
    engine = make_engine(tmp_path)
    assert engine.settings.limits.require_consent  # on by default
    engine._sample = avatar  # the prepared public-domain sample (skips face detection again)
    assert await engine.avatar(None) is avatar
    assert await engine.avatar("sample") is avatar


def test_consent_round_trips_and_old_avatars_have_none(tmp_path, avatar):
    store = AvatarStore(tmp_path)
    store.add(
        dataclasses.replace(avatar, name="a", consent=Consent("Sam", "2026-01-02T03:04:05+00:00"))
    )
    store.add(dataclasses.replace(avatar, name="b", consent=None))
    assert store.get("a").consent == Consent("Sam", "2026-01-02T03:04:05+00:00")
    assert store.get("b").consent is None
    with pytest.raises(AvatarError, match="consent-by"):
        Consent.now("   ")
