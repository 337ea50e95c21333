"""Avatar actions from script marks (``[nod]``, ``[shake]``, ``[tilt]``) as head motion.

The renderer already sways the head with one affine warp; an action adds a short, eased rigid
motion of the rendered frame on top (pixels and degrees), so it needs nothing from the rig.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

# Seconds each action lasts.
DURATION = {"nod": 1.0, "shake": 1.2, "tilt": 1.6}


def action_offset(action: str, t: float, size: int) -> tuple[float, float, float]:
    """``(dx, dy, roll°)`` of ``action`` at ``t`` seconds after it started, for a ``size`` frame."""
    length = DURATION.get(action, 0.0)
    if not 0.0 <= t < length:
        return 0.0, 0.0, 0.0
    u = t / length
    envelope = math.sin(math.pi * u)  # eases in and out, so the head returns exactly to rest
    if action == "nod":  # two downward dips
        return 0.0, size * 0.025 * envelope * abs(math.sin(2 * math.pi * u)), 0.0
    if action == "shake":  # side to side, twice
        return size * 0.02 * envelope * math.sin(4 * math.pi * u), 0.0, 0.0
    if action == "tilt":  # lean, hold, come back
        return 0.0, 0.0, 5.0 * min(1.0, 2.5 * envelope)
    return 0.0, 0.0, 0.0


class ActionTrack:
    """The action playing now, applied to rendered frames by video frame index."""

    def __init__(self, fps: int) -> None:
        self.fps = fps
        self._action: str | None = None
        self._start = 0

    def start(self, action: str, frame: int) -> None:
        """Begin ``action`` at video frame ``frame``."""
        if action not in DURATION:
            raise ValueError(f"unknown action {action!r}; known: {', '.join(DURATION)}")
        self._action, self._start = action, frame

    def apply(self, image: np.ndarray, frame: int) -> np.ndarray:
        """``image`` moved by the action at ``frame`` (the same array when none is playing)."""
        if self._action is None:
            return image
        size = image.shape[0]
        dx, dy, roll = action_offset(self._action, (frame - self._start) / self.fps, size)
        if frame - self._start >= DURATION[self._action] * self.fps:
            self._action = None
        if dx == dy == roll == 0.0:
            return image
        # Pivot low in the frame (the neck), so a tilt leans the head rather than spinning it.
        m = cv2.getRotationMatrix2D((image.shape[1] / 2, image.shape[0] * 0.8), roll, 1.0)
        m[0, 2] += dx
        m[1, 2] += dy
        return cv2.warpAffine(
            image, m, (image.shape[1], image.shape[0]), borderMode=cv2.BORDER_REFLECT
        )
