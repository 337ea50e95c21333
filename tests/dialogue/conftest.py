"""Fixtures for the brain: a real OpenAI-compatible server on loopback and the embedded GGUF."""

from __future__ import annotations

import pytest
from openai_server import OpenAIServer

from anima.dialogue.openai_backend import OpenAIBrain


@pytest.fixture
def openai_server():
    """A fresh scriptable OpenAI-compatible server on 127.0.0.1 (see ``openai_server.py``)."""
    server = OpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
async def make_openai_brain(openai_server):
    """Factory: an :class:`OpenAIBrain` pointed at ``openai_server``; closed after the test."""
    brains: list[OpenAIBrain] = []

    def make(**kwargs) -> OpenAIBrain:
        options = {
            "api_key": "sk-test-123",
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
            "first_token_timeout": 5.0,
            "retries": 2,
            "backoff": 0.01,
            **kwargs,
        }
        brain = OpenAIBrain(openai_server.base_url, "test-model", **options)
        brains.append(brain)
        return brain

    yield make
    for brain in brains:
        await brain.aclose()


@pytest.fixture(scope="session")
def gguf_brain():
    """The embedded SmolLM2 GGUF, loaded once for the whole test session.

    One thread: CI shares its cores, and llama.cpp's spinning threads stall when oversubscribed.
    """
    from anima.dialogue.gguf_backend import GGUFBrain

    return GGUFBrain(max_tokens=48, temperature=0.0, threads=1, queue_size=4)
