"""The voice never waits for the face (issue 22), on a virtual clock.

An audio-first loop sends each frame's audio the moment it is picked and renders the picture
after it; a renderer slower than the frame time sheds video (lower frame rate, skipped
frames, counted in ``anima_air_video_skipped_total``) while the audio stays continuous and
leaves exactly at each frame's deadline.
"""

import asyncio
import time

import numpy as np
from prometheus_client import REGISTRY

from anima.air.loop import Broadcaster, Pacer
from anima.air.program import Program, Utterance
from anima.engine.output import SessionAir
from anima.frames import MediaClock, MouthShape
from anima.pipeline import VirtualClock

SR, FPS = 22050, 25


class TimedSink:
    """Records what left and when, on the virtual clock."""

    def __init__(self, clock):
        self.clock = clock
        self.log = []  # (what, frame index, clock time, payload)

    def write(self, image, index, pcm, pts, rate):  # not used by an audio-first loop
        raise AssertionError("an audio-first loop sends audio and pictures separately")

    def write_audio(self, index, pcm, pts, rate):
        self.log.append(("audio", index, self.clock.now(), (pts, len(pcm), int(pcm.max()))))

    def write_video(self, image, index):
        self.log.append(("video", index, self.clock.now(), int(image[0, 0, 0])))

    def audio(self):
        return [e for e in self.log if e[0] == "audio"]

    def video(self):
        return [e for e in self.log if e[0] == "video"]


def reply(seconds):
    n = int(seconds * SR)
    u = Utterance("hello there")
    u.add_audio(np.full(n, 1000, np.int16), "hello there")
    for _ in range(-(-n * FPS // SR)):
        u.add_mouth(MouthShape(jaw_open=0.5), True)
    u.closed = True
    return u


async def advance_until(clock, cond, step=1 / FPS / 4, limit=2000):
    for _ in range(limit):
        await asyncio.sleep(0.0005)  # let executor threads see the time
        for _ in range(10):  # and the loop's tasks run to their next wait
            await asyncio.sleep(0)
        if cond():
            return
        await clock.advance(step)
    raise AssertionError("condition never met")


def skipped_total():
    return sum(
        REGISTRY.get_sample_value("anima_air_video_skipped_total", {"reason": r}) or 0.0
        for r in ("rate", "busy", "late", "voice")
    )


def audio_first_loop(program, render, sink, clock, **kwargs):
    """An audio-first broadcaster on the virtual clock, rendering inline, no lead-out."""
    return Broadcaster(
        program,
        render,
        sink,
        MediaClock(SR, FPS),
        clock=clock,
        offload=False,
        lead_out=0,
        preroll=0.04,
        audio_first=True,
        **kwargs,
    )


async def test_first_audio_of_a_reply_leaves_before_its_first_picture_is_rendered():
    clock = VirtualClock()
    program = Program()
    sink = TimedSink(clock)
    rendered = []  # (frame, speaking, clock time, audio of this frame already sent)

    def render(k, shape, speaking):
        sent = any(e[0] == "audio" and e[1] == k for e in sink.log)
        rendered.append((k, speaking, clock.now(), sent))
        img = np.zeros((8, 8, 3), np.uint8)
        img[0, 0, 0] = 200 if speaking else 10
        return img

    b = audio_first_loop(program, render, sink, clock)
    task = asyncio.create_task(b.run())
    await advance_until(clock, lambda: len(sink.audio()) >= 5)
    program.add(reply(0.5))
    await advance_until(clock, lambda: any(r[1] for r in rendered))
    first_loud = next(e for e in sink.audio() if e[3][2] > 0)
    first_face = next(r for r in rendered if r[1])
    assert first_face[0] == first_loud[1]  # the same frame: its audio went first
    assert first_face[3], "the reply's first audio must leave before its picture is rendered"
    order = [(e[0], e[1]) for e in sink.log]
    assert order.index(("audio", first_loud[1])) < order.index(("video", first_loud[1]))
    b.stop.set()
    await advance_until(clock, task.done)


async def test_a_slow_renderer_sheds_video_while_audio_stays_continuous_and_on_time():
    clock = VirtualClock()
    program = Program()
    sink = TimedSink(clock)

    def slow_render(k, shape, speaking):
        # 200 ms a picture on the virtual clock: five times the 40 ms frame time.
        start = clock.now()
        while clock.now() < start + 0.2:
            time.sleep(0.0002)
        return np.full((8, 8, 3), 200 if speaking else 10, np.uint8)

    media = MediaClock(SR, FPS)
    # The session's loop: renders in a worker thread, hands frames on inline.
    b = SessionAir(
        program,
        slow_render,
        sink,
        media,
        clock=clock,
        offload=True,
        lead_out=0,
        preroll=0.04,
        audio_first=True,
    )
    before = skipped_total()
    program.add(reply(3.0))
    task = asyncio.create_task(b.run())
    await advance_until(clock, lambda: len(sink.audio()) >= 75)
    b.stop.set()
    await advance_until(clock, task.done)

    audio = sink.audio()[:75]
    # Continuous: every frame's audio, its samples tiling the timeline without a gap.
    assert [e[1] for e in audio] == list(range(75))
    spans = [e[3] for e in audio]
    assert all(p + n == q for (p, n, _), (q, _, _) in zip(spans, spans[1:], strict=False))
    # On time: each frame's audio left within one clock step of its deadline.
    pacer = Pacer(media, 0.0)
    late = [e[2] - pacer.deadline(e[1]) for e in audio]
    assert max(late) < 1 / FPS / 4 + 1e-6, f"audio left up to {max(late) * 1e3:.0f} ms late"
    assert sum(1 for e in audio if e[3][2] > 0) >= 70  # the reply itself played, unbroken
    # Video shed: at most one picture per 200 ms render, the rest skipped and counted.
    video = [e for e in sink.video() if e[1] < 75]
    assert 3 <= len(video) <= 75 // 5 + 1
    assert b.stats.video_skipped >= 75 - len(video) - 1
    assert skipped_total() - before >= b.stats.video_skipped - 1
    assert b.stride > 1  # the frame rate was lowered
    # Each picture still follows its own audio.
    for _, k, t, _ in video:
        assert t >= next(e[2] for e in audio if e[1] == k)


async def test_an_idle_face_drops_to_a_few_frames_while_a_visitor_waits_on_the_voice():
    clock = VirtualClock()
    program = Program()
    sink = TimedSink(clock)
    busy = [False]
    rendered = []

    def render(k, shape, speaking):
        rendered.append((k, speaking))
        return np.full((8, 8, 3), 200 if speaking else 10, np.uint8)

    b = audio_first_loop(program, render, sink, clock, voice_busy=lambda: busy[0])
    before = REGISTRY.get_sample_value("anima_air_video_skipped_total", {"reason": "voice"}) or 0
    task = asyncio.create_task(b.run())
    await advance_until(clock, lambda: len(sink.audio()) >= 25)
    idle_quiet = len(rendered)
    assert idle_quiet >= 24  # nobody waits: the idle face at the full rate
    busy[0] = True  # a final decode or a reply's first sentence is under way
    await advance_until(clock, lambda: len(sink.audio()) >= 75)
    waiting = len(rendered) - idle_quiet
    assert 4 <= waiting <= 50 // 8 + 2, waiting  # every 8th frame: the face still moves
    skipped = REGISTRY.get_sample_value("anima_air_video_skipped_total", {"reason": "voice"})
    assert skipped - before >= 40
    # The reply's first picture is never held back, nor its speech frames, busy or not.
    program.add(reply(0.6))
    await advance_until(clock, lambda: sum(1 for r in rendered if r[1]) >= 10)
    speaking = [k for k, s in rendered if s]
    assert speaking == list(range(speaking[0], speaking[0] + len(speaking)))
    assert all(e[3][2] > 0 for e in sink.audio() if e[1] in speaking)
    b.stop.set()
    await advance_until(clock, task.done)
