"""The runtime on its own: fake stages, no models."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from anima.frames import Error, Frame, Interrupt, TextChunk, Transcript, TurnEnd, TurnStart
from anima.pipeline import Pipeline, Stage, VirtualClock

# Generous bound for waiting on something that should happen at once; hitting it means a hang.
SOON = 2.0


class Append(Stage):
    """Appends a suffix to every TextChunk; counts resets."""

    accepts = (TextChunk,)

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix
        self.resets = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, TextChunk)
        yield TextChunk(turn=frame.turn, text=frame.text + self.suffix)

    def reset(self) -> None:
        self.resets += 1


class Split(Stage):
    """One TextChunk per word (zero for an empty text)."""

    accepts = (TextChunk,)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, TextChunk)
        for word in frame.text.split():
            yield TextChunk(turn=frame.turn, text=word)


class Passthrough(Stage):
    """Forwards everything (the default process); counts resets."""

    accepts = (Frame,)

    def __init__(self) -> None:
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1


async def take(pipeline: Pipeline, n: int) -> list[Frame]:
    """The next ``n`` frames out of the pipeline, failing instead of hanging."""

    async def collect() -> list[Frame]:
        out: list[Frame] = []
        async for frame in pipeline.frames():
            out.append(frame)
            if len(out) == n:
                break
        return out

    return await asyncio.wait_for(collect(), SOON)


async def settle() -> None:
    """Let every ready task run until the loop has nothing left to do right now."""
    for _ in range(20):
        await asyncio.sleep(0)


# --- flow ---------------------------------------------------------------------------------


async def test_frames_flow_through_stages_in_order() -> None:
    async with Pipeline([Split(), Append("!"), Append("?")]) as p:
        await p.push(TextChunk(turn=0, text="hello brave world"))
        await p.push(TextChunk(turn=0, text="again"))
        out = await take(p, 4)
    assert [f.text for f in out] == ["hello!?", "brave!?", "world!?", "again!?"]
    assert all(f.turn == 0 for f in out)


async def test_frames_not_accepted_pass_through_untouched() -> None:
    first, second = Append("!"), Append("?")
    transcript = Transcript(turn=0, text="hi there", final=True)
    start = TurnStart(turn=0)
    async with Pipeline([first, second]) as p:
        await p.push(start)
        await p.push(transcript)
        await p.push(TextChunk(turn=0, text="x"))
        out = await take(p, 3)
    assert out[0] is start
    assert out[1] is transcript
    assert out[2] == TextChunk(turn=0, text="x!?")


async def test_stage_yielding_nothing_drops_the_frame() -> None:
    async with Pipeline([Split()]) as p:
        await p.push(TextChunk(turn=0, text="   "))
        await p.push(TextChunk(turn=0, text="kept"))
        out = await take(p, 1)
    assert out == [TextChunk(turn=0, text="kept")]


def test_pipeline_needs_a_stage() -> None:
    with pytest.raises(ValueError):
        Pipeline([])


# --- backpressure -------------------------------------------------------------------------


async def test_bounded_queues_block_the_producer() -> None:
    # One stage, maxsize=1, nobody reading the output: the output queue holds one frame, the
    # worker holds one it cannot put, the input queue holds one. The fourth push must wait.
    async with Pipeline([Passthrough()], maxsize=1) as p:
        for i in range(3):
            await asyncio.wait_for(p.push(TextChunk(turn=0, text=str(i))), SOON)
            await settle()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(p.push(TextChunk(turn=0, text="3")), 0.05)

        # A producer that keeps pushing gets no further while the sink does not read.
        pushed: list[int] = []

        async def producer() -> None:
            for i in range(3, 10):
                await p.push(TextChunk(turn=0, text=str(i)))
                pushed.append(i)

        task = asyncio.create_task(producer())
        await settle()
        assert pushed == []
        assert not task.done()
        assert all(q.qsize() <= 1 for q in p._queues)

        # Reading releases the producer, and nothing was lost or reordered.
        out = await take(p, 10)
        await asyncio.wait_for(task, SOON)
    assert [f.text for f in out] == [str(i) for i in range(10)]
    assert pushed == list(range(3, 10))


# --- interruption -------------------------------------------------------------------------


class Stuck(Stage):
    """Hangs on a text "slow" until cancelled; forwards anything else."""

    accepts = (TextChunk,)

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.never = asyncio.Event()
        self.cancelled = False
        self.finished = False
        self.resets = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, TextChunk)
        if frame.text == "slow":
            self.started.set()
            try:
                await self.never.wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise
            self.finished = True
            yield TextChunk(turn=frame.turn, text="slow done")
        else:
            yield frame

    def reset(self) -> None:
        self.resets += 1


async def test_interrupt_cancels_work_resets_and_starts_a_new_turn() -> None:
    stuck, tail = Stuck(), Passthrough()
    head = Passthrough()
    async with Pipeline([head, stuck, tail]) as p:
        assert p.turn == 0
        await p.push(TextChunk(turn=0, text="slow"))
        await asyncio.wait_for(stuck.started.wait(), SOON)

        new_turn = await p.interrupt("barge-in")

        assert new_turn == 1
        assert p.turn == 1
        assert stuck.cancelled
        assert not stuck.finished
        assert (head.resets, stuck.resets, tail.resets) == (1, 1, 1)

        # Old-turn content pushed afterwards is dropped; the new turn flows, in order.
        await p.push(TextChunk(turn=0, text="old"))
        await p.push(TextChunk(turn=1, text="new"))
        await p.push(TurnEnd(turn=1))
        out = await take(p, 3)

    assert out[0] == Interrupt(turn=1, reason="barge-in")
    assert out[1] == TextChunk(turn=1, text="new")
    assert out[2] == TurnEnd(turn=1)


async def test_interrupt_cancels_a_virtual_clock_sleep() -> None:
    clock = VirtualClock()
    woke = False
    cancelled = asyncio.Event()
    started = asyncio.Event()

    class Pacer(Stage):
        accepts = (TextChunk,)

        async def process(self, frame: Frame) -> AsyncIterator[Frame]:
            nonlocal woke
            started.set()
            try:
                await clock.sleep(10.0)
                woke = True
            finally:
                if not woke:
                    cancelled.set()
            yield frame

    async with Pipeline([Pacer()], clock=clock) as p:
        await p.push(TextChunk(turn=0, text="paced"))
        await asyncio.wait_for(started.wait(), SOON)
        await p.interrupt()
        assert cancelled.is_set()
        # Time passing afterwards must not resurrect the cancelled work.
        await clock.advance(20.0)
        await settle()
        await p.push(TurnEnd(turn=1))
        out = await take(p, 2)
    assert not woke
    assert out == [Interrupt(turn=1), TurnEnd(turn=1)]


async def test_interrupt_flushes_frames_queued_between_stages() -> None:
    async with Pipeline([Passthrough(), Passthrough()], maxsize=2) as p:
        for i in range(4):
            await asyncio.wait_for(p.push(TextChunk(turn=0, text=f"old{i}")), SOON)
        await settle()
        assert any(q.qsize() for q in p._queues)
        await p.interrupt()
        assert all(q.qsize() == 0 for q in p._queues[:-1])
        await p.push(TextChunk(turn=1, text="new"))
        out = await take(p, 2)
    assert out == [Interrupt(turn=1), TextChunk(turn=1, text="new")]


async def test_stale_stage_outputs_are_dropped_but_control_frames_kept() -> None:
    class Echo(Stage):
        """Tags everything it emits with turn 0, as a stage with stale state would."""

        accepts = (TextChunk,)

        async def process(self, frame: Frame) -> AsyncIterator[Frame]:
            yield TextChunk(turn=0, text="stale content")
            yield TurnEnd(turn=0)
            yield frame

    async with Pipeline([Echo()]) as p:
        p.next_turn()
        await p.push(TextChunk(turn=1, text="fresh"))
        out = await take(p, 2)
    assert out == [TurnEnd(turn=0), TextChunk(turn=1, text="fresh")]


def test_is_stale_spares_control_frames() -> None:
    p = Pipeline([Passthrough()])
    assert p.next_turn() == 1
    assert p.is_stale(TextChunk(turn=0, text="x"))
    assert not p.is_stale(TextChunk(turn=1, text="x"))
    assert not p.is_stale(TurnEnd(turn=0))
    assert not p.is_stale(Error(turn=0, stage="s", message="m"))


# --- errors -------------------------------------------------------------------------------


class Fragile(Stage):
    """Emits a partial result, then fails on texts starting with "boom"."""

    accepts = (TextChunk,)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, TextChunk)
        if frame.text.startswith("boom"):
            yield TextChunk(turn=frame.turn, text="partial")
            raise RuntimeError(f"cannot handle {frame.text}")
        yield frame


async def test_stage_error_becomes_error_frame_and_pipeline_goes_on() -> None:
    async with Pipeline([Fragile(), Append("!")]) as p:
        p.next_turn()
        await p.push(TextChunk(turn=1, text="boom 1"))
        await p.push(TextChunk(turn=1, text="fine"))
        await p.push(TextChunk(turn=1, text="boom 2"))
        await p.push(TextChunk(turn=1, text="still fine"))
        out = await take(p, 6)
    assert out == [
        TextChunk(turn=1, text="partial!"),
        Error(turn=1, stage="Fragile", message="cannot handle boom 1"),
        TextChunk(turn=1, text="fine!"),
        TextChunk(turn=1, text="partial!"),
        Error(turn=1, stage="Fragile", message="cannot handle boom 2"),
        TextChunk(turn=1, text="still fine!"),
    ]
    assert out[1].retryable is False


# --- virtual clock ------------------------------------------------------------------------


async def test_virtual_clock_wakes_sleepers_at_their_deadlines_in_order() -> None:
    clock = VirtualClock(start=100.0)
    woken: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woken.append((name, clock.now()))

    # Started out of deadline order on purpose.
    tasks = [
        asyncio.create_task(sleeper("c", 3.0)),
        asyncio.create_task(sleeper("a", 1.0)),
        asyncio.create_task(sleeper("b", 2.0)),
    ]
    await settle()
    assert woken == []

    await clock.advance(0.75)
    await settle()
    assert woken == []
    assert clock.now() == 100.75

    await clock.advance(0.25)  # exactly a's deadline
    await settle()
    assert woken == [("a", 101.0)]

    await clock.advance(5.0)  # past both b and c at once: woken in deadline order
    await settle()
    assert woken == [("a", 101.0), ("b", 106.0), ("c", 106.0)]
    await asyncio.wait_for(asyncio.gather(*tasks), SOON)


async def test_virtual_clock_zero_sleep_does_not_wait() -> None:
    clock = VirtualClock()
    await asyncio.wait_for(clock.sleep(0), SOON)
    await asyncio.wait_for(clock.sleep(-1), SOON)
    assert clock.now() == 0.0


class Chatty(Stage):
    """Yields two frames per input; says when its generator is closed."""

    accepts = (TextChunk,)

    def __init__(self) -> None:
        self.closed_at_teardown = False

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        try:
            yield TextChunk(turn=frame.turn, text="one")
            yield TextChunk(turn=frame.turn, text="two")
        finally:
            self.closed_at_teardown = True


async def test_a_stage_torn_down_mid_frame_is_closed_then_not_left_to_the_loop() -> None:
    # Nobody reads the output: the worker waits to put "two" with the stage's generator
    # suspended. Closing the pipeline must close that generator itself; a generator dropped
    # unclosed is handed to the event loop's finalizer, which closes it later in a stray task
    # (seen by a session test as one task too many, right after the session closed).
    import sys

    hooks = sys.get_asyncgen_hooks()
    dropped: list[str] = []

    def finalizer(agen):  # noqa: ANN001
        dropped.append(agen.ag_code.co_qualname)
        hooks.finalizer(agen)

    stage = Chatty()
    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        async with Pipeline([stage], maxsize=1) as p:
            await p.push(TextChunk(turn=0, text="go"))
            for _ in range(20):
                await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        sys.set_asyncgen_hooks(*hooks)
    assert stage.closed_at_teardown
    assert "Chatty.process" not in dropped
