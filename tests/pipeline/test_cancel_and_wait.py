"""cancel_and_wait ends tasks even when one swallows its cancellation (3.11 wait_for race)."""

import asyncio

from anima.pipeline import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_still_ends():
    swallowed = []

    async def stubborn():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(True)  # what wait_for does when the result lands at the same time
        await asyncio.sleep(3600)  # ...and it goes on waiting for its next input

    async def failing():
        raise ValueError("boom")

    async def polite():
        await asyncio.sleep(3600)

    tasks = [asyncio.create_task(f()) for f in (stubborn, failing, polite)]
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(tasks, poll=0.01), 5)
    assert swallowed == [True]
    assert all(t.done() for t in tasks)
    assert tasks[0].cancelled() and tasks[2].cancelled()
    assert isinstance(tasks[1].exception(), ValueError)  # errors are dropped, not raised
