"""Engine and Session end to end: mic speech -> transcript -> kb answer -> audio + face out."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from engine_helpers import collect, make_engine, push_chunks, speech

from anima.engine import EngineBusy, SessionClosed
from anima.events import (
    ErrorEvent,
    FaceParams,
    Interrupted,
    StateChanged,
    Subtitle,
    TranscriptEvent,
    TurnLatency,
)
from anima.frames import AudioFrame, VideoFrame
from anima.pipeline import VirtualClock


def _is(kind):
    return lambda item, items: isinstance(item, kind)


async def test_mic_question_is_answered_with_audio_and_face(engine):
    s = engine.session(media="params", realtime=False, greet=False)
    await s.start()
    try:
        # (Not "wifi": tiny.en mishears it in some of Piper's random renditions.)
        push_chunks(s, speech(engine, "Where can I park my car?"), engine.voice.sample_rate)
        items = await collect(s, _is(TurnLatency))
        finals = [i for i in items if isinstance(i, TranscriptEvent) and i.final]
        assert finals and "park" in finals[0].text.lower()
        assert finals[0].end > finals[0].start
        states = [i.state for i in items if isinstance(i, StateChanged)]
        assert states[:3] == ["listening", "thinking", "speaking"]
        lat = items[-1]
        for part in ("endpoint", "asr", "first_phrase", "tts_first_chunk", "first_frame", "total"):
            assert part in lat.parts and lat.parts[part] >= 0
        assert lat.parts["total"] >= lat.parts["asr"]
        # Then the answer itself: subtitles at audio time, speech audio, moving mouth.
        items += await collect(
            s, lambda i, _: isinstance(i, StateChanged) and i.state == "listening"
        )
        subs = " ".join(i.text for i in items if isinstance(i, Subtitle))
        assert "no car park" in subs.lower()
        audio = [i for i in items if isinstance(i, AudioFrame)]
        faces = [i for i in items if isinstance(i, FaceParams)]
        assert len(audio) == len(faces) > 25
        assert all(b.pts == a.pts + len(a.pcm) for a, b in zip(audio, audio[1:], strict=False))
        assert [f.index for f in faces] == list(range(faces[0].index, faces[0].index + len(faces)))
        assert max(f.jaw_open for f in faces) > 0.2
        assert np.abs(np.concatenate([a.pcm for a in audio])).max() > 1000
        assert all(0.0 <= f.blink <= 1.0 for f in faces)
    finally:
        await s.aclose()


async def test_interrupt_discards_the_rest_of_the_turn(engine):
    s = engine.session(media="params", realtime=False, greet=False)
    await s.start()
    text = (
        "The library opens at nine in the morning and closes at eight in the evening. "
        "On Saturdays it closes at five, and on Sundays it stays closed all day long."
    )
    try:
        await s.say(text)
        items = await collect(
            s, lambda i, its: sum(isinstance(x, FaceParams) and x.speaking for x in its) >= 20
        )
        turn = next(i.turn for i in items if isinstance(i, Subtitle))
        await s.interrupt()
        after = await collect(s, _is(Interrupted), timeout=20)
        event = after[-1]
        assert event.turn == turn and event.reason == "user"
        assert 0 < event.heard_chars < len(text) // 2
        # Nothing of the cut turn is spoken any more: at most the few frames already rendered.
        await s.say("Done.")
        rest = await collect(s, lambda i, _: isinstance(i, Subtitle) and i.text == "Done.")
        rest += await collect(s, lambda i, _: isinstance(i, StateChanged), timeout=30)
        spoken_after = [
            a for a in after + rest if isinstance(a, AudioFrame) and a.turn == turn and a.pcm.any()
        ]
        assert len(spoken_after) <= 6
        assert rest[-1].state == "listening"
        assert any(isinstance(a, AudioFrame) and a.turn > turn and a.pcm.any() for a in rest)
    finally:
        await s.aclose()


async def test_say_in_events_mode_sends_only_events(engine):
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()
    try:
        await s.say("Hello there. Welcome to the library.", emotion="happy")
        items = await collect(
            s,
            lambda _, its: (
                sum(isinstance(i, StateChanged) and i.state == "listening" for i in its) == 2
            ),
        )
        assert not [i for i in items if isinstance(i, AudioFrame | VideoFrame | FaceParams)]
        subs = [i for i in items if isinstance(i, Subtitle)]
        assert [x.text for x in subs] == ["Hello there.", "Welcome to the library."]
        assert {x.emotion for x in subs} == {"happy"}
        assert [i.state for i in items if isinstance(i, StateChanged)] == [
            "listening",
            "speaking",
            "listening",
        ]
    finally:
        await s.aclose()


async def test_ask_in_video_mode_renders_the_sample_portrait(engine):
    s = engine.session(media="video", realtime=False, greet=False)
    await s.start()
    try:
        await s.ask("Where are the toilets?")
        items = await collect(s, lambda i, its: sum(isinstance(x, VideoFrame) for x in its) >= 30)
        video = [i for i in items if isinstance(i, VideoFrame)]
        assert video[0].image.shape == (128, 128, 3) and video[0].image.dtype == np.uint8
        assert any("toilets" in i.text for i in items if isinstance(i, Subtitle))
        lat = next(i for i in items if isinstance(i, TurnLatency))
        assert {"first_phrase", "tts_first_chunk", "first_frame", "total"} <= set(lat.parts)
        # The mouth moves: frames differ while speaking.
        diffs = [
            np.abs(a.image.astype(int) - b.image.astype(int)).mean()
            for a, b in zip(video, video[1:], strict=False)
        ]
        assert max(diffs) > 0.5
    finally:
        await s.aclose()


async def test_realtime_idle_output_is_continuous_on_a_virtual_clock(engine):
    clock = VirtualClock()
    s = engine.session(media="params", realtime=True, clock=clock, greet=False)
    await s.start()
    got: list = []

    async def read():
        async for item in s.frames():
            got.append(item)

    reader = asyncio.create_task(read())
    try:
        for _ in range(60):
            await clock.advance(0.02)
            for _ in range(5):
                await asyncio.sleep(0)
        audio = [i for i in got if isinstance(i, AudioFrame)]
        faces = [i for i in got if isinstance(i, FaceParams)]
        # 1.2 s of virtual time at 25 fps: frames 0..30, idle, silent, gap-free.
        assert 28 <= len(faces) <= 31 and len(audio) == len(faces)
        assert [f.index for f in faces] == list(range(len(faces)))
        assert audio[0].pts == 0 and all(
            b.pts == a.pts + len(a.pcm) for a, b in zip(audio, audio[1:], strict=False)
        )
        assert not any(a.pcm.any() for a in audio) and not any(f.speaking for f in faces)
        assert len({(f.head_yaw, f.head_pitch) for f in faces}) > 5  # the idle head moves
    finally:
        reader.cancel()
        await s.aclose()


async def test_push_to_talk_listens_only_while_pressed(engine):
    s = engine.session(media="events", realtime=False, greet=False, listening="ptt")
    await s.start()
    rate = engine.voice.sample_rate
    try:
        push_chunks(s, speech(engine, "Is there free wifi?"), rate)  # not pressed: ignored
        s.ptt_start()
        push_chunks(s, speech(engine, "Where can I park my car?", tail=0.1), rate)
        s.ptt_stop()
        items = await collect(s, lambda i, _: isinstance(i, TranscriptEvent) and i.final)
        finals = [i.text.lower() for i in items if isinstance(i, TranscriptEvent) and i.final]
        assert len(finals) == 1 and "park" in finals[0]
        states = [i.state for i in items if isinstance(i, StateChanged)]
        assert states[:3] == ["idle", "listening", "idle"]
        items = await collect(s, lambda i, _: isinstance(i, Subtitle))
        assert "no car park" in items[-1].text.lower()
    finally:
        await s.aclose()


async def test_presence_greets_and_persona_changes(engine):
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()
    try:
        s.set_persona({"name": "Zed"})
        s.presence(True)
        items = await collect(s, lambda i, _: isinstance(i, Subtitle) and "Zed" in i.text)
        assert any(isinstance(i, Subtitle) for i in items)
        with pytest.raises(ValueError):
            s.set_persona({"no_such_key": 1})
        with pytest.raises(Exception, match="no avatar named"):
            await s.set_avatar("nobody")
    finally:
        await s.aclose()


async def test_brain_failure_is_reported_and_apologised_for(engine):
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()

    async def broken(text, user_id=None):
        raise RuntimeError("the model crashed")
        yield  # pragma: no cover

    try:
        s._agent.respond = broken
        await s.ask("Is there free wifi?")
        items = await collect(s, _is(Subtitle))
        err = next(i for i in items if isinstance(i, ErrorEvent))
        assert err.stage == "brain" and "crashed" in err.message
        assert items[-1].text.startswith("I'm sorry, something went wrong")
        await s.say("Still here.")
        items = await collect(s, lambda i, _: isinstance(i, Subtitle) and i.text == "Still here.")
        assert items
    finally:
        await s.aclose()


async def test_aclose_frees_every_task_and_the_slot(tmp_path):
    eng = make_engine(tmp_path, server={"max_sessions": 1})
    await eng.load()
    before = len(asyncio.all_tasks())
    s = eng.session(media="params", realtime=True, greet=True)
    with pytest.raises(EngineBusy):
        eng.session()
    await s.start()
    await collect(s, lambda i, its: len(its) > 20)
    assert len(asyncio.all_tasks()) > before
    await s.aclose()
    await s.aclose()  # idempotent
    assert len(asyncio.all_tasks()) == before
    assert eng.sessions == []
    with pytest.raises(SessionClosed):
        s.push_audio(np.zeros(160, np.int16), 16000)
    s2 = eng.session(media="events")  # the slot is free again
    await s2.aclose()
    await eng.aclose()


async def test_bad_mic_audio_is_an_error_event_not_a_crash(engine):
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()
    try:
        s.push_audio(np.array([np.nan] * 320, np.float32), 16000)
        items = await collect(s, _is(ErrorEvent))
        assert items[-1].stage == "input"
        await s.say("Fine.")
        assert await collect(s, _is(Subtitle))
    finally:
        await s.aclose()


async def test_user_speech_over_the_avatar_barges_in(engine):
    """Realtime on a virtual clock: the avatar talks, the user talks over it, it stops."""
    clock = VirtualClock()
    s = engine.session(media="params", realtime=True, clock=clock, greet=False)
    await s.start()
    got: list = []

    async def read():
        async for item in s.frames():
            got.append(item)

    reader = asyncio.create_task(read())
    rate = engine.voice.sample_rate
    step = rate // 50  # 20 ms of mic per 20 ms of clock, as a live microphone
    user = speech(engine, "Excuse me, where is the exit?", tail=0.5)
    try:
        await s.say(
            "Our opening hours are from nine in the morning until eight in the evening, "
            "every day except Sunday, when the whole building stays closed."
        )
        pos = 0
        for _ in range(1500):
            speaking = any(isinstance(i, StateChanged) and i.state == "speaking" for i in got)
            if speaking:
                # ~0.5 s into the answer the user starts talking over it.
                started = next(
                    k
                    for k, i in enumerate(got)
                    if isinstance(i, StateChanged) and i.state == "speaking"
                )
                if sum(isinstance(i, FaceParams) for i in got[started:]) > 12 and pos < len(user):
                    s.push_audio(user[pos : pos + step], rate)
                    pos += step
                else:
                    s.push_audio(np.zeros(step, np.int16), rate)
            else:
                s.push_audio(np.zeros(step, np.int16), rate)
            await clock.advance(0.02)
            await asyncio.sleep(0.003)
            if any(isinstance(i, Interrupted) for i in got):
                break
        cut = [i for i in got if isinstance(i, Interrupted)]
        assert cut and cut[0].reason == "barge-in"
        assert 0 < cut[0].heard_chars < 60
    finally:
        reader.cancel()
        await s.aclose()


async def test_voice_failure_is_reported_and_apologised_for(engine):
    s = engine.session(media="events", realtime=False, greet=False)
    await s.start()
    real = engine.voice

    class Flaky:
        sample_rate = real.sample_rate

        def synthesize(self, text, turn=0):
            if "boom" in text:
                raise RuntimeError("the voice model crashed")
            return real.synthesize(text, turn)

    try:
        s._pipe.stages[0].voice = Flaky()
        await s.say("boom")
        items = await collect(s, _is(Subtitle))
        err = next(i for i in items if isinstance(i, ErrorEvent))
        assert err.stage == "tts" and "crashed" in err.message
        assert items[-1].text.startswith("I'm sorry, something went wrong")
    finally:
        await s.aclose()
