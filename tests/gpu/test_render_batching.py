"""The batching scheduler: fewer batches than requests, own results in order, failures contained."""

from __future__ import annotations

import asyncio
import threading

import pytest

from anima.render.batching import BatchScheduler, SchedulerClosed


class _Recorder:
    def __init__(self, fail_on=None):
        self.batches: list[list[int]] = []
        self.fail_on = fail_on

    def __call__(self, items):
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"bad item {self.fail_on}")
        return [x * 10 for x in items]


async def test_concurrent_requests_share_batches_and_get_their_own_results():
    rec = _Recorder()
    sched = BatchScheduler(rec, max_batch=4, max_wait=0.05, offload=False)
    results = await asyncio.gather(*(sched.submit(i) for i in range(10)))
    assert results == [i * 10 for i in range(10)]
    assert [len(b) for b in rec.batches] == [4, 4, 2]  # full batches go at once, no waiting
    assert [x for b in rec.batches for x in b] == list(range(10))  # order preserved
    assert sched.stats.batches == 3 and sched.stats.items == 10
    await sched.aclose()


async def test_single_request_goes_after_max_wait():
    rec = _Recorder()
    sched = BatchScheduler(rec, max_batch=16, max_wait=0.001)
    assert await sched.submit(7) == 70  # offloaded to the executor, like the real generator
    assert rec.batches == [[7]]
    await sched.aclose()


async def test_an_error_fails_only_its_batch():
    rec = _Recorder(fail_on=5)
    sched = BatchScheduler(rec, max_batch=4, max_wait=0.05, offload=False)
    results = await asyncio.gather(*(sched.submit(i) for i in range(8)), return_exceptions=True)
    assert results[:4] == [0, 10, 20, 30]
    assert all(isinstance(r, RuntimeError) and "bad item 5" in str(r) for r in results[4:])
    assert await sched.submit(1) == 10  # the scheduler keeps serving
    assert sched.stats.failed_batches == 1
    await sched.aclose()


async def test_wrong_result_count_is_an_error_for_that_batch():
    sched = BatchScheduler(lambda items: [1], max_batch=2, max_wait=10.0, offload=False)
    results = await asyncio.gather(sched.submit(1), sched.submit(2), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "1 results for 2" in str(r) for r in results)
    await sched.aclose()


async def test_cancelled_waiting_request_is_dropped():
    rec = _Recorder()
    sched = BatchScheduler(rec, max_batch=3, max_wait=10.0, offload=False)
    a = asyncio.ensure_future(sched.submit(1))
    b = asyncio.ensure_future(sched.submit(2))
    await asyncio.sleep(0)  # both queued; the worker waits for a third
    b.cancel()
    c = asyncio.ensure_future(sched.submit(3))
    assert await a == 10 and await c == 30
    with pytest.raises(asyncio.CancelledError):
        await b
    assert rec.batches == [[1, 3]] and sched.stats.dropped == 1
    await sched.aclose()


async def test_threads_submit_and_close_fails_waiters():
    rec = _Recorder()
    sched = BatchScheduler(rec, max_batch=4, max_wait=0.5, offload=False)
    sched.bind(asyncio.get_running_loop())
    out: dict[int, int] = {}

    def worker(i):
        out[i] = sched.submit_threadsafe(i, timeout=30)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:  # joined off the loop, which must keep running the scheduler
        await asyncio.to_thread(t.join)
    assert out == {i: i * 10 for i in range(4)}
    assert len(rec.batches) < 4  # at least two threads shared a batch
    await sched.aclose()
    with pytest.raises(SchedulerClosed):
        await sched.submit(1)


async def test_batches_run_while_the_default_executor_is_full_of_waiting_frames():
    # Sessions render in the default executor and wait there for their frame; the batch must
    # not need a thread from that same pool (it would never get one).
    import concurrent.futures

    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(2))
    sched = BatchScheduler(_Recorder(), max_batch=4, max_wait=0.01)  # offloaded
    sched.bind(loop)
    frames = [
        loop.run_in_executor(None, lambda i=i: sched.submit_threadsafe(i, timeout=10))
        for i in range(2)
    ]
    assert sorted(await asyncio.gather(*frames)) == [0, 10]
    await sched.aclose()


def test_bad_arguments():
    with pytest.raises(ValueError):
        BatchScheduler(lambda x: x, max_batch=0)
    with pytest.raises(RuntimeError, match="bind"):
        BatchScheduler(lambda x: x).submit_threadsafe(1)
