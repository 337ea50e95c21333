"""Drive mode: the driver's audio is the avatar's voice and moves its lips.

Speech comes from the project's own voice. Offline sessions (``realtime=False``) give exact,
deterministic output; the live session runs on a virtual clock, so delays are measured in
media time, never on the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib

import av
import numpy as np
import pytest
from engine_helpers import make_engine

from anima.asr.audio import AudioError
from anima.engine.drive import MAX_LAG
from anima.events import FaceParams, StateChanged
from anima.frames import AudioFrame, VideoFrame
from anima.pipeline import VirtualClock

FPS = 25


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A drive session loads only the voice and the lip-sync network: no engine.load()."""
    eng = make_engine(tmp_path_factory.mktemp("drive"))
    yield eng
    asyncio.run(eng.aclose())


@pytest.fixture(scope="module")
def talk(voice) -> np.ndarray:
    """0.5 s silence, a sentence in the project's voice (22050 Hz), 1 s silence."""
    pcm = np.concatenate([c.pcm for c in voice.synthesize("Hello there, welcome to the museum.")])
    rate = voice.sample_rate
    return np.concatenate([np.zeros(rate // 2, np.int16), pcm, np.zeros(rate, np.int16)])


def blocks(pcm: np.ndarray, rate: int, seconds: float = 0.02):
    n = int(rate * seconds)
    for i in range(0, len(pcm), n):
        yield pcm[i : i + n]


async def drive_offline(engine, pcm: np.ndarray, rate: int, channels: int = 1, media="params"):
    s = engine.session(media=media, realtime=False, drive=True)
    await s.start()
    try:
        for b in blocks(pcm, rate * channels):
            s.push_audio(b, rate, channels)
        s.end_audio()
        async with asyncio.timeout(60):
            return [item async for item in s.frames()], s.sample_rate
    finally:
        await s.aclose()


def frame_loudness(pcm: np.ndarray, n: int) -> np.ndarray:
    frames = len(pcm) // n
    x = pcm[: frames * n].astype(np.float64).reshape(frames, n)
    return np.sqrt((x**2).mean(axis=1))


def speech_and_silence(pcm: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices of clear speech, and of silence at least 0.2 s from any speech."""
    loud = frame_loudness(pcm, n)
    speech = np.flatnonzero(loud > 1500)
    voiced = loud > 30
    near = np.convolve(voiced, np.ones(11), mode="same") > 0  # ±5 frames of any sound
    return speech, np.flatnonzero(~near)


async def test_offline_drive_passes_the_audio_through_and_moves_the_lips(engine, talk):
    items, rate = await drive_offline(engine, talk, 22050)
    assert rate == 22050
    audio = [i for i in items if isinstance(i, AudioFrame)]
    faces = [i for i in items if isinstance(i, FaceParams)]
    n = rate // FPS
    # Continuous: one audio block of n samples per picture, pts without gaps, to the last frame.
    assert len(audio) == len(faces) == -(-len(talk) // n)
    assert [f.index for f in faces] == list(range(len(faces)))
    assert all(a.pts == k * n and len(a.pcm) == n for k, a in enumerate(audio))
    out = np.concatenate([a.pcm for a in audio])
    # At the output rate the voice passes bit for bit, with no delay; the last frame is padded.
    assert np.array_equal(out[: len(talk)], talk) and not out[len(talk) :].any()
    # The mouth opens during speech and rests in silence.
    jaw = np.array([f.jaw_open for f in faces])
    speech, silence = speech_and_silence(talk, n)
    assert len(speech) > 20 and len(silence) > 20
    assert jaw[speech].mean() > 0.15 and np.percentile(jaw[speech], 75) > 0.2
    assert jaw[silence].max() < 0.06
    assert not any(faces[k].speaking for k in silence)
    assert np.mean([faces[k].speaking for k in speech]) > 0.7
    # States: idle, speaking from the first moving frame, idle again after the hangover.
    states = [i.state for i in items if isinstance(i, StateChanged)]
    assert states == ["idle", "speaking", "idle"]
    spoken = [a.turn for a in audio if a.turn]
    assert spoken and set(spoken) == {1} and audio[0].turn == 0 and audio[-1].turn == 0


async def test_other_rates_and_stereo_are_resampled_in_sync(engine, talk, voice):
    """16 kHz stereo float in: the output is the input resampled, no lag, same mouth track."""
    ref_items, _ = await drive_offline(engine, talk, 22050)
    at16 = resample(talk, 22050, 16_000)
    stereo = np.repeat(at16.astype(np.float32) / 32768.0, 2)
    items, rate = await drive_offline(engine, stereo, 16_000, channels=2)
    out = np.concatenate([i.pcm for i in items if isinstance(i, AudioFrame)]).astype(float)
    want = resample(at16, 16_000, rate).astype(float)
    m = min(len(out), len(want))
    lag = best_lag(out[:m], want[:m], 50)
    assert lag == 0  # time-aligned: the filters hold samples back but do not shift them
    err = out[:m] - want[:m]
    snr = 10 * np.log10((want[:m] ** 2).sum() / max((err**2).sum(), 1.0))
    assert snr > 30, snr
    jaw = np.array([f.jaw_open for f in items if isinstance(f, FaceParams)])
    ref = np.array([f.jaw_open for f in ref_items if isinstance(f, FaceParams)])
    k = min(len(jaw), len(ref))
    assert abs(len(jaw) - len(ref)) <= 1
    assert np.corrcoef(jaw[:k], ref[:k])[0, 1] > 0.9  # the same speech moves the same lips


class LiveMic:
    """A live session on a virtual clock fed like a microphone: a block every ``step`` s."""

    def __init__(self, engine, media: str = "params", step: float = 0.02) -> None:
        self.clock = VirtualClock()
        self.session = engine.session(media=media, realtime=True, clock=self.clock, drive=True)
        self.step = step
        self.got: list = []

    async def __aenter__(self) -> LiveMic:
        await self.session.start()
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for item in self.session.frames():
            self.got.append(item)

    async def tick(self, seconds: float | None = None) -> None:
        await self.clock.advance(self.step if seconds is None else seconds)
        for _ in range(5):
            await asyncio.sleep(0)

    async def finish(self) -> None:
        """The driver stops; the held frames go out on their slots, then the output ends."""
        for _ in range(10):
            await self.tick()
        self.session.end_audio()
        for _ in range(20):
            await self.tick()
        assert self.reader.done()

    async def __aexit__(self, *exc: object) -> None:
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader
        await self.session.aclose()


async def test_live_drive_on_a_virtual_clock_lags_about_one_frame(engine, talk):
    async with LiveMic(engine) as mic:
        s = mic.session
        rate, n = s.sample_rate, s.sample_rate // FPS
        await mic.tick(0.013)  # the driver starts off the frame grid (a frame is 40 ms)
        t0 = mic.clock.now()  # the first block's first sample is captured now, arrives 20 ms on
        for b in blocks(talk, rate, mic.step):
            await mic.tick()
            s.push_audio(b, rate)
        await mic.finish()
        got = mic.got
    audio = [i for i in got if isinstance(i, AudioFrame)]
    faces = [i for i in got if isinstance(i, FaceParams)]
    assert len(audio) == len(faces) and [f.index for f in faces] == list(range(len(faces)))
    assert all(a.pts == k * n and len(a.pcm) == n for k, a in enumerate(audio))  # no gaps
    out = np.concatenate([a.pcm for a in audio])
    start = int(np.flatnonzero(out)[0]) - int(np.flatnonzero(talk)[0])
    assert start % n == 0  # the driver's audio starts on a frame boundary
    assert np.array_equal(out[start : start + len(talk)], talk)  # every sample, in order
    latency = start / rate - t0  # media time the first sample plays minus its capture time
    # One frame of buffering is the floor; waiting for the next frame slot adds under one more.
    assert 1 / FPS - 1e-9 <= latency <= 2 / FPS + 1e-9, latency
    # A/V sync: the face shown with driver frame j has the mouth for that frame's audio.
    offline, _ = await drive_offline(engine, talk, rate)
    ref = np.array([f.jaw_open for f in offline if isinstance(f, FaceParams)])
    live = np.array([f.jaw_open for f in faces])[start // n : start // n + len(ref)]
    assert np.abs(live - ref[: len(live)]).max() < 0.02
    assert not any(f.speaking for f in faces[: start // n])  # idle before the driver speaks


async def test_a_late_live_feed_wins_the_delay_back_in_silence(engine, voice):
    rate = voice.sample_rate
    a, b = (np.concatenate([c.pcm for c in voice.synthesize(t)]) for t in ("One.", "Two."))
    gap = np.zeros(int(0.8 * rate), np.int16)
    talk = np.concatenate([gap[: rate // 4], a, gap, b, gap])
    start_b = rate // 4 + len(a) + len(gap)
    async with LiveMic(engine) as mic:
        s = mic.session
        n = rate // FPS
        held: list[np.ndarray] = []
        for i, block in enumerate(blocks(talk, rate, mic.step)):
            await mic.tick()
            held.append(block)
            if 6 <= (i * len(block) - rate // 4 - len(a)) // len(block) < 10:
                continue  # in the pause: the network stalls for 80 ms, then all of it arrives
            for x in held:
                s.push_audio(x, rate)
            held = []
        await mic.finish()
        dropped = s.dropped_audio
    out = np.concatenate([i.pcm for i in mic.got if isinstance(i, AudioFrame)])

    def delay(first: int, length: int) -> int:
        """Frames between where ``talk[first:first+length]`` was pushed and where it plays."""
        seg = talk[first : first + length]
        for d in range(-10, 40):
            at = first + d * n
            if 0 <= at and np.array_equal(out[at : at + length], seg):
                return d
        raise AssertionError("the segment is not in the output")

    before = delay(rate // 4, len(a))
    after = delay(start_b, len(b))
    # The stall cost idle frames; silent frames of the pause were skipped to make up for them,
    # so the second word lags no more than the first, and no speech was lost.
    assert after == before, (before, after)
    assert 0 < dropped <= 4 * n and dropped % n == 0


async def test_a_live_backlog_is_dropped_to_keep_the_delay_low(engine, talk):
    clock = VirtualClock()
    s = engine.session(media="events", realtime=True, clock=clock, drive=True)
    await s.start()
    try:
        s.push_audio(talk, 22050)  # seconds of audio at once, as after a network stall
        held = s._drive.held_seconds  # noqa: SLF001 - the buffer is the point of the test
        assert held <= MAX_LAG + 1 / FPS
        assert s.dropped_audio >= len(talk) - (MAX_LAG + 1 / FPS) * 22050
    finally:
        await s.aclose()


async def test_bad_input_and_speech_commands_are_refused_clearly(engine):
    with pytest.raises(ValueError, match="push-to-talk"):
        engine.session(drive=True, listening="ptt")
    s = engine.session(media="events", realtime=False, drive=True, greet=True)
    with pytest.raises(RuntimeError, match="start"):
        s.push_audio(np.zeros(160, np.int16), 16_000)
    await s.start()
    try:
        assert s.state == "idle" and not s.greet
        with pytest.raises(AudioError, match="outside 8000"):
            s.push_audio(np.zeros(160, np.int16), 4_000)
        with pytest.raises(AudioError, match="int32 is not supported"):
            s.push_audio(np.zeros(160, np.int32), 16_000)
        with pytest.raises(AudioError, match="NaN"):
            s.push_audio(np.full(160, np.nan, np.float32), 16_000)
        with pytest.raises(AudioError, match="divide into 2 channels"):
            s.push_audio(np.zeros(161, np.int16), 16_000, 2)
        with pytest.raises(RuntimeError, match="drive session"):
            await s.say("hello")
        with pytest.raises(RuntimeError, match="drive session"):
            await s.ask("hello?")
        with pytest.raises(RuntimeError, match="push-to-talk"):
            s.ptt_start()
        await s.interrupt()  # nothing of its own to cut: a no-op
        s.presence(True)  # no greeting
        s.push_audio(np.zeros(1600, np.int16), 16_000)  # still usable after refusals
        s.end_audio()
        with pytest.raises(RuntimeError, match="ended"):
            s.push_audio(np.zeros(160, np.int16), 16_000)
        items = [i async for i in s.frames()]
        assert [i.state for i in items if isinstance(i, StateChanged)] == ["idle"]
    finally:
        await s.aclose()
    with pytest.raises(RuntimeError, match="drive session"):
        engine.session(media="events").end_audio()


@pytest.mark.slow
async def test_video_drive_renders_a_picture_per_audio_frame(engine, talk):
    items, rate = await drive_offline(engine, talk[: 22050 * 2], 22050, media="video")
    audio = [i for i in items if isinstance(i, AudioFrame)]
    video = [i for i in items if isinstance(i, VideoFrame)]
    assert len(video) == len(audio) == 50 and video[0].image.shape == (128, 128, 3)
    # The lower face moves while speaking, more than between two silent frames.
    speech, silence = speech_and_silence(talk[: 22050 * 2], rate // FPS)

    def mouth(k: int) -> np.ndarray:
        return video[k].image[80:112, 40:88].astype(float)

    silent = [
        np.abs(mouth(a) - mouth(b)).mean() for a, b in zip(silence, silence[1:], strict=False)
    ]
    spoken = [np.abs(mouth(k) - mouth(silence[0])).mean() for k in speech]
    assert max(spoken) > 2 * max(max(silent), 0.5)


def resample(pcm: np.ndarray, rate: int, to: int) -> np.ndarray:
    """A whole clip of int16 mono, resampled in one go by FFmpeg (the reference)."""
    r = av.AudioResampler(format="s16", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray().reshape(-1) for f in [*r.resample(frame), *r.resample(None)]]
    return np.concatenate(out).astype(np.int16)


def best_lag(a: np.ndarray, b: np.ndarray, most: int) -> int:
    """The shift of ``a`` against ``b`` (within ±most samples) that matches them best."""
    m = len(a) - 2 * most
    scores = [
        np.dot(a[most + d : most + d + m], b[most : most + m]) for d in range(-most, most + 1)
    ]
    return int(np.argmax(scores)) - most
