"""The on-air loop on a virtual clock: constant rate, idle fill, gap-free audio, no drift."""

import asyncio

import numpy as np
import pytest

from anima.air.loop import Broadcaster, Pacer
from anima.air.program import Program, Silence, Utterance
from anima.frames import MediaClock, MouthShape
from anima.pipeline import VirtualClock

SR, FPS = 22050, 25
SPF = SR // FPS  # 882 samples per frame


class ListSink:
    def __init__(self):
        self.frames = []  # (index, pts, n samples, mean pcm, image marker)

    def write(self, image, index, pcm, pts, rate):
        self.frames.append(
            (index, pts, len(pcm), int(np.abs(pcm).max(initial=0)), int(image[0, 0, 0]))
        )


def render(index, shape, speaking):
    # The mouth opening is written into the picture so tests can see what was rendered.
    img = np.zeros((8, 8, 3), np.uint8)
    img[0, 0, 0] = 200 if speaking else 10
    return img


def speech(seconds, *, closed=True):
    n = int(seconds * SR)
    u = Utterance("hello")
    u.add_audio(np.full(n, 1000, np.int16), "hello")
    for _ in range(-(-n * FPS // SR)):
        u.add_mouth(MouthShape(jaw_open=0.5), True)
    u.closed = closed
    return u


def make(program, clock, **kw):
    sink = ListSink()
    b = Broadcaster(
        program, render, sink, MediaClock(SR, FPS), clock=clock, offload=False, lead_out=0, **kw
    )
    return b, sink


async def step(clock, b, frames):
    """Advance virtual time frame by frame and let the loop emit each one."""
    for _ in range(frames):
        target = b.frame + 1
        await clock.advance(1 / FPS + 1e-7)  # a hair over, so float sums never fall short
        for _ in range(50):
            if b.frame >= target:
                break
            await asyncio.sleep(0)


def check_continuous(sink):
    idx = [f[0] for f in sink.frames]
    assert idx == list(range(len(idx)))
    pts = [f[1] for f in sink.frames]
    sizes = [f[2] for f in sink.frames]
    # Audio blocks tile the timeline: each starts where the previous ended.
    assert all(p + n == q for p, n, q in zip(pts, sizes, pts[1:], strict=False))
    assert pts[0] == 0


async def test_idle_fills_when_nothing_is_said_then_speech_airs():
    clock = VirtualClock()
    program = Program()
    b, sink = make(program, clock, preroll=0.04)
    task = asyncio.create_task(b.run())
    await step(clock, b, 10)
    assert len(sink.frames) == 10 and all(f[3] == 0 and f[4] == 10 for f in sink.frames)
    program.add(speech(0.4))
    await step(clock, b, 15)
    spoken = [f for f in sink.frames if f[4] == 200]
    assert len(spoken) == 10  # 0.4 s at 25 fps, audio loud on exactly those frames
    assert all(f[3] == 1000 for f in spoken)
    program.finish()
    await step(clock, b, 2)
    await asyncio.wait_for(task, 1)
    check_continuous(sink)
    assert b.stats.speech == [("hello", spoken[0][0], spoken[-1][0] + 1)]


async def test_late_speech_is_filled_with_idle_and_never_stalls_the_output():
    clock = VirtualClock()
    program = Program()
    b, sink = make(program, clock, preroll=0.08)
    task = asyncio.create_task(b.run())
    utt = Utterance("slow")
    program.add(utt)
    # Two frames of speech arrive, then the synthesiser stalls for 10 frames.
    utt.add_audio(np.full(3 * SPF, 500, np.int16))
    for _ in range(3):
        utt.add_mouth(MouthShape(jaw_open=0.5), True)
    await step(clock, b, 14)
    assert len(sink.frames) == 14  # one frame per tick whatever the producer does
    assert b.stats.underruns >= 10
    utt.add_audio(np.full(SPF, 500, np.int16))
    utt.add_mouth(MouthShape(jaw_open=0.5), True)
    utt.closed = True
    program.finish()
    await step(clock, b, 3)
    await asyncio.wait_for(task, 1)
    check_continuous(sink)
    assert sum(f[3] == 500 for f in sink.frames) == 4  # all speech aired, none lost


async def test_pause_segment_is_silent_idle_for_its_length():
    clock = VirtualClock()
    program = Program()
    program.add(speech(0.2))
    program.add(Silence(frames=7))
    program.add(speech(0.2))
    program.finish()
    b, sink = make(program, clock, preroll=0.04)
    task = asyncio.create_task(b.run())
    await step(clock, b, 20)
    await asyncio.wait_for(task, 1)
    marks = "".join("S" if f[4] == 200 else "." for f in sink.frames)
    assert marks == "SSSSS.......SSSSS"
    check_continuous(sink)


async def test_cut_stops_speech_on_the_next_frame():
    clock = VirtualClock()
    program = Program()
    utt = speech(2.0)
    program.add(utt)
    b, sink = make(program, clock, preroll=0.04)
    task = asyncio.create_task(b.run())
    await step(clock, b, 5)
    program.cut_playing()
    program.finish()
    await step(clock, b, 2)
    await asyncio.wait_for(task, 1)
    assert [f[4] for f in sink.frames[:5]] == [200] * 5
    assert len(sink.frames) == 5  # nothing after the cut, and the show ended cleanly


async def test_offline_mode_waits_for_speech_instead_of_filling():
    program = Program()
    sink = ListSink()
    b = Broadcaster(
        program, render, sink, MediaClock(SR, FPS), realtime=False, offload=False, lead_out=0.2
    )
    task = asyncio.create_task(b.run())
    utt = Utterance("slow")
    program.add(utt)
    for _ in range(5):
        await asyncio.sleep(0)
    assert sink.frames == []  # no idle was invented while synthesis was slow
    utt.add_audio(np.full(5 * SPF, 700, np.int16))
    for _ in range(5):
        utt.add_mouth(MouthShape(), True)
    utt.closed = True
    program.notify()
    program.finish()
    await asyncio.wait_for(task, 1)
    assert [f[4] for f in sink.frames] == [200] * 5 + [10] * 5  # speech then 0.2 s lead-out
    check_continuous(sink)


@pytest.mark.parametrize(("rate", "fps"), [(22050, 25), (48000, 30), (16000, 24), (22050, 24)])
def test_no_drift_over_ten_hours(rate, fps):
    """Ten hours of frames: audio blocks tile exactly and video time tracks audio time."""
    pacer = Pacer(MediaClock(rate, fps), start=100.0)
    frames = 10 * 3600 * fps
    k = np.arange(frames + 1, dtype=np.int64)
    starts = k * rate // fps  # what Pacer.span computes, vectorised
    assert [pacer.span(int(i)) for i in (0, 1, frames - 1)] == [
        (int(starts[i]), int(starts[i + 1] - starts[i])) for i in (0, 1, frames - 1)
    ]
    sizes = np.diff(starts)
    assert sizes.sum() == 10 * 3600 * rate  # not one sample lost or added in ten hours
    assert sizes.min() >= rate // fps and sizes.max() <= -(-rate // fps)
    # A/V offset at any frame stays under one audio sample.
    assert np.max(np.abs(starts / rate - k / fps)) < 1 / rate
    # Deadlines are computed, not accumulated: the last one is exact.
    assert pacer.deadline(frames) == 100.0 + 10 * 3600
    assert abs(pacer.deadline(frames - 1) - (100.0 + 10 * 3600 - 1 / fps)) < 1e-9
