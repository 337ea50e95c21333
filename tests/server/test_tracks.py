"""The media tracks with a small fake frame source: pts, pacing, bounds, teardown."""

import asyncio

import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError

from anima.server.tracks import (
    OUT_FRAME,
    OUT_RATE,
    VIDEO_CLOCK,
    AudioOutTrack,
    MediaPacer,
    Rechunker,
    VideoOutTrack,
)


class FakeClock:
    """Time moves only when the pacer sleeps (asyncio.sleep is patched to advance it)."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    real_sleep = asyncio.sleep

    async def sleep(seconds, *args):
        c.slept.append(seconds)
        c.t += seconds
        await real_sleep(0)

    monkeypatch.setattr("anima.server.tracks.asyncio.sleep", sleep)
    return c


def test_rechunker_resamples_to_whole_20ms_frames():
    r = Rechunker()
    out = []
    for _ in range(50):  # 50 x 882 samples at 22050 Hz = 2 s
        out += r.push(np.full(882, 1000, np.int16), 22050)
    assert all(len(f) == OUT_FRAME for f in out)
    total = len(out) * OUT_FRAME
    assert abs(total - 2 * OUT_RATE) < 2 * OUT_FRAME  # the resampler keeps a short delay
    assert int(np.median(np.concatenate(out[5:]))) == 1000
    r48 = Rechunker()
    assert len(r48.push(np.zeros(OUT_FRAME * 3 + 10, np.int16), OUT_RATE)) == 3
    assert len(r48.push(np.zeros(OUT_FRAME - 10, np.int16), OUT_RATE)) == 1  # remainder carried


async def test_video_track_pts_and_pacing(clock):
    pacer = MediaPacer(clock)
    track = VideoOutTrack(pacer, fps=25)
    image = np.zeros((64, 64, 3), np.uint8)
    for k in range(3):
        track.put_image(image, k)
    frames = [await track.recv() for _ in range(3)]
    assert [f.pts for f in frames] == [0, VIDEO_CLOCK // 25, 2 * VIDEO_CLOCK // 25]
    assert frames[0].time_base.denominator == VIDEO_CLOCK
    assert (frames[0].width, frames[0].height) == (64, 64)
    assert clock.t == pytest.approx(100.0 + 2 / 25)  # released at 0, 40, 80 ms


async def test_audio_and_video_share_one_clock(clock):
    pacer = MediaPacer(clock)
    audio, video = AudioOutTrack(pacer), VideoOutTrack(pacer, fps=25)
    audio.start_at(0, 22050)
    for _ in range(10):
        audio.put_pcm(np.ones(OUT_FRAME, np.int16) * 500)
    video.put_image(np.zeros((8, 8, 3), np.uint8), 0)
    video.put_image(np.zeros((8, 8, 3), np.uint8), 5)  # due at 200 ms
    first = await audio.recv()
    assert first.pts == 0 and first.sample_rate == OUT_RATE and first.samples == OUT_FRAME
    await video.recv()
    await video.recv()
    assert clock.t == pytest.approx(100.2)
    # Audio frames already due are not delayed any further.
    before = clock.t
    for _ in range(9):
        frame = await audio.recv()
    assert frame.pts == 9 * OUT_FRAME
    assert clock.t == pytest.approx(before)
    assert audio.energy_samples == 10 * OUT_FRAME


async def test_audio_pts_start_from_session_clock(clock):
    audio = AudioOutTrack(MediaPacer(clock))
    audio.start_at(22050, 22050)  # the session's audio began 1 s in
    audio.put_pcm(np.zeros(OUT_FRAME, np.int16))
    assert (await audio.recv()).pts == OUT_RATE


async def test_stall_reanchors_instead_of_bursting(clock):
    pacer = MediaPacer(clock)
    await pacer.wait(0.0)
    clock.t += 1.0  # the source stalled for a second
    await pacer.wait(0.04)
    assert pacer.stalls == 1
    await pacer.wait(0.08)  # next frame is paced again from the new anchor
    assert clock.slept[-1] == pytest.approx(0.04)


async def test_queue_is_bounded_oldest_dropped(clock):
    track = VideoOutTrack(MediaPacer(clock), fps=25, queue_seconds=0.2)  # 5 frames
    for k in range(12):
        track.put_image(np.zeros((8, 8, 3), np.uint8), k)
    assert track.dropped == 7
    assert (await track.recv()).pts == 7 * VIDEO_CLOCK // 25


async def test_stop_ends_a_waiting_recv():
    track = AudioOutTrack(MediaPacer())
    waiter = asyncio.create_task(track.recv())
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await waiter
    track.put_pcm(np.zeros(OUT_FRAME, np.int16))  # ignored once stopped
    with pytest.raises(MediaStreamError):
        await track.recv()
