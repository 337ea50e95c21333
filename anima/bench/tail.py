"""The tail under load (issue 22): machine load beside each turn, a CPU hog, a latency-vs-load plot.

``anima bench e2e`` and ``anima bench rtc`` use these so that their p50 / p95 / max come with
the load they were measured under: :func:`load1` is sampled at every turn, ``--stress`` runs
:func:`cpu_hog` (a child process spinning on one core) for the whole conversation, and
:func:`plot_vs_load` draws per-turn latency against the load average.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from anima.bench.common import stats


def load1() -> float:
    """The one-minute load average (runnable tasks, all cores together)."""
    return round(os.getloadavg()[0], 2)


@contextlib.contextmanager
def cpu_hog(enabled: bool, core: int | None = None) -> Iterator[int | None]:
    """While open, a child process keeps one core busy (pinned to ``core`` when given).

    Yields its pid, or None when not ``enabled``. The child is ended by its pid on exit.
    """
    if not enabled:
        yield None
        return
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter, a fixed program
        [sys.executable, "-c", "while True:\n    pass"],
        preexec_fn=pin,  # noqa: PLW1509 - only sets the affinity
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail_summary(latencies_s: list[float], loads: list[float]) -> dict[str, object]:
    """p50 / p95 / max of per-turn latencies (ms) with the load they ran under."""
    if not latencies_s:
        return {"n": 0}
    out: dict[str, object] = {"latency_ms": stats([x * 1000 for x in latencies_s])}
    if loads:
        out["load1"] = stats(loads)
    return out


def plot_vs_load(points: dict[str, list[tuple[float, float]]], path: Path, title: str) -> None:
    """Scatter per-turn latency (s) against load1, one series per name in ``points``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, pts in points.items():
        if pts:
            a = np.asarray(pts, dtype=float)
            ax.scatter(a[:, 0], a[:, 1] * 1000, s=18, label=name)
    ax.set_xlabel("load average (1 min) at the turn")
    ax.set_ylabel("latency, ms")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
