"""LipSyncStage inside a Pipeline: audio pts and mouth-frame indices on one clock."""

from __future__ import annotations

import asyncio

import numpy as np

from anima.frames import (
    AudioFrame,
    Frame,
    MediaClock,
    MouthFrame,
    PhonemeTiming,
    SpeechChunk,
    TextChunk,
    TurnEnd,
)
from anima.lipsync.stage import LipSyncStage
from anima.pipeline import Pipeline

SR = 22050
CLOCK = MediaClock(SR, 25)


def speech(samples: int, text: str, turn: int = 0) -> SpeechChunk:
    seconds = samples / SR
    t = np.arange(samples) / SR
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * 180 * t)).astype(np.int16)
    phonemes = (
        PhonemeTiming("m", 0.0, seconds * 0.3),
        PhonemeTiming("a", seconds * 0.3, seconds * 0.8),
        PhonemeTiming("_", seconds * 0.8, seconds),
    )
    return SpeechChunk(turn=turn, pcm=pcm, sample_rate=SR, text=text, phonemes=phonemes)


async def collect_until_turn_end(pipeline: Pipeline) -> list[Frame]:
    async def run() -> list[Frame]:
        out: list[Frame] = []
        async for frame in pipeline.frames():
            if isinstance(frame, TurnEnd):
                return out
            out.append(frame)
        return out

    return await asyncio.wait_for(run(), 5.0)


async def test_two_chunks_give_audio_and_consecutive_mouth_frames() -> None:
    first, second = speech(10_000, "one"), speech(7_531, "two")
    stage = LipSyncStage(CLOCK)
    async with Pipeline([stage]) as p:
        await p.push(first)
        await p.push(second)
        await p.push(TurnEnd(turn=0))
        out = await collect_until_turn_end(p)

    audio = [f for f in out if isinstance(f, AudioFrame)]
    mouths = [f for f in out if isinstance(f, MouthFrame)]
    assert len(audio) + len(mouths) == len(out)

    assert [a.pts for a in audio] == [0, len(first.pcm)]
    assert audio[0].pcm is first.pcm and audio[1].pcm is second.pcm
    assert all(a.sample_rate == SR and a.turn == 0 for a in audio)

    total = len(first.pcm) + len(second.pcm)
    assert [m.index for m in mouths] == list(range(CLOCK.frames_for_samples(total)))
    assert stage.samples == total

    # Each chunk's audio comes before its own mouth frames, and the split is on the clock.
    second_at = next(i for i, f in enumerate(out) if f is audio[1])
    before = [f.index for f in out[:second_at] if isinstance(f, MouthFrame)]
    assert out[0] is audio[0]
    assert before == list(range(CLOCK.frames_for_samples(len(first.pcm))))
    assert any(m.speaking for m in mouths) and any(m.shape.jaw_open > 0.3 for m in mouths)


async def test_other_frames_pass_the_stage() -> None:
    text = TextChunk(turn=0, text="hello")
    async with Pipeline([LipSyncStage(CLOCK)]) as p:
        await p.push(text)
        await p.push(TurnEnd(turn=0))
        out = await collect_until_turn_end(p)
    assert out == [text]


async def test_mouth_frames_carry_the_voice_pitch_and_a_question_end() -> None:
    async with Pipeline([LipSyncStage(CLOCK)]) as p:
        await p.push(speech(SR, "It is open."))
        await p.push(speech(SR, "Is it open?"))
        await p.push(TurnEnd(turn=0))
        out = await collect_until_turn_end(p)
    mouths = [f for f in out if isinstance(f, MouthFrame)]
    told, asked = mouths[:25], mouths[25:]
    assert all(m.shape.question == 0 for m in told)
    # A steady 180 Hz voice: at its own median, so no pitch accent anywhere.
    assert all(abs(m.shape.pitch) < 0.5 for m in mouths)
    assert asked[0].shape.question == 0 and asked[-1].shape.question > 0.9
