"""The face rig: displacement fields that move the mouth and jaw of one photo.

Each animation parameter (jaw open, lip width, lip rounding, lip closure)
moves a set of landmarks; a thin-plate spline spreads those moves smoothly over the skin,
with points on the region's border, nose and cheeks held still. The fields are linear in their
parameter, so they are computed once per avatar and a frame is a weighted sum of a few arrays
followed by one remap.

All distances are in units of the mouth width ``s`` so the rig fits any face size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anima.render import face as F

# Order of the mouth fields; matches MouthShape.as_array().
MOUTH_PARAMS = ("jaw_open", "lip_width", "lip_round", "lip_closure")
_JAW_DROP = 0.38  # lower lip travel at jaw_open = 1, in mouth widths
_JAW_ANGLE = 0.2  # radians of jaw rotation at jaw_open = 1 (speech rarely passes ~12 degrees)
# Lower cheeks and nasolabial skin: carried part of the way by the jaw and the lip corners.
_CHEEK_FOLLOW = (192, 416, 207, 427, 147, 376, 187, 411)
# Rings of skin round the lips (inner ring, then outer) and how much of the nearest corner's
# width/rounding move each takes: spreading it avoids a fold between the corner and the nose.
_PERIORAL = (
    ((57, 287, 186, 410, 92, 322, 165, 391), 0.55),
    ((212, 432, 216, 436, 206, 426, 202, 422), 0.3),
)
_CHEEK_ANCHORS = (50, 280, 205, 425, 123, 352)


@dataclass
class Region:
    """A rectangle of the working image and the displacement fields defined over it."""

    x0: int
    y0: int
    x1: int
    y1: int
    fields: np.ndarray  # (k, h, w, 2) float32: per-parameter (dx, dy) at full strength
    base: np.ndarray  # (h, w, 2) float32: applied always (e.g. closing an open-mouthed photo)


@dataclass
class Rig:
    """Everything the animator needs besides the image: regions and per-landmark moves."""

    mouth: Region
    mouth_width: float
    # Per-landmark displacement (k, 478, 2) for the mouth parameters and the base, so the inner
    # mouth outline is known exactly without sampling the fields.
    mouth_moves: np.ndarray
    mouth_base_moves: np.ndarray

    def landmarks_for(self, landmarks: np.ndarray, params: np.ndarray) -> np.ndarray:
        """Landmarks after the mouth parameters ``params`` (k,) are applied."""
        return landmarks + self.mouth_base_moves + np.tensordot(params, self.mouth_moves, axes=1)


def _tps_field(
    ctrl: np.ndarray, disp: np.ndarray, box: tuple[int, int, int, int], step: int = 4
) -> np.ndarray:
    """Thin-plate-spline interpolation of ``disp`` at ``ctrl`` over ``box``, as (h, w, 2)."""
    x0, y0, x1, y1 = box
    scale = max(x1 - x0, y1 - y0)
    c = (ctrl - np.array([x0, y0])) / scale

    def kernel(d2: np.ndarray) -> np.ndarray:
        return np.where(d2 > 0, 0.5 * d2 * np.log(np.maximum(d2, 1e-12)), 0.0)

    n = len(c)
    k = kernel(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1)) + 1e-7 * np.eye(n)
    p = np.hstack([np.ones((n, 1)), c])
    a = np.zeros((n + 3, n + 3))
    a[:n, :n], a[:n, n:], a[n:, :n] = k, p, p.T
    rhs = np.zeros((n + 3, 2))
    rhs[:n] = disp
    coef = np.linalg.solve(a, rhs)
    h, w = y1 - y0, x1 - x0
    gy, gx = np.mgrid[0 : h + step : step, 0 : w + step : step].astype(np.float64)
    g = np.stack([gx.ravel(), gy.ravel()], 1) / scale
    u = kernel(((g[:, None, :] - c[None, :, :]) ** 2).sum(-1))
    coarse = u @ coef[:n] + np.hstack([np.ones((len(g), 1)), g]) @ coef[n:]
    coarse = coarse.reshape(gy.shape[0], gy.shape[1], 2).astype(np.float32)
    # Resample the coarse grid so that grid node j lands exactly on pixel j * step.
    mx = (np.arange(w, dtype=np.float32) / step)[None, :].repeat(h, 0)
    my = (np.arange(h, dtype=np.float32) / step)[:, None].repeat(w, 1)
    return cv2.remap(coarse, mx, my, cv2.INTER_LINEAR)


def _border(box: tuple[int, int, int, int], spacing: float) -> np.ndarray:
    x0, y0, x1, y1 = box
    nx = max(2, int((x1 - x0) / spacing) + 1)
    ny = max(2, int((y1 - y0) / spacing) + 1)
    xs, ys = np.linspace(x0, x1, nx), np.linspace(y0, y1, ny)
    pts = [(x, y0) for x in xs] + [(x, y1) for x in xs]
    pts += [(x0, y) for y in ys[1:-1]] + [(x1, y) for y in ys[1:-1]]
    return np.array(pts, dtype=np.float64)


def _clip_box(box: tuple[float, float, float, float], size: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (
        max(0, int(x0)),
        max(0, int(y0)),
        min(size, int(np.ceil(x1))),
        min(size, int(np.ceil(y1))),
    )


def _field(
    lm: np.ndarray,
    moves: np.ndarray,
    movers: list[int],
    anchors: list[int],
    box: tuple[int, int, int, int],
    s: float,
    hold: np.ndarray | None = None,
) -> np.ndarray:
    """Field over ``box`` that moves landmarks ``movers`` by ``moves`` and holds ``anchors``.

    ``hold`` adds still points that are not landmarks (e.g. the neck below the jaw line).
    """
    fixed = [i for i in dict.fromkeys(anchors) if i not in set(movers)]
    still = np.vstack([lm[fixed], _border(box, s / 2)] + ([hold] if hold is not None else []))
    ctrl = np.vstack([lm[movers], still])
    disp = np.vstack([moves[movers], np.zeros((len(still), 2))])
    # Drop control points that coincide (they make the system singular).
    _, keep = np.unique(np.round(ctrl, 1), axis=0, return_index=True)
    keep.sort()
    return _tps_field(ctrl[keep], disp[keep], box)


def _mouth_moves(lm: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-landmark displacement for the base (close the lips) and each mouth parameter."""
    cx = float((lm[61, 0] + lm[291, 0]) / 2)
    half = s / 2
    moves = np.zeros((len(MOUTH_PARAMS), 478, 2))
    base = np.zeros((478, 2))

    def r(i: int) -> float:  # -1 .. 1 across the mouth
        return float(np.clip((lm[i, 0] - cx) / half, -1.5, 1.5))

    # Base: a photo with parted lips gets them closed, meeting halfway.
    for up, lo in zip(F.LIPS_UPPER_INNER[1:-1], F.LIPS_LOWER_INNER, strict=True):
        gap = max(0.0, float(lm[lo, 1] - lm[up, 1]))
        # Overlap a little: landmarks sit slightly inside the visible lip edge.
        base[up, 1] += 0.6 * gap
        base[lo, 1] -= 0.6 * gap
    for i in F.LIPS_UPPER_OUTER[1:-1]:
        nearest = min(F.LIPS_UPPER_INNER[1:-1], key=lambda j: abs(lm[j, 0] - lm[i, 0]))
        base[i, 1] = base[nearest, 1] * 0.6
    for i in F.LIPS_LOWER_OUTER:
        nearest = min(F.LIPS_LOWER_INNER, key=lambda j: abs(lm[j, 0] - lm[i, 0]))
        base[i, 1] = base[nearest, 1] * 0.8

    jaw, width, rnd, close = moves
    rot = _jaw_rotation(lm, s)
    for i in F.LIPS_LOWER_OUTER + F.LIPS_LOWER_INNER:
        # The lower lip rides on the jaw but is tied to the upper lip at the corners.
        jaw[i, 1] = rot[17] * (1 - 0.45 * r(i) ** 2)
    # The upper lip lifts a little as a band (inner and outer edge together keep its thickness).
    for i in F.LIPS_UPPER_INNER[1:-1] + F.LIPS_UPPER_OUTER[1:-1]:
        jaw[i, 1] = -0.03 * s * (1 - r(i) ** 2)
    for i in F.MOUTH_CORNERS + F.INNER_CORNERS:
        jaw[i] = (-0.04 * s * np.sign(r(i)), 0.14 * s)
    corner_y = float(lm[list(F.MOUTH_CORNERS), 1].mean())
    lip_y = float(lm[17, 1])
    for i in F.JAW_LINE + F.CHIN_SURFACE:
        # Skin above the lower lip's level is only partly carried by the jaw.
        t = np.clip((lm[i, 1] - corner_y) / max(lip_y - corner_y, 1.0), 0.0, 1.0)
        jaw[i, 1] = rot[i] * (0.35 + 0.65 * t)
    for i in _CHEEK_FOLLOW:
        jaw[i, 1] = 0.3 * rot[i]

    for i in F.LIPS_UPPER_OUTER + F.LIPS_LOWER_OUTER + F.LIPS_UPPER_INNER + F.LIPS_LOWER_INNER:
        width[i, 0] = 0.11 * s * r(i)
        rnd[i, 0] = -0.17 * s * r(i)
    for i in F.LIPS_UPPER_OUTER[1:-1]:
        width[i, 1] = 0.012 * s
        rnd[i, 1] = -0.035 * s
        close[i, 1] = 0.03 * s
    for i in F.LIPS_LOWER_OUTER:
        width[i, 1] = -0.012 * s
        rnd[i, 1] = 0.035 * s
        close[i, 1] = -0.03 * s
    for i in F.LIPS_LOWER_INNER:
        rnd[i, 1] = 0.05 * s * (1 - r(i) ** 2)  # rounded lips leave a small opening
    # The skin beside the corners follows them, so the corners stay part of the face instead of
    # sliding under a still cheek.
    for ring, share in ((_CHEEK_FOLLOW, 0.2), *_PERIORAL):
        for i in ring:
            corner = 61 if lm[i, 0] < cx else 291
            width[i] = share * width[corner]
            rnd[i] = share * rnd[corner]
    return base, moves


def _jaw_rotation(lm: np.ndarray, s: float) -> np.ndarray:
    """Downward image travel of every landmark when the jaw turns ``_JAW_ANGLE`` about its hinge.

    Seen from the front, a point ``f`` in front of the hinge axis and ``d`` below it moves down
    by ``f sin(a) - d (1 - cos(a))`` (and back, which the camera does not see). Depth ``f`` is
    largest at the lips and chin and falls to nearly nothing at the jaw angles, so the chin drops
    a little less than the lower lip (the soft tissue between them compresses) and the jaw line
    turns instead of stretching. Depth is scaled so the lower lip travels ``_JAW_DROP`` widths.
    """
    hinge_y = float((lm[234, 1] + lm[454, 1]) / 2)  # face sides at ear level: the TMJ height
    cx = float((lm[61, 0] + lm[291, 0]) / 2)
    half = max(float(abs(lm[454, 0] - lm[234, 0])) / 2, s)
    sin_a, cos_a = np.sin(_JAW_ANGLE), np.cos(_JAW_ANGLE)
    d_lip = float(lm[17, 1]) - hinge_y
    f_lip = (_JAW_DROP * s + d_lip * (1 - cos_a)) / sin_a
    # The chin's front sits a little behind the lower lip's.
    recess = np.clip((lm[:, 1] - float(lm[17, 1])) / max(float(lm[152, 1] - lm[17, 1]), 1.0), 0, 1)
    lateral = np.clip(np.abs(lm[:, 0] - cx) / half, 0, 1)
    # Seen from above the jaw is a U: its sides run back towards the hinges.
    f = f_lip * (1 - 0.1 * recess) * np.maximum(1 - lateral**2, 0.0) ** 1.5
    d = lm[:, 1] - hinge_y
    return np.maximum(f * sin_a - d * (1 - cos_a), 0.0)


def _face_weight(points: np.ndarray, box: tuple[int, int, int, int], s: float) -> np.ndarray:
    """1 inside the hull of ``points`` grown by 0.2 s, falling smoothly to 0 over 0.3 s more."""
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    hull = cv2.convexHull(np.round(points - [x0, y0]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    outside = cv2.distanceTransform(1 - mask, cv2.DIST_L2, 5)
    u = np.clip((outside - 0.2 * s) / (0.3 * s), 0, 1)
    return (1 - u * u * (3 - 2 * u)).astype(np.float32)


def build_rig(landmarks: np.ndarray, work_size: int) -> Rig:
    """Compute the rig of a face whose ``landmarks`` lie in a ``work_size`` square image."""
    lm = landmarks.astype(np.float64)
    s = float(np.linalg.norm(lm[291] - lm[61]))
    base, moves = _mouth_moves(lm, s)
    movers = sorted(
        {int(i) for i in np.nonzero(np.abs(moves).sum((0, 2)) + np.abs(base).sum(1))[0]}
    )
    oval = np.array(F.JAW_LINE)
    box = _clip_box(
        (
            lm[oval, 0].min() - 0.25 * s,
            lm[2, 1] - 0.1 * s,
            lm[oval, 0].max() + 0.25 * s,
            lm[152, 1] + 0.9 * s,
        ),
        work_size,
    )
    anchors = list(F.NOSE + _CHEEK_ANCHORS)
    # The neck and background just outside the jaw line stay put: the chin slides over the neck
    # (its skin folds into the shadow under the jaw) instead of dragging collar and neck along.
    jaw = lm[list(F.JAW_LINE)]
    centre = np.array([lm[list(F.JAW_LINE), 0].mean(), lm[2, 1]])
    out = (jaw - centre) / np.linalg.norm(jaw - centre, axis=1, keepdims=True)
    hold = jaw + 0.4 * s * out
    x0, y0, x1, y1 = box
    hold = hold[(hold[:, 0] > x0) & (hold[:, 0] < x1) & (hold[:, 1] > y0) & (hold[:, 1] < y1)]
    fields = np.stack(
        [_field(lm, moves[k], movers, anchors, box, s, hold) for k in range(len(MOUTH_PARAMS))]
    )
    base_field = _field(lm, base, movers, anchors, box, s, hold)
    # Confine every move to the face and a thin margin round it (the chin's travel included), so
    # the background, hair and collar never ripple with the mouth.
    weight = _face_weight(np.vstack([lm, lm + moves[0]]), box, s)
    fields *= weight[None, ..., None]
    base_field *= weight[..., None]
    mouth = Region(*box, fields=fields, base=base_field)

    return Rig(mouth=mouth, mouth_width=s, mouth_moves=moves, mouth_base_moves=base)
