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


async def test_frames_on_time_go_out_at_once(clock):
    pacer = MediaPacer(clock, warmup=0.0)
    track = VideoOutTrack(pacer, fps=25)
    image = np.zeros((64, 64, 3), np.uint8)
    pts = []
    for k in range(3):  # a source that is itself real-time: one frame every 40 ms
        track.put_image(image, k)
        frame = await track.recv()
        pts.append(frame.pts)
        clock.t += 0.04
    assert pts == [0, VIDEO_CLOCK // 25, 2 * VIDEO_CLOCK // 25]
    assert frame.time_base.denominator == VIDEO_CLOCK
    assert (frame.width, frame.height) == (64, 64)
    assert clock.slept == [] and pacer.waits == 0  # nothing held back: no added latency


async def test_a_burst_is_paced_on_the_audio_clock(clock):
    pacer = MediaPacer(clock, warmup=0.0)
    audio, video = AudioOutTrack(pacer), VideoOutTrack(pacer, fps=25)
    audio.start_at(0, 22050)
    audio.put_pcm(np.ones(OUT_FRAME, np.int16) * 500)  # anchors the clock at t=100
    first = await audio.recv()
    assert first.pts == 0 and first.sample_rate == OUT_RATE and first.samples == OUT_FRAME
    for _ in range(9):  # then 180 ms of audio and a picture due at 200 ms arrive at once
        audio.put_pcm(np.ones(OUT_FRAME, np.int16) * 500)
    video.put_image(np.zeros((8, 8, 3), np.uint8), 5)
    for _ in range(9):
        frame = await audio.recv()
    assert frame.pts == 9 * OUT_FRAME
    assert clock.t == pytest.approx(100.18)  # released in real time, not as a burst
    await video.recv()
    assert clock.t == pytest.approx(100.2)  # the picture on the same clock
    assert audio.energy_samples == 10 * OUT_FRAME


async def test_audio_pts_start_from_session_clock(clock):
    audio = AudioOutTrack(MediaPacer(clock))
    audio.start_at(22050, 22050)  # the session's audio began 1 s in
    audio.put_pcm(np.zeros(OUT_FRAME, np.int16))
    assert (await audio.recv()).pts == OUT_RATE


async def test_late_source_adds_no_lasting_delay(clock):
    pacer = MediaPacer(clock, warmup=0.0)
    track = VideoOutTrack(pacer, fps=25)
    track.put_image(np.zeros((8, 8, 3), np.uint8), 0)
    await track.recv()
    clock.t += 1.0  # the source stalled for a second, then goes on in real time
    for k in (1, 2, 3):
        track.put_image(np.zeros((8, 8, 3), np.uint8), k)
    frame = await track.recv()  # the pictures already late are skipped for the newest
    assert frame.pts == 3 * VIDEO_CLOCK // 25 and track.skipped == 2
    assert clock.slept == []


async def test_queue_is_bounded_oldest_dropped(clock):
    track = VideoOutTrack(MediaPacer(clock), fps=25, queue_seconds=0.2)  # 5 frames
    for k in range(12):
        track.put_image(np.zeros((8, 8, 3), np.uint8), k)
    assert track.dropped == 7
    assert len(track._queue) == 5


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


async def test_encoded_audio_is_timed_to_the_wire(clock):
    pacer = MediaPacer(clock, warmup=0.0)
    seen = []
    audio = AudioOutTrack(pacer, encode=True, on_wire=seen.append)
    audio.put_pcm(np.zeros(OUT_FRAME, np.int16))
    audio.put_pcm(np.full(OUT_FRAME, 3000, np.int16), mark=7)  # the reply's first loud frame
    first = await audio.recv()
    assert first.pts == 0 and bytes(first)  # an Opus packet, not a raw frame
    clock.t += 0.005
    packet = await audio.recv()
    assert packet.pts == OUT_FRAME and packet.time_base == first.time_base
    assert seen == []  # handed to aiortc, not yet sent
    clock.t += 0.003  # aiortc packetises and sends, then asks for the next frame
    audio.put_pcm(np.zeros(OUT_FRAME, np.int16))
    await audio.recv()
    (timing,) = seen
    assert timing.turn == 7 and timing.rtp_pts == OUT_FRAME
    parts = timing.parts()
    assert parts["out_send"] == pytest.approx(0.003)
    assert parts["output"] == pytest.approx(parts["out_queue"] + parts["out_pacing"] + 0.003)


async def test_a_timed_frame_passed_over_hands_its_timing_on(clock):
    pacer = MediaPacer(clock, warmup=0.0)
    seen = []
    audio = AudioOutTrack(pacer, queue_seconds=0.08, on_wire=seen.append)  # 4 frames
    audio.put_pcm(np.full(OUT_FRAME, 3000, np.int16), mark=3)
    for _ in range(4):  # the queue overflows: the timed frame is dropped
        audio.put_pcm(np.full(OUT_FRAME, 3000, np.int16))
    await audio.recv()
    await audio.recv()  # asking again means the last one is on the wire
    assert [t.turn for t in seen] == [3]


async def test_microphone_receiver_releases_each_packet_as_it_arrives():
    from aiortc import RTCPeerConnection
    from aiortc.rtp import RtpPacket

    from anima.server.rtc import low_latency_input

    pc = RTCPeerConnection()
    try:
        audio = pc.addTransceiver("audio").receiver
        video = pc.addTransceiver("video").receiver
        assert low_latency_input(audio) and not low_latency_input(video)
        buffer = audio._RTCRtpReceiver__jitter_buffer

        def add(seq):
            packet = RtpPacket(sequence_number=seq % 65536, timestamp=seq * 960)
            packet._data = b"x"  # one 20 ms Opus packet
            frame = buffer.add(packet)[1]
            return None if frame is None else frame.timestamp

        # aiortc's default (four packets held) releases nothing before the fifth packet, and
        # any of its buffers holds each packet until the next one arrives.
        assert [add(seq) for seq in range(5)] == [0, 960, 1920, 2880, 3840]
        assert add(7) == 7 * 960  # a lost packet (5, 6) is not waited for
        assert add(6) is None  # late: the listener has moved on
        buffer = type(buffer)(capacity=16)  # sequence numbers wrap around
        assert [add(seq) for seq in range(65534, 65538)] == [
            seq * 960 for seq in range(65534, 65538)
        ]
    finally:
        await pc.close()


def test_a_turn_is_timed_from_its_first_audible_chunk():
    from anima.server.rtc import audible

    t = np.arange(OUT_FRAME) / 48_000
    assert not audible(np.zeros(OUT_FRAME, np.int16)) and not audible(np.zeros(0, np.int16))
    # Piper's onset: a few non-zero samples, -80 dBFS, which nobody hears.
    assert not audible((3 * np.sin(2 * np.pi * 200 * t)).astype(np.int16))
    assert audible((0.02 * 32767 * np.sin(2 * np.pi * 200 * t)).astype(np.int16))  # -37 dBFS
