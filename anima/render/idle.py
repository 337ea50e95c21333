"""Life when nothing is said: blinks at natural intervals, breathing and slight head motion.

Everything is a function of media time (seconds on the audio clock) and a seed, so two runs
with the same seed are identical; times should move forward (blinks far behind are forgotten).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HeadPose:
    """Small rigid motion of the head/image: pixels, degrees and a scale factor."""

    dx: float = 0.0
    dy: float = 0.0
    roll: float = 0.0
    scale: float = 1.0


_BLINK_SIGMA = 0.45
# Gaze: fixations of ~0.4-4 s (median ~1.3 s) between quick saccades; most glances return to
# the listener, some look away briefly (gaze aversion while "thinking").
_FIXATION_MEDIAN = 1.3
_SACCADE_S = 0.05


class IdleMotion:
    """Blink and head-motion schedule for one avatar session."""

    def __init__(
        self, seed: int | None = None, blink_interval: float = 4.0, amplitude: float = 1.0
    ):
        rng = np.random.default_rng(seed)
        self._blink_interval = blink_interval
        self._rng = rng
        self._blinks: list[tuple[float, float]] = []  # (start, duration)
        self._horizon = 0.0
        self._amp = amplitude
        # A few incommensurate slow sinusoids per axis look like natural sway, not a loop.
        self._freqs = rng.uniform(0.05, 0.35, size=(3, 3))
        self._phases = rng.uniform(0, 2 * math.pi, size=(3, 3))
        self._weights = rng.uniform(0.5, 1.0, size=(3, 3))
        self._breath_period = rng.uniform(3.6, 4.8)
        # Gaze has its own generator so adding it left the blink and sway schedules unchanged.
        self._gaze_rng = np.random.default_rng(None if seed is None else seed + 7919)
        self._fixations: list[tuple[float, float, float]] = [(0.0, 0.0, 0.0)]  # (start, x, y)
        self._deferred = 0.0  # seconds the pending blink has waited for a word to end

    def _extend_blinks(self, until: float) -> None:
        while self._horizon <= until + 1.0:
            # Human spontaneous blinks: gaps roughly log-normal around a few seconds.
            # Median set so the mean gap is the configured interval (lognormal mean = median *
            # exp(sigma^2 / 2)); at 4 s that is ~14 blinks a minute, a relaxed human rate.
            median = self._blink_interval * math.exp(-(_BLINK_SIGMA**2) / 2)
            gap = float(np.clip(self._rng.lognormal(math.log(median), _BLINK_SIGMA), 1.2, 12.0))
            start = self._horizon + gap
            # Full blinks last 0.1-0.4 s, most near 0.2 s (right-skewed, hence lognormal).
            duration = float(np.clip(self._rng.lognormal(math.log(0.19), 0.25), 0.1, 0.4))
            self._blinks.append((start, duration))
            if self._rng.random() < 0.12:  # occasional double blink
                self._blinks.append((start + duration + 0.08, duration * 0.9))
                start += duration + 0.08
            self._horizon = start + duration

    def blink(self, t: float) -> float:
        """Eyelid closure at time ``t``: 0 open, 1 closed. Closing is faster than opening."""
        self._extend_blinks(t)
        # Keep the schedule bounded over hours: forget blinks long past.
        while len(self._blinks) > 1 and self._blinks[0][0] + self._blinks[0][1] < t - 10.0:
            self._blinks.pop(0)
        for start, duration in self._blinks:
            if start <= t < start + duration:
                u = (t - start) / duration
                return (
                    math.sin(math.pi * u / 0.8)
                    if u < 0.4
                    else 0.5 * (1 + math.cos(math.pi * (u - 0.4) / 0.6))
                )
            if start > t:
                break
        return 0.0

    def defer_blink(self, t: float, dt: float, limit: float = 1.5) -> None:
        """Push a blink that would begin in ``[t, t + dt)`` back by ``dt`` (mid-word: wait).

        A blink already deferred by ``limit`` seconds is let through, as people do blink
        inside words now and then.
        """
        self._extend_blinks(t + dt)
        for k, (start, _) in enumerate(self._blinks):
            if t <= start < t + dt:
                if self._deferred >= limit:
                    self._deferred = 0.0
                    return
                self._deferred += dt
                self._blinks[k:] = [(s + dt, d) for s, d in self._blinks[k:]]
                self._horizon += dt
                return
            if start >= t + dt:
                break

    def look_at_viewer(self, t: float, hold: float = 1.2) -> None:
        """Return the gaze to the viewer at ``t`` (a sentence ends) and hold it ``hold`` s."""
        self.gaze(t)
        self._fixations = [f for f in self._fixations if f[0] <= t]
        self._fixations += [(t, 0.0, 0.0), (t + hold, 0.0, 0.0)]

    def gaze(self, t: float) -> tuple[float, float]:
        """Eye direction at ``t`` as (x, y) in -1..1 of the rig's gaze range; 0 looks ahead."""
        rng = self._gaze_rng
        while self._fixations[-1][0] <= t + 1.0:
            start = self._fixations[-1][0]
            hold = float(np.clip(rng.lognormal(math.log(_FIXATION_MEDIAN), 0.55), 0.4, 4.0))
            if rng.random() < 0.7:  # back to the listener, with small fixation jitter
                x, y = rng.normal(0.0, 0.12, 2)
            else:  # a short look away, more often sideways than vertical
                x, y = rng.uniform(-0.8, 0.8), rng.uniform(-0.5, 0.4)
            self._fixations.append((start + hold, float(x), float(y)))
        while len(self._fixations) > 2 and self._fixations[1][0] < t - 10.0:
            self._fixations.pop(0)
        prev = self._fixations[0]
        for fix in self._fixations[1:]:
            if fix[0] > t:
                break
            prev_end = fix[0]
            if t < prev_end + _SACCADE_S:  # mid-saccade: a fast smooth step
                u = (t - prev_end) / _SACCADE_S
                w = u * u * (3 - 2 * u)
                return (prev[1] + w * (fix[1] - prev[1]), prev[2] + w * (fix[2] - prev[2]))
            prev = fix
        return prev[1], prev[2]

    def pose(self, t: float, size: int, talk: float = 0.0) -> HeadPose:
        """Head pose at ``t`` for a frame of ``size`` pixels; ``talk`` (0..1) adds small nods."""
        osc = (self._weights * np.sin(2 * math.pi * self._freqs * t + self._phases)).sum(
            axis=1
        ) / 2.0
        breath = math.sin(2 * math.pi * t / self._breath_period)
        a = self._amp
        return HeadPose(
            dx=a * size * 0.010 * float(osc[0]),
            dy=a * size * (0.006 * float(osc[1]) + 0.002 * breath + 0.006 * talk),
            roll=a * 1.2 * float(osc[2]),
            scale=1.0 + a * 0.003 * breath,
        )
