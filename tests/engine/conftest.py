"""One engine (kb brain on the example kiosk knowledge, 128 px frames) shared by the tests.

Models load once per module: the voice, tiny.en, the VAD, the knowledge base. Sessions are
per test. Speech pushed as mic audio is made by the engine's own voice.
"""

from __future__ import annotations

import asyncio

import pytest
from engine_helpers import make_engine

from anima.engine import Engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    eng = make_engine(tmp_path_factory.mktemp("engine"))
    asyncio.run(eng.load())
    yield eng
    asyncio.run(eng.aclose())
