"""The real speaking chain (Piper -> lip-sync -> render) inside the pipeline, interrupted."""

import asyncio

import pytest

from anima.frames import AudioFrame, Interrupt, MediaClock, TextChunk, TurnEnd, VideoFrame
from anima.render.animator import FaceAnimator
from anima.render_job import speaking_pipeline

LONG = "This is a long answer. " * 8


async def test_barge_in_cuts_the_real_chain_and_the_next_turn_flows(avatar, voice):
    clock = MediaClock(voice.sample_rate, 25)
    animator = FaceAnimator(avatar, seed=1)
    async with speaking_pipeline(voice, animator, clock) as pipe:
        first = pipe.next_turn()
        await pipe.push(TextChunk(turn=first, text=LONG))
        out = pipe.frames()
        # Wait for the first rendered frame of the long answer, then barge in.
        while not isinstance(frame := await asyncio.wait_for(anext(out), 30), VideoFrame):
            pass
        assert frame.turn == first
        second = await pipe.interrupt("user spoke")
        assert second == first + 1
        await pipe.push(TextChunk(turn=second, text="Yes?"))
        await pipe.push(TurnEnd(turn=second))
        seen = []
        while True:
            frame = await asyncio.wait_for(anext(out), 30)
            seen.append(frame)
            if isinstance(frame, TurnEnd):
                break
    assert isinstance(seen[0], Interrupt) and seen[0].turn == second
    # Nothing of the interrupted answer leaks out after the interrupt.
    assert all(f.turn == second for f in seen)
    audio = [f for f in seen if isinstance(f, AudioFrame)]
    video = [f for f in seen if isinstance(f, VideoFrame)]
    assert len(audio) == 1 and video
    # The long answer was ~16 s; only a short "Yes?" followed, so most of it was cancelled.
    assert sum(len(a.pcm) for a in audio) < 2 * voice.sample_rate
    # Video of the new turn continues the session clock from its audio pts.
    assert video[0].index == clock.frames_for_samples(audio[0].pts)


@pytest.mark.parametrize("text", ["", "   "])
async def test_empty_text_makes_no_speech(voice, text):
    chunks = list(voice.synthesize(text))
    assert chunks == []
