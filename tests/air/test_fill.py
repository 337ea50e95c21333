"""fill_utterance: one turn's pipeline output into an Utterance, and the teardown it owns."""

import asyncio

import numpy as np

from anima.air.fill import fill_utterance
from anima.air.program import Program, Utterance
from anima.frames import AudioFrame, Error, Interrupt, MouthFrame, MouthShape, TurnEnd
from anima.pipeline import wait_any

OPEN = MouthShape(jaw_open=0.5)


async def _stream(frames):
    for frame in frames:
        yield frame
    await asyncio.Event().wait()  # like Pipeline.frames: never ends by itself


def _audio(turn: int, n: int) -> AudioFrame:
    return AudioFrame(turn=turn, pcm=np.ones(n, np.int16), sample_rate=16_000)


async def _fill(frames, turn: int = 2, on_audio=None):
    feeder = asyncio.create_task(asyncio.Event().wait())
    utt = Utterance("hi")
    program = Program()
    captions = iter(["Hello.", "Bye."])
    errors = await asyncio.wait_for(
        fill_utterance(
            _stream(frames),
            utt,
            turn,
            feeder=feeder,
            program=program,
            caption=lambda t: next(captions),
            on_audio=on_audio,
        ),
        10,
    )
    return utt, errors, feeder


async def test_takes_only_its_turn_until_turn_end_and_tears_down():
    seen = []
    utt, errors, feeder = await _fill(
        [
            _audio(1, 50),  # an older turn's leftovers: skipped
            _audio(2, 100),
            MouthFrame(turn=2, index=0, shape=OPEN, speaking=True),
            _audio(2, 30),
            TurnEnd(turn=2),
            _audio(2, 999),  # after the end: never read
        ],
        on_audio=lambda f: seen.append(len(f.pcm)),
    )
    assert errors == []
    assert seen == [100, 30]
    assert utt._audio_len == 130
    assert utt.sentences == [(0, "Hello."), (100, "Bye.")]
    assert utt.mouths == [(OPEN, True)]
    assert utt.closed and feeder.cancelled()


async def test_error_and_later_interrupt_end_the_turn():
    utt, errors, feeder = await _fill([_audio(2, 10), Error(turn=2, stage="tts", message="boom")])
    assert [(e.stage, e.message) for e in errors] == [("tts", "boom")]
    assert utt.closed and feeder.cancelled()

    utt, errors, _ = await _fill([Interrupt(turn=2), _audio(2, 10), Interrupt(turn=3)])
    assert errors == [] and utt._audio_len == 10  # its own turn's Interrupt does not end it


async def test_wait_any_returns_on_the_first_and_cancels_the_rest():
    first, never = asyncio.Event(), asyncio.Event()
    waiter = asyncio.create_task(wait_any(first.wait(), never.wait()))
    await asyncio.sleep(0)
    assert not waiter.done()
    first.set()
    await asyncio.wait_for(waiter, 5)
    assert len(asyncio.all_tasks()) == 1  # only this test: the other wait was cancelled
