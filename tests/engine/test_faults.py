"""Fault isolation: a backend that raises, hangs or returns garbage fails only its own turn.

Each test opens two sessions on the shared engine, puts a faulty wrapper around one real
backend (voice, recogniser, brain or renderer) of session A only, and checks that A's turn
ends with an ``ErrorEvent`` and the spoken apology, that A answers its next turn normally, and
that session B, talking at the same time, sees no error at all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any

import numpy as np
import pytest
from engine_helpers import collect, push_chunks, speech

from anima.events import ErrorEvent, Subtitle

MODES = ("raise", "hang", "garbage")
# Timeouts these tests set (seconds), short enough to keep hangs cheap, long enough for the
# real backends on a loaded 2-core machine. Not timing assertions.
SHORT = 0.5  # the fake brain
REAL = 5.0  # the real voice, recogniser and renderer


class Fault:
    """Decides which calls of a backend misbehave: ``times`` calls from the ``nth`` on."""

    def __init__(self, mode: str, nth: int = 1, times: int = 1) -> None:
        self.mode, self.nth, self.times = mode, nth, times
        self.calls = 0
        self.fired = 0
        self.release = threading.Event()  # ends every hang (test teardown)

    def fires(self) -> bool:
        """Count a call; True if this one must misbehave."""
        self.calls += 1
        if self.calls >= self.nth and self.fired < self.times:
            self.fired += 1
            return True
        return False

    def hang(self) -> None:
        """Block the calling thread, like a backend stuck in native code."""
        self.release.wait(60)

    def disarm(self) -> None:
        """No more faults; hung calls return."""
        self.times = 0
        self.release.set()


class FaultyVoice:
    """The real voice, except on faulty calls."""

    def __init__(self, voice: Any, fault: Fault) -> None:
        self.voice, self.fault = voice, fault
        self.sample_rate = voice.sample_rate

    def synthesize(self, text: str, turn: int = 0):
        """Raise, hang, or yield NaN float audio instead of int16 speech."""
        for chunk in self.voice.synthesize(text, turn):
            if self.fault.fires():
                if self.fault.mode == "raise":
                    raise RuntimeError("the voice crashed")
                if self.fault.mode == "hang":
                    self.fault.hang()
                else:
                    chunk = dataclasses.replace(chunk, pcm=np.full(800, np.nan, np.float32))
            yield chunk


class FaultyRecognizer:
    """The real recogniser, except on faulty calls."""

    def __init__(self, recognizer: Any, fault: Fault) -> None:
        self.recognizer, self.fault = recognizer, fault

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> Any:
        """Raise, hang, or return a dict instead of a Recognition."""
        if self.fault.fires():
            if self.fault.mode == "raise":
                raise RuntimeError("the recogniser crashed")
            if self.fault.mode == "hang":
                self.fault.hang()
            return {"text": None}
        return self.recognizer.transcribe(audio, prompt)


class FaultyBrain:
    """A language model that answers one fixed line, except on faulty calls."""

    name = "faulty"

    def __init__(self, fault: Fault) -> None:
        self.fault = fault

    async def stream(self, messages, *, max_tokens=None):
        """Raise, never answer, or stream non-text."""
        if self.fault.fires():
            if self.fault.mode == "raise":
                raise RuntimeError("the model crashed")
            if self.fault.mode == "hang":
                await asyncio.sleep(3600)
            yield 12345  # not text
            yield None
            return
        yield "Dragons are not in the catalogue, sorry."

    async def aclose(self) -> None:
        """Nothing to release."""


class FaultyAnimator:
    """The real face animator, except on faulty (speaking) frames."""

    def __init__(self, animator: Any, fault: Fault) -> None:
        self.animator, self.fault = animator, fault

    def render(self, k: int, shape: Any, speaking: bool) -> Any:
        """Raise, hang, or return a wrongly shaped float picture."""
        if speaking and self.fault.fires():
            if self.fault.mode == "raise":
                raise RuntimeError("the renderer crashed")
            if self.fault.mode == "hang":
                self.fault.hang()
            return np.full((7, 3), np.nan)
        return self.animator.render(k, shape, speaking)


async def _two_sessions(engine, media_a: str = "params"):
    a = engine.session(media=media_a, realtime=False, greet=False)
    b = engine.session(media="params", realtime=False, greet=False)
    await a.start()
    await b.start()
    return a, b


def _subtitle(text: str):
    return lambda i, _: isinstance(i, Subtitle) and text.lower() in i.text.lower()


async def _check_isolated(a, b, trigger_a, stage: str, fault: Fault) -> None:
    """A's faulty turn: ErrorEvent(stage) + apology; B's simultaneous turn: no error."""
    apology = a._agent.persona.apology
    b_line = "The other session keeps talking."
    await b.say(b_line)
    await trigger_a()
    # The apology is spoken sentence by sentence: its first subtitle is where it starts.
    said_sorry = lambda i, _: isinstance(i, Subtitle) and apology.startswith(i.text)  # noqa: E731
    items_a, items_b = await asyncio.gather(
        collect(a, said_sorry, timeout=60), collect(b, _subtitle(b_line), timeout=60)
    )
    errors = [i for i in items_a if isinstance(i, ErrorEvent)]
    assert errors, "the faulty turn must report an error"
    assert errors[0].stage == stage
    assert items_a[-1].text.startswith("I'm sorry")
    assert fault.fired >= 1
    assert not [i for i in items_b if isinstance(i, ErrorEvent)]
    fault.disarm()


@pytest.mark.parametrize("mode", MODES)
async def test_voice_fault_fails_only_that_turn(engine, mode):
    a, b = await _two_sessions(engine)
    fault = Fault(mode, nth=1)
    try:
        stage = a._pipe.stages[0]
        stage.voice = FaultyVoice(stage.voice, fault)
        stage.timeout = REAL
        await _check_isolated(a, b, lambda: a.say("This sentence will fail."), "tts", fault)
        await a.say("Still here.")
        assert await collect(a, _subtitle("Still here."), timeout=60)
    finally:
        fault.disarm()
        await a.aclose()
        await b.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_recogniser_fault_fails_only_that_turn(engine, mode):
    a, b = await _two_sessions(engine)
    fault = Fault(mode, nth=1, times=10_000)  # every decode fails until disarmed
    rate = engine.voice.sample_rate
    question = speech(engine, "Is there free wifi?")
    try:
        a._listener.recognizer = FaultyRecognizer(a._listener.recognizer, fault)
        a._listener.config = dataclasses.replace(a._listener.config, decode_timeout=REAL)

        async def ask() -> None:
            push_chunks(a, question, rate)

        await _check_isolated(a, b, ask, "listen", fault)
        push_chunks(a, question, rate)
        assert await collect(a, _subtitle("wifi"), timeout=60)
    finally:
        fault.disarm()
        await a.aclose()
        await b.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_brain_fault_fails_only_that_turn(engine, mode):
    a, b = await _two_sessions(engine)
    fault = Fault(mode, nth=1)
    try:
        a._agent.brain = FaultyBrain(fault)
        a._agent.safety = a._agent.safety.model_copy(update={"reply_timeout": SHORT})
        # Out of the knowledge's scope: only with open_chat does it reach the model at all.
        a._agent.kcfg = a._agent.kcfg.model_copy(update={"open_chat": True})
        question = "Write me a poem about dragons."
        await _check_isolated(a, b, lambda: a.ask(question), "brain", fault)
        await a.ask(question)
        assert await collect(a, _subtitle("Dragons are not"), timeout=60)
    finally:
        fault.disarm()
        await a.aclose()
        await b.aclose()


@pytest.mark.parametrize("mode", MODES)
async def test_renderer_fault_fails_only_that_turn(engine, monkeypatch, mode):
    fault = Fault(mode, nth=3)
    real = await engine.animator(None)
    faulty = FaultyAnimator(real, fault)
    original = engine.animator

    async def animator(spec):
        return faulty

    monkeypatch.setattr(engine.settings.render, "frame_timeout", REAL)
    monkeypatch.setattr(engine, "animator", animator)
    a = engine.session(media="video", realtime=False, greet=False)
    await a.start()
    monkeypatch.setattr(engine, "animator", original)
    b = engine.session(media="params", realtime=False, greet=False)
    await b.start()
    try:
        text = "This is a long sentence that the broken renderer will not finish drawing."
        await _check_isolated(a, b, lambda: a.say(text), "render", fault)
        await a.say("Still here.")
        assert await collect(a, _subtitle("Still here."), timeout=60)
    finally:
        fault.disarm()
        await a.aclose()
        await b.aclose()
