"""Shared fixtures: the project's own voice, the sample portrait and an isolated data dir."""

from __future__ import annotations

import os

import numpy as np
import pytest

from anima.config import Settings
from anima.render.avatar import Avatar, prepare_avatar, sample_portrait

# Engines warm their known lines in a background thread after loading; in the suite that would
# load both cores during unrelated tests. The tests of the phrase cache turn it back on.
os.environ.setdefault("ANIMA_VOICE__PREWARM", "false")
# Piper draws random noise on every call: tests hear a fixed rendition of each text, so what
# the recogniser hears is the same on every run (a random rendition once turned "park" into
# "part" in CI). The tests of variation itself ask for it explicitly.
os.environ.setdefault("ANIMA_VOICE__VARIATION", "0")


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("ANIMA_DATA_DIR", str(tmp_path / "data"))
    return Settings.load(None)


@pytest.fixture(scope="session")
def voice():
    from anima.tts import load_voice

    return load_voice(variation=0.0)


@pytest.fixture(scope="session")
def portrait() -> np.ndarray:
    return sample_portrait()


@pytest.fixture(scope="session")
def avatar(portrait) -> Avatar:
    return prepare_avatar(portrait, "sample")
