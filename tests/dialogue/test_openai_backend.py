"""The OpenAI-compatible backend against a real streaming server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest
from openai_server import Script

from anima.config import BrainSettings
from anima.dialogue.backends import load_brain
from anima.dialogue.brain import Brain, BrainError, Message
from anima.dialogue.chunker import PhraseChunker
from anima.dialogue.openai_backend import OpenAIBrain

ASK = [Message("system", "You are a museum guide."), Message("user", "When do you open?")]


async def collect(brain, messages=ASK, **kwargs) -> list[str]:
    return [delta async for delta in brain.stream(messages, **kwargs)]


async def test_streams_deltas_in_order_with_bearer_key(openai_server, make_openai_brain):
    tokens = ["We", " open", " at", " 9", ":", "30", " a.m.", " daily", "."]
    openai_server.script(Script(tokens=tokens))
    brain = make_openai_brain()
    assert isinstance(brain, Brain)

    assert await collect(brain, max_tokens=7) == tokens

    (call,) = openai_server.calls
    assert call.path == "/v1/chat/completions"
    assert call.headers["authorization"] == "Bearer sk-test-123"
    assert call.body["stream"] is True
    assert call.body["model"] == "test-model"
    assert call.body["max_tokens"] == 7
    assert call.body["messages"] == [
        {"role": "system", "content": "You are a museum guide."},
        {"role": "user", "content": "When do you open?"},
    ]


async def test_key_from_settings_or_environment(openai_server, monkeypatch):
    openai_server.script(Script(tokens=["ok"]))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    settings = BrainSettings(backend="openai", base_url=openai_server.base_url, model="m")
    brain = load_brain(settings)
    assert isinstance(brain, OpenAIBrain)
    try:
        assert await collect(brain) == ["ok"]
    finally:
        await brain.aclose()
    assert openai_server.calls[-1].headers["authorization"] == "Bearer sk-from-env"

    settings = BrainSettings(
        backend="openai", base_url=openai_server.base_url, model="m", api_key="sk-config"
    )
    brain = load_brain(settings)
    try:
        await collect(brain)
    finally:
        await brain.aclose()
    assert openai_server.calls[-1].headers["authorization"] == "Bearer sk-config"
    assert "sk-config" not in repr(settings)  # the key is never shown

    monkeypatch.delenv("OPENAI_API_KEY")
    brain = load_brain(BrainSettings(backend="openai", base_url=openai_server.base_url))
    try:
        await collect(brain)
    finally:
        await brain.aclose()
    assert "authorization" not in openai_server.calls[-1].headers
    assert "model" not in openai_server.calls[-1].body  # no name configured: server default


async def test_first_phrase_released_while_server_still_has_tokens(
    openai_server, make_openai_brain
):
    tokens = ["Sure", ",", " the", " west", " wing", " opens", " at", " nine", "."]
    script = Script(tokens=tokens, pause_after=3)  # holds back the rest until resumed
    openai_server.script(script)
    brain = make_openai_brain()
    chunker = PhraseChunker()
    phrases = []
    pending_at_first_phrase = None
    async with contextlib.aclosing(brain.stream(ASK)) as stream:
        async for delta in stream:
            out = chunker.feed(delta)
            if out and not phrases:
                call = openai_server.calls[0]
                pending_at_first_phrase = call.tokens_pending
                assert not call.completed
                script.resume.set()
            phrases += out
    phrases += chunker.flush()
    assert pending_at_first_phrase == len(tokens) - 3
    assert [p.text for p in phrases] == ["Sure,", "the west wing opens at nine."]


@pytest.mark.parametrize("how", ["aclose", "task-cancel"])
async def test_cancel_closes_http_stream_within_100ms(openai_server, make_openai_brain, how):
    script = Script(tokens=["One", " two", " three", " four"], pause_after=2)
    openai_server.script(script)
    brain = make_openai_brain()
    stream = brain.stream(ASK)
    got = [await anext(stream), await anext(stream)]
    assert got == ["One", " two"]
    call = openai_server.calls[0]
    # The server is now paused, watching its socket; the client waits for the third token.
    if how == "aclose":
        cancelled_at = time.monotonic()
        await stream.aclose()
    else:
        task = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.05)  # let the task block on the socket read
        assert not task.done()
        cancelled_at = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await asyncio.to_thread(call.closed.wait, 5.0), "server never saw the client go"
    # The one timed assertion here is the explicit requirement. Both readings are
    # CLOCK_MONOTONIC; the server notices the FIN through select() at once.
    assert call.client_closed_at - cancelled_at < 0.100
    assert not call.completed and call.tokens_pending == 2


async def test_http_500_is_retried_then_a_one_line_brain_error(openai_server, make_openai_brain):
    openai_server.script(
        Script(status=500, error_body={"error": {"message": "model\n overloaded", "code": 500}})
    )
    brain = make_openai_brain(retries=2)
    with pytest.raises(BrainError) as info:
        await collect(brain)
    message = str(info.value)
    assert "HTTP 500" in message and "model overloaded" in message
    assert "\n" not in message and "3 attempts" in message
    assert info.value.retryable
    assert len(openai_server.calls) == 3


async def test_client_errors_are_not_retried(openai_server, make_openai_brain):
    openai_server.script(Script(status=401, error_body={"error": {"message": "bad key"}}))
    brain = make_openai_brain(retries=3)
    with pytest.raises(BrainError, match=r"HTTP 401: bad key") as info:
        await collect(brain)
    assert not info.value.retryable
    assert len(openai_server.calls) == 1


async def test_plain_text_error_body(openai_server, make_openai_brain):
    openai_server.script(Script(status=503, error_body="upstream down"))
    with pytest.raises(BrainError, match=r"HTTP 503: upstream down"):
        await collect(make_openai_brain(retries=0))


async def test_a_retry_after_a_server_error_succeeds(openai_server, make_openai_brain):
    openai_server.script(Script(status=502, error_body={}), Script(tokens=["Hi", "!"]))
    assert await collect(make_openai_brain(retries=1)) == ["Hi", "!"]
    assert len(openai_server.calls) == 2


async def test_timeout_before_first_token_retries_then_fails(openai_server, make_openai_brain):
    openai_server.script(Script(first_delay=30.0))  # headers, then nothing
    brain = make_openai_brain(first_token_timeout=0.3, retries=1)
    with pytest.raises(BrainError, match=r"no reply .* within 0.3s .*2 attempts"):
        await collect(brain)
    assert len(openai_server.calls) == 2
    for call in openai_server.calls:  # each timed-out attempt hung up on the server
        assert await asyncio.to_thread(call.closed.wait, 5.0)
        assert not call.sent_at


async def test_never_retried_after_the_first_token(openai_server, make_openai_brain):
    openai_server.script(Script(tokens=["Hello", " there", " friend"], disconnect_after=2))
    brain = make_openai_brain(retries=3)
    got = []
    with pytest.raises(BrainError, match="broke off|ended before"):
        async for delta in brain.stream(ASK):
            got.append(delta)
    assert got == ["Hello", " there"]
    assert len(openai_server.calls) == 1


async def test_stall_after_first_token_is_an_error_not_a_retry(openai_server, make_openai_brain):
    openai_server.script(Script(tokens=["Hello", " again"], delay=30.0))
    brain = make_openai_brain(read_timeout=0.3, retries=2)
    got = []
    with pytest.raises(BrainError, match="stalled"):
        async for delta in brain.stream(ASK):
            got.append(delta)
    assert got == ["Hello"]
    assert len(openai_server.calls) == 1


async def test_disconnect_before_first_token_is_retried(openai_server, make_openai_brain):
    openai_server.script(Script(tokens=["x"], disconnect_after=0), Script(tokens=["fine"]))
    assert await collect(make_openai_brain(retries=1)) == ["fine"]
    assert len(openai_server.calls) == 2


async def test_malformed_sse_lines_are_skipped(openai_server, make_openai_brain):
    junk = [
        ": keep-alive",
        "event: ping",
        "data: {not json",
        "data: 42",
        'data: {"choices": 7}',
        'data: {"choices": [{"delta": 3}]}',
    ]
    openai_server.script(Script(tokens=["Still", " fine"], raw_before=junk))
    assert await collect(make_openai_brain()) == ["Still", " fine"]


async def test_error_event_inside_the_stream(openai_server, make_openai_brain):
    bad = 'data: {"error": {"message": "context length exceeded"}}'
    openai_server.script(Script(raw_before=[bad]))
    with pytest.raises(BrainError, match="context length exceeded"):
        await collect(make_openai_brain(retries=0))


async def test_stream_cut_without_done_is_an_error(openai_server, make_openai_brain):
    openai_server.script(Script(tokens=["Half", " a"], done=False))
    got = []
    with pytest.raises(BrainError, match="ended before"):
        async for delta in make_openai_brain().stream(ASK):
            got.append(delta)
    assert got == ["Half", " a"]


async def test_empty_reply_is_no_error(openai_server, make_openai_brain):
    openai_server.script(Script(tokens=[]))
    assert await collect(make_openai_brain()) == []


async def test_unreachable_server():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    brain = OpenAIBrain(f"http://127.0.0.1:{port}/v1", "m", retries=1, backoff=0.01)
    try:
        with pytest.raises(BrainError, match=r"cannot reach .* \(after 2 attempts\)") as info:
            await collect(brain)
        assert info.value.retryable
    finally:
        await brain.aclose()


def test_bad_base_url_and_unknown_backend():
    with pytest.raises(ValueError, match="base_url"):
        OpenAIBrain("localhost:8000", "m")
    with pytest.raises(ValueError, match="unknown brain backend 'nope'"):
        load_brain(BrainSettings(backend="nope"))


async def test_backend_records_first_token_and_speed_metrics(openai_server, make_openai_brain):
    from prometheus_client import REGISTRY

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(f"{name}_count", {"backend": "openai"}) or 0.0

    before = count("anima_brain_first_token_seconds"), count("anima_brain_tokens_per_second")
    openai_server.script(Script(tokens=["a", "b", "c"], delay=0.01))
    await collect(make_openai_brain())
    after = count("anima_brain_first_token_seconds"), count("anima_brain_tokens_per_second")
    assert after == (before[0] + 1, before[1] + 1)


def test_reply_timer_on_injected_clock():
    from anima.dialogue.metrics import ReplyTimer

    now = [10.0]
    timer = ReplyTimer("test", now=lambda: now[0])
    assert timer.finish() is None  # nothing happened yet
    for t in (10.2, 10.3, 10.4, 10.6):
        now[0] = t
        timer.token()
    now[0] = 10.5
    timer.phrase()
    timer.phrase()
    assert timer.first_token == pytest.approx(0.2) and timer.first_phrase == pytest.approx(0.5)
    assert timer.finish() == pytest.approx(3 / 0.4)
