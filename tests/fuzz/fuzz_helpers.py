"""Shared helpers of the fuzz suite: a quick CI pass and a ``slow`` pass with more examples.

Every property is written once and turned into two tests by :func:`fuzz`: ``<name>`` with
``FAST`` examples (the whole suite stays within about a minute on two cores) and
``<name>_slow`` (``@pytest.mark.slow``) with ``SLOW`` times more. Inputs that once crashed a
parser live in ``regressions/`` (one file each, named after the parser) and as ``@example``s,
so they run first on every pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

REGRESSIONS = Path(__file__).parent / "regressions"
SLOW = 10  # the slow variant runs this many times the CI examples
# Generous: a parser that takes this long on one small input is a hang, not noise.
DEADLINE_MS = 5000


def regression_files(prefix: str) -> list[bytes]:
    """Contents of ``regressions/<prefix>-*`` files: inputs that crashed a parser once."""
    return [p.read_bytes() for p in sorted(REGRESSIONS.glob(f"{prefix}-*"))]


def fuzz(
    prop: Callable[..., None],
    *strategies: Any,
    examples: int = 100,
    cases: list[tuple[Any, ...]] = (),  # type: ignore[assignment]
) -> tuple[Callable[..., None], Callable[..., None]]:
    """(CI test, slow test) checking ``prop`` over ``strategies``, ``cases`` always included."""

    def build(n: int) -> Callable[..., None]:
        test = given(*strategies)(prop)
        for case in cases:
            test = example(*case)(test)
        return settings(
            max_examples=n,
            deadline=DEADLINE_MS,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,  # regressions are kept explicitly, not in a local database
        )(test)

    return build(examples), pytest.mark.slow(build(examples * SLOW))
