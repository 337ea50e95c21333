"""Barge-in: the user talking over the avatar cuts it off once; echo and coughs do not."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from asr_helpers import synthesize, to_int16

from anima.asr import BargeInEvent, Final, Listener, ListenerConfig, SpeechStart
from anima.asr.audio import RATE
from anima.asr.bargein import BargeInTrigger, EchoGuard
from anima.asr.stage import to_frame
from anima.frames import AudioFrame, BargeIn, Interrupt, SpeechChunk, TextChunk, TurnEnd
from anima.pipeline import Pipeline, VirtualClock
from anima.render_job import avatar_played, barge_in
from anima.tts.stage import SpeechStage

CHUNK = 320  # 20 ms


def _echo(reference: np.ndarray, delay: float = 0.06, gain: float = 0.4) -> np.ndarray:
    """What a mic hears of the loudspeaker: delayed, quieter, a little muffled."""
    muffled = np.convolve(reference, np.array([0.25, 0.5, 0.25], np.float32), "same")
    d = int(delay * RATE)
    return np.concatenate([np.zeros(d, np.float32), gain * muffled])[: len(reference)]


def _floor(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.002, n).astype(np.float32)


@pytest.fixture(scope="module")
def avatar_voice(voice):
    """~6 s of the avatar talking (16 kHz)."""
    return synthesize(
        voice, "Welcome to the city museum. The west wing holds paintings from three centuries."
    )


@pytest.fixture(scope="module")
def user_voice(voice):
    from anima.tts.piper_voice import PiperTTS

    # A different speaking rate, so the user is not a copy of the avatar.
    return synthesize(PiperTTS(length_scale=0.9), "Sorry, can I ask something else?")


async def _during_playback(recognizer, playback, mic, config=None, turn=1):
    """Play ``playback`` as the avatar's turn while feeding ``mic``, in lockstep, 20 ms at a time."""
    listener = Listener(recognizer, config, clock=VirtualClock())
    events = []
    pcm = to_int16(mic)
    for i in range(0, len(pcm), CHUNK):
        if i < len(playback):
            listener.play(playback[i : i + CHUNK], RATE, turn)
        events += await listener.feed(pcm[i : i + CHUNK], RATE)
    events += await listener.flush()
    return listener, events


def _onset(audio: np.ndarray) -> float:
    return int(np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())[0]) / RATE


async def test_own_voice_echoed_back_does_not_interrupt_or_get_transcribed(
    recognizer, avatar_voice
):
    mic = _echo(avatar_voice) + _floor(len(avatar_voice))
    listener, events = await _during_playback(recognizer, avatar_voice, mic)
    assert not [e for e in events if isinstance(e, BargeInEvent | SpeechStart | Final)]
    assert listener.echo_windows > 10  # the guard was what stopped it, not a deaf VAD


async def test_echo_without_guard_would_interrupt(recognizer, avatar_voice):
    """Control for the test above: the same audio with ``duplex=full`` is taken for speech."""
    mic = _echo(avatar_voice) + _floor(len(avatar_voice))
    _, events = await _during_playback(recognizer, avatar_voice, mic, ListenerConfig(duplex="full"))
    assert [e for e in events if isinstance(e, BargeInEvent)]


async def test_user_speech_over_playback_interrupts_once_within_200_ms(
    recognizer, avatar_voice, user_voice
):
    start = int(1.5 * RATE)
    mic = _echo(avatar_voice) + _floor(len(avatar_voice))
    user = np.zeros_like(mic)
    user[start : start + len(user_voice)] = user_voice[: len(mic) - start]
    mic = mic + user
    _, events = await _during_playback(recognizer, avatar_voice, mic)
    barges = [e for e in events if isinstance(e, BargeInEvent)]
    assert len(barges) == 1 and barges[0].turn == 1
    onset = _onset(user)
    assert onset - 0.05 <= barges[0].onset, (onset, barges)
    assert barges[0].at - onset <= 0.2, (onset, barges)  # audio time, not wall time
    # The user's words are still heard, despite the avatar's voice underneath.
    finals = [e.transcript.text.lower() for e in events if isinstance(e, Final)]
    assert any("ask" in t or "something" in t for t in finals), finals


async def test_cough_and_noise_bursts_do_not_interrupt(recognizer, avatar_voice, user_voice):
    mic = _echo(avatar_voice) + _floor(len(avatar_voice))
    rng = np.random.default_rng(3)
    # A 90 ms scrap of speech (a cough-length "uh") and a 200 ms loud noise burst (a door).
    scrap = user_voice[int(0.2 * RATE) : int(0.29 * RATE)] * np.hanning(int(0.09 * RATE))
    mic[RATE : RATE + len(scrap)] += scrap.astype(np.float32)
    mic[3 * RATE : 3 * RATE + int(0.2 * RATE)] += rng.normal(0, 0.3, int(0.2 * RATE)).astype(
        np.float32
    )
    _, events = await _during_playback(recognizer, avatar_voice, mic)
    assert not [e for e in events if isinstance(e, BargeInEvent)]


async def test_half_duplex_ignores_the_microphone_while_speaking(
    recognizer, avatar_voice, user_voice
):
    mic = _floor(len(avatar_voice))
    mic[RATE : RATE + len(user_voice)] += user_voice[: len(mic) - RATE]
    _, events = await _during_playback(recognizer, avatar_voice, mic, ListenerConfig(duplex="half"))
    assert not [e for e in events if isinstance(e, BargeInEvent | SpeechStart)]


def test_trigger_fires_once_per_turn_and_rearms_on_the_next():
    trig = BargeInTrigger(min_speech=0.15)
    trig.arm(4)
    fired = [trig.step(True, i * 512, 512, True) for i in range(40)]
    assert [f for f in fired if f is not None] == [0]
    trig.arm(5)
    fired = [trig.step(True, i * 512, 512, True) for i in range(40, 80)]
    assert [f for f in fired if f is not None] == [40 * 512]
    # Nothing fires while the avatar is silent.
    trig.arm(6)
    assert all(trig.step(True, i * 512, 512, False) is None for i in range(80, 120))


def test_echo_guard_tells_a_delayed_copy_from_a_new_voice():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 0.1, RATE).astype(np.float32)
    guard = EchoGuard(max_lag=0.25, threshold=0.7)
    guard.play(ref, at=0)
    delayed = np.concatenate([np.zeros(1600, np.float32), 0.3 * ref])
    assert guard.is_echo(delayed[8000:8512], 8000) and guard.last_correlation > 0.95
    other = rng.normal(0, 0.1, 512).astype(np.float32)
    assert not guard.is_echo(other, 8000)
    assert not guard.is_echo(delayed[8000:8512] + 3 * other, 8000)  # user louder than echo


@pytest.mark.slow
async def test_barge_in_interrupts_the_speaking_pipeline_once_and_drops_the_rest(
    recognizer, voice, user_voice
):
    """The session wiring: the real TTS stage plays a long answer; the user cuts in."""
    long_answer = "This is a long answer about the museum. " * 6
    listener = Listener(recognizer, clock=VirtualClock())
    async with Pipeline([SpeechStage(voice)], maxsize=4) as pipe:
        first = pipe.next_turn()
        await pipe.push(TextChunk(turn=first, text=long_answer))
        out = pipe.frames()
        chunk = await asyncio.wait_for(anext(out), 30)
        assert isinstance(chunk, SpeechChunk) and chunk.turn == first
        avatar_played(listener, AudioFrame(first, chunk.pcm, chunk.sample_rate))
        # The mic hears the echo of that sentence, then the user talks over it.
        played = synthesize_like(chunk)
        mic = _echo(played) + _floor(len(played))
        at = int(0.8 * RATE)
        mic[at : at + len(user_voice)] += user_voice[: len(mic) - at]
        interrupts, frames = 0, []
        pcm = to_int16(mic)
        for i in range(0, len(pcm), CHUNK):
            for event in await listener.feed(pcm[i : i + CHUNK], RATE):
                frame = to_frame(event, pipe.turn)
                frames.append(frame)
                interrupts += await barge_in(pipe, frame, listener)
        assert interrupts == 1 and sum(isinstance(f, BargeIn) for f in frames) == 1
        assert pipe.turn == first + 1
        # The user keeps talking: no second interrupt, and a later barge-in frame for the old
        # turn is a no-op.
        assert not await barge_in(pipe, BargeIn(turn=first), listener)
        await pipe.push(TurnEnd(turn=pipe.turn))
        after = []
        while not isinstance(frame := await asyncio.wait_for(anext(out), 30), TurnEnd):
            after.append(frame)
    assert isinstance(after[0], Interrupt) and after[0].turn == first + 1
    assert not [f for f in after if isinstance(f, SpeechChunk)]  # the rest of the answer is gone
    assert sum(isinstance(f, Interrupt) for f in after) == 1


def synthesize_like(chunk: SpeechChunk) -> np.ndarray:
    """The chunk's audio as the 16 kHz float the listener compares against."""
    from anima.asr.audio import resample

    return resample(chunk.pcm, chunk.sample_rate)
