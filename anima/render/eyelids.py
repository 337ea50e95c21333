"""Blinks: the upper eyelid slides down over the eye opening.

A smooth warp cannot hide the iris (it only squeezes it into a thin band), so the lid is
painted instead: at preparation, a lid texture is made for each eye from the skin just above
it; per frame, the part of the eye opening above the moving lid edge is covered by that
texture, with a soft edge and a darker lash line along it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anima.render import face as F


@dataclass
class _Eye:
    corners: np.ndarray  # (2, 2): outer, inner
    upper: np.ndarray  # (n, 2) upper lid edge, outer -> inner
    lower: np.ndarray  # (n, 2) lower lid edge, paired with upper
    box: tuple[int, int, int, int]
    lid: np.ndarray  # float32 texture over box
    open: np.ndarray  # uint8 photo pixels over box (the eye as it is)


class Eyelids:
    """Paints blinks onto frames of one avatar image."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray) -> None:
        self._eyes: list[_Eye] = []
        h, w = image.shape[:2]
        for upper, lower, corners in (
            (F.RIGHT_EYE_UPPER, F.RIGHT_EYE_LOWER, F.RIGHT_EYE_CORNERS),
            (F.LEFT_EYE_UPPER, F.LEFT_EYE_LOWER, F.LEFT_EYE_CORNERS),
        ):
            up, lo, co = landmarks[list(upper)], landmarks[list(lower)], landmarks[list(corners)]
            pts = np.vstack([up, lo, co])
            eye_h = float(max(2.0, (lo[:, 1] - up[:, 1]).max()))
            pad = int(np.ceil(eye_h * 0.8)) + 2
            x0, y0 = np.floor(pts.min(0)).astype(int) - pad
            x1, y1 = np.ceil(pts.max(0)).astype(int) + pad
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
            shift = int(round(eye_h * 1.1))
            # Lid skin: the band just above the eye, moved down over it, softened and shaded.
            src = image[max(y0 - shift, 0) : max(y1 - shift, 0), x0:x1].astype(np.float32)
            if src.shape[0] != y1 - y0:
                src = cv2.resize(src, (x1 - x0, y1 - y0))
            lid = cv2.GaussianBlur(src, (0, 0), max(0.8, eye_h * 0.08)) * 0.94
            self._eyes.append(_Eye(co, up, lo, (x0, y0, x1, y1), lid, image[y0:y1, x0:x1].copy()))

    def apply(self, canvas: np.ndarray, closure: float) -> None:
        """Close both eyes by ``closure`` (0 open .. 1 shut) on ``canvas`` in place.

        The eye regions are always redrawn from the photo, so a reused canvas never keeps an
        earlier frame's lids.
        """
        for eye in self._eyes:
            x0, y0, x1, y1 = eye.box
            if closure <= 0.02:
                canvas[y0:y1, x0:x1] = eye.open
                continue
            off = np.array([x0, y0], np.float32)
            edge = eye.upper + closure * (eye.lower - eye.upper)
            # Cover from a little above the lid edge, hiding the photo's own lash line.
            top = eye.upper + 0.35 * (eye.upper - eye.lower)
            poly = np.vstack([eye.corners[0], top, eye.corners[1], edge[::-1]]) - off
            shape = (y1 - y0, x1 - x0)
            mask = _coverage(poly, shape)
            mask = cv2.GaussianBlur(mask, (0, 0), 1.0)[..., None] * min(1.0, closure * 3)
            lash = np.zeros(shape, np.float32)
            line = np.vstack([eye.corners[0], edge, eye.corners[1]]) - off
            width = max(1, int(round(0.035 * float(np.ptp(eye.upper[:, 0])))))
            cv2.polylines(
                lash, [np.round(line * 16).astype(np.int32)], False, 1.0, width, cv2.LINE_AA, 4
            )
            lash = cv2.GaussianBlur(lash, (0, 0), 0.8)[..., None] * (0.4 * closure)
            roi = eye.open.astype(np.float32)
            out = roi * (1 - mask) + eye.lid * mask
            canvas[y0:y1, x0:x1] = (out * (1 - lash)).clip(0, 255).astype(np.uint8)


def _coverage(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(poly * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    return canvas.astype(np.float32) / 255.0
