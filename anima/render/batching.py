"""One batching scheduler per process: N sessions' frame requests, one GPU call per batch.

A GPU generates 16 mouths in little more time than one, so the sessions of a process share the
generator through :class:`BatchScheduler`: each request is an asyncio future; a worker task
takes the first waiting request, gathers more until ``max_batch`` or ``max_wait`` seconds, runs
the batch function once on the scheduler's own thread (never the shared default executor: the
session threads waiting for their frames hold those, and a batch queued behind them would never
start; one thread also keeps the GPU calls in order) and hands each
caller its own result, in order. A batch that raises fails only its own requests; a request
cancelled while it waits is dropped before the batch runs. Session render threads (not the
loop) call :meth:`BatchScheduler.submit_threadsafe`.

Nothing here imports torch: the batch function is whatever the caller gives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from prometheus_client import Histogram

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = Histogram(
    "anima_render_batch_size",
    "Frames per neural mouth batch.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)


class SchedulerClosed(RuntimeError):
    """The scheduler was closed; no more requests are taken."""


@dataclass
class BatchStats:
    """What the scheduler has done so far."""

    batches: int = 0
    items: int = 0
    failed_batches: int = 0
    dropped: int = 0  # requests cancelled before their batch ran


class BatchScheduler(Generic[T, R]):
    """Collects requests from many callers and runs them through ``run_batch`` together.

    ``run_batch(items) -> results`` must return one result per item, in order; it runs in the
    executor unless ``offload`` is False (tests with a trivial function).
    """

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[R]],
        *,
        max_batch: int = 16,
        max_wait: float = 0.004,
        offload: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if max_wait < 0:
            raise ValueError("max_wait must not be negative")
        self.run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.offload = offload
        self.stats = BatchStats()
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the scheduler runs on (set by the first request)."""
        return self._loop

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run on ``loop`` (what :meth:`submit` does on first use); a second loop is an error."""
        if self._loop is None:
            self._loop = loop
            self._wake = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError("a BatchScheduler serves one event loop")

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result (raises what its batch raised)."""
        if self._closed:
            raise SchedulerClosed("the batch scheduler is closed")
        loop = asyncio.get_running_loop()
        self.bind(loop)
        assert self._wake is not None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        self._wake.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._run(), name="render-batch-scheduler")
        return await future

    def submit_threadsafe(self, item: T, timeout: float | None = None) -> R:
        """:meth:`submit` from another thread; blocks that thread until the result is in.

        On ``timeout`` the request is cancelled (dropped if its batch has not started) and
        :class:`concurrent.futures.TimeoutError` is raised.
        """
        if self._loop is None:
            raise RuntimeError("bind() the scheduler to its event loop first")
        job = asyncio.run_coroutine_threadsafe(self.submit(item), self._loop)
        try:
            return job.result(timeout)
        except concurrent.futures.TimeoutError:
            job.cancel()
            raise

    async def aclose(self) -> None:
        """Stop the worker; waiting requests fail with :class:`SchedulerClosed`."""
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while self._pending:
            _, future = self._pending.popleft()
            if not future.done():
                future.set_exception(SchedulerClosed("the batch scheduler is closed"))
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # a running batch finishes
            self._pool = None

    # -- the worker ------------------------------------------------------------------------

    async def _collect(self) -> list[tuple[T, asyncio.Future[R]]]:
        """The next batch: the first request, then more until full or ``max_wait`` is up."""
        assert self._wake is not None and self._loop is not None
        while not self._pending:
            self._wake.clear()
            await self._wake.wait()
        batch = [self._pending.popleft()]
        deadline = self._loop.time() + self.max_wait
        while len(batch) < self.max_batch:
            if self._pending:
                batch.append(self._pending.popleft())
                continue
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
        return batch

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            live = [(item, fut) for item, fut in batch if not fut.done()]
            self.stats.dropped += len(batch) - len(live)
            if not live:
                continue
            items = [item for item, _ in live]
            try:
                if self.offload:
                    if self._pool is None:
                        self._pool = concurrent.futures.ThreadPoolExecutor(
                            1, thread_name_prefix="render-batch"
                        )
                    loop = asyncio.get_running_loop()
                    results = await loop.run_in_executor(self._pool, self.run_batch, items)
                else:
                    results = self.run_batch(items)
                if len(results) != len(items):
                    raise RuntimeError(
                        f"the batch function returned {len(results)} results for {len(items)}"
                    )
            except asyncio.CancelledError:
                for _, fut in live:
                    fut.cancel()
                raise
            except Exception as exc:  # this batch's callers see it; later batches still run
                self.stats.failed_batches += 1
                log.warning("a render batch of %d failed: %s", len(items), exc)
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            self.stats.batches += 1
            self.stats.items += len(items)
            BATCH_SIZE.observe(len(items))
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():  # cancelled while its batch ran: nobody wants it
                    fut.set_result(result)
