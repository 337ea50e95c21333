"""``run_voice_first`` marks the work a visitor waits on, for as long as it runs."""

import asyncio
import threading
import time

from anima import pipeline
from anima.pipeline import run_voice, run_voice_first, voice_urgent


async def test_urgent_while_the_first_sound_is_worked_on_and_not_after():
    started, release = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        release.wait(5)
        return "done"

    assert not voice_urgent()
    task = asyncio.create_task(run_voice_first(work))
    await asyncio.to_thread(started.wait, 5)
    assert voice_urgent()
    release.set()
    assert await task == "done"
    assert not voice_urgent()
    # Ordinary voice work (a partial decode, a later sentence) is not urgent.
    assert await run_voice(lambda: voice_urgent()) is False


async def test_cancelled_urgent_work_counts_until_its_thread_is_done(monkeypatch):
    release = threading.Event()
    task = asyncio.create_task(run_voice_first(release.wait, 5))
    await asyncio.sleep(0.01)
    assert voice_urgent()
    task.cancel()  # a barge-in: the thread still runs, and still takes the cores
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert voice_urgent()
    release.set()
    await asyncio.to_thread(time.sleep, 0.05)
    assert not voice_urgent()
    # A hung voice counts for URGENT_MAX at most, so the face is never starved for good.
    monkeypatch.setattr(pipeline, "URGENT_MAX", 0.05)
    hang = threading.Event()
    task = asyncio.create_task(run_voice_first(hang.wait, 5))
    await asyncio.sleep(0.01)
    assert voice_urgent()
    await asyncio.sleep(0.1)
    assert not voice_urgent()
    hang.set()
    await task
