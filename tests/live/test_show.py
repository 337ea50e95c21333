"""The show with the real voice and lip-sync: operator commands, comment answers, pauses."""

import asyncio

import numpy as np

from anima.live.comments import CommentQueue
from anima.live.script import parse_script
from anima.live.show import LiveShow


class Sink:
    def __init__(self):
        self.pcm = []
        self.index = []

    def write(self, image, index, pcm, pts, rate):
        self.index.append(index)
        self.pcm.append(pcm)


def face(index, shape, speaking):
    return np.full((16, 16, 3), 255 if speaking else 0, np.uint8)


def offline_show(voice, **kw):
    sink = Sink()
    show = LiveShow(voice, face, sink, realtime=False, offload=False, lead_in=0.2, **kw)
    return show, sink


async def test_script_airs_in_order_with_its_pauses(voice):
    show, sink = offline_show(voice)
    show.controller.load(parse_script("Good morning.\n[pause 1s]\nThe museum opens at nine.\n"))
    show.controller.finish()
    report = await asyncio.wait_for(show.run(), 60)
    spans = report.stats.speech
    assert [s[0] for s in spans] == ["Good morning.", "The museum opens at nine."]
    gap = spans[1][1] - spans[0][2]
    assert 25 <= gap <= 27  # the one-second pause (plus the frame rounding of speech)
    audio = np.concatenate(sink.pcm)
    assert len(audio) == report.stats.samples == show.media.sample_of_frame(report.stats.frames)
    rms = lambda a, b: float(np.sqrt(np.mean(audio[a:b].astype(float) ** 2)))  # noqa: E731
    f2s = show.media.sample_of_frame
    assert rms(f2s(spans[0][1]), f2s(spans[0][2])) > 300
    assert rms(f2s(spans[0][2]) + 5000, f2s(spans[1][1])) == 0  # silence in the pause


async def test_say_cuts_in_and_the_queue_carries_on(voice):
    show, sink = offline_show(voice)
    show.controller.load(
        parse_script("This is a long first line that goes on and on for a while.\nLast line.\n")
    )
    task = asyncio.create_task(show.run())
    # Catch the first line on air (offline, fake frames go by fast: poll every loop turn).
    while not show.program.playing() or show.broadcaster.frame < 15:  # noqa: ASYNC110 - watching the show's state from outside
        await asyncio.sleep(0)
    await show.controller.say("Breaking news!")
    await show.controller.queue("Added at the end.")
    show.controller.finish()
    report = await asyncio.wait_for(task, 60)
    texts = [s[0] for s in report.stats.speech]
    assert texts[0].startswith("This is a long first line")
    assert texts[1:] == ["Breaking news!", "Last line.", "Added at the end."]
    first = report.stats.speech[0]
    natural = sum(c.duration for c in voice.synthesize(texts[0])) * 25
    assert first[2] - first[1] < natural - 10  # cut before its natural end


async def test_pause_holds_until_resume_and_interrupt_clear_empties(voice):
    show, sink = offline_show(voice)
    c = show.controller
    await c.pause()
    c.load(parse_script("One, a longer line.\nTwo, a longer line.\nThree, a longer line.\n"))
    task = asyncio.create_task(show.run())
    await asyncio.sleep(0.3)
    assert c.status()["queued"] == 3 and not show.program.playing()
    c.resume()
    while not show.program.playing():  # noqa: ASYNC110 - watching the show's state from outside
        await asyncio.sleep(0.001)
    on_air = show.program.playing().text
    await c.interrupt(clear=True)
    c.finish()
    report = await asyncio.wait_for(task, 60)
    texts = [s[0] for s in report.stats.speech]
    assert texts[-1] == on_air and len(texts) < 3  # nothing queued aired after the cut
    assert c.status()["queued"] == 0


async def test_comments_are_answered_between_lines_by_the_real_agent(voice, settings):
    from anima.dialogue.agent import build_agent

    settings.brain.backend = "kb"  # the knowledge answerer: real, and needs no model
    agent = build_agent(settings, session_id="t")
    comments = CommentQueue(answers_per_minute=60, user_cooldown=0)

    def respond(comment):
        return agent.respond(comment.text, user_id=comment.user)

    show, sink = offline_show(voice, comments=comments, responder=respond)
    show.controller.load(parse_script("Welcome to the show.\nSecond line.\n"))
    assert show.controller.comment("viewer1", "Hello, can you hear me?").accepted
    assert not show.controller.comment("viewer1", "x" * 1000).accepted
    show.controller.finish()
    report = await asyncio.wait_for(show.run(), 60)
    await agent.aclose()
    texts = [s[0] for s in report.stats.speech]
    assert "viewer1: Hello, can you hear me?" in texts
    assert texts.index("viewer1: Hello, can you hear me?") in (0, 1, 2)
    assert len(texts) == 3
