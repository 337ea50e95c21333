"""Expression and gaze on the face rig: smile, brows, eye openness and eye direction.

Two extra sets of thin-plate-spline fields, built once per avatar like the mouth rig:

* a **smile** field over the mouth region, appended to the rig's mouth fields (corners up and
  out, cheeks a little up; a negative weight turns the corners down), so the painted mouth
  interior follows the same landmark moves;
* an **upper-face** region around the eyes and brows with fields for ``brow_raise``,
  ``brow_inner`` (inner ends up and together: worry), ``eye_open`` (upper lids up) and gaze
  (the irises slide inside the eye outline, which is held still), and ``cheek`` (the cheeks
  rise and push the lower lids up a little, as in a smile or a wide-open vowel).

The upper face is warped after the eyelids are painted, from a copy restored from the photo
every frame, so warps never accumulate on the reused canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from anima.render import face as F
from anima.render.rig import Region, Rig, _clip_box, _field

RIGHT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)  # outer -> inner, upper then lower row
LEFT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)
UPPER_FIELDS = ("brow_raise", "brow_inner", "eye_open", "gaze_x", "gaze_y", "cheek")


@dataclass
class UpperFace:
    """The upper-face region and its fields (in :data:`UPPER_FIELDS` order)."""

    region: Region
    grid: tuple[np.ndarray, np.ndarray]


def add_smile(rig: Rig, landmarks: np.ndarray) -> None:
    """Append a smile field (and its landmark moves) to the rig's mouth fields, in place."""
    lm = landmarks.astype(np.float64)
    s = rig.mouth_width
    cx = float((lm[61, 0] + lm[291, 0]) / 2)
    moves = np.zeros((478, 2))
    lips = F.LIPS_UPPER_OUTER + F.LIPS_LOWER_OUTER + F.LIPS_UPPER_INNER + F.LIPS_LOWER_INNER
    for i in set(lips):
        r = float(np.clip((lm[i, 0] - cx) / (s / 2), -1.2, 1.2))
        # Corners rise and pull out most; the middle of the lips barely moves.
        moves[i] = (0.06 * s * r * abs(r), -0.1 * s * r * r)
    for i in F.CHEEKS:
        moves[i, 1] = -0.03 * s
    movers = sorted({int(i) for i in np.nonzero(np.abs(moves).sum(1))[0]})
    mouth = rig.mouth
    box = (mouth.x0, mouth.y0, mouth.x1, mouth.y1)
    field = _field(lm, moves, movers, list(F.NOSE), box, s)
    mouth.fields = np.concatenate([mouth.fields, field[None]], axis=0)
    rig.mouth_moves = np.concatenate([rig.mouth_moves, moves[None]], axis=0)


def build_upper_face(landmarks: np.ndarray, work_size: int, bottom_limit: int) -> UpperFace:
    """Fields over the eyes and brows of a face whose landmarks lie in a work_size square."""
    lm = landmarks.astype(np.float64)
    u = float(np.linalg.norm(lm[33] - lm[263]))  # outer eye corners: the face's width unit
    centre_x = float((lm[33, 0] + lm[263, 0]) / 2)
    moves = np.zeros((len(UPPER_FIELDS), 478, 2))
    raise_, inner, eye_open, gaze_x, gaze_y, cheek = moves
    brows = RIGHT_BROW + LEFT_BROW
    for i in brows:
        raise_[i, 1] = -0.07 * u
        # Inner ends (nearest the nose) go up and in; outer ends drop slightly.
        closeness = 1.0 - min(1.0, abs(lm[i, 0] - centre_x) / (0.55 * u))
        inner[i, 1] = -0.07 * u * closeness + 0.015 * u * (1 - closeness)
        inner[i, 0] = -np.sign(lm[i, 0] - centre_x) * 0.015 * u * closeness
    eyes = (
        (F.RIGHT_EYE_UPPER, F.RIGHT_EYE_LOWER, F.RIGHT_EYE_CORNERS, RIGHT_IRIS),
        (F.LEFT_EYE_UPPER, F.LEFT_EYE_LOWER, F.LEFT_EYE_CORNERS, LEFT_IRIS),
    )
    outline: list[int] = []
    for upper, lower, corners, iris in eyes:
        eye_h = float(max(2.0, (lm[list(lower), 1] - lm[list(upper), 1]).max()))
        eye_w = float(np.linalg.norm(lm[corners[0]] - lm[corners[1]]))
        mid = float(lm[list(corners), 0].mean())
        for i in upper:
            across = 1.0 - min(1.0, abs(lm[i, 0] - mid) / (eye_w / 2)) ** 2
            raise_[i, 1] = -0.012 * u * across  # raised brows stretch the lid skin a little
            eye_open[i, 1] = -0.22 * eye_h * across
        for i in lower:
            across = 1.0 - min(1.0, abs(lm[i, 0] - mid) / (eye_w / 2)) ** 2
            cheek[i, 1] = -0.25 * eye_h * across
        for i in iris:
            gaze_x[i, 0] = 0.16 * eye_w
            gaze_y[i, 1] = 0.12 * eye_h
        outline += list(upper) + list(lower) + list(corners)
    ys = lm[list(brows), 1]
    top = float(ys.min()) - 0.25 * u
    bottom = min(
        float(lm[list(F.RIGHT_EYE_LOWER + F.LEFT_EYE_LOWER), 1].max()) + 0.12 * u, bottom_limit
    )
    xs = lm[list(brows) + [33, 263], 0]
    box = _clip_box(
        (float(xs.min()) - 0.15 * u, top, float(xs.max()) + 0.15 * u, bottom), work_size
    )
    anchors = list(F.NOSE) + [6, 168, 197]
    fields = []
    for k in range(len(UPPER_FIELDS)):
        m = moves[k]
        movers = sorted({int(i) for i in np.nonzero(np.abs(m).sum(1))[0]})
        # The eye outline and irises stay put unless this field moves them: gaze slides only
        # the irises, wide eyes lift only the lids (the iris is not stretched).
        held = outline + list(RIGHT_IRIS + LEFT_IRIS)
        fixed = anchors + [i for i in held if i not in set(movers)]
        fields.append(_field(lm, m, movers, fixed, box, u / 2))
    region = Region(*box, fields=np.stack(fields), base=np.zeros_like(fields[0]))
    h, w = box[3] - box[1], box[2] - box[0]
    gy, gx = np.mgrid[box[1] : box[1] + h, box[0] : box[0] + w].astype(np.float32)
    return UpperFace(region, (gx, gy))


def warp_upper(face: UpperFace, params: np.ndarray, canvas: np.ndarray) -> None:
    """Warp the upper-face region of ``canvas`` in place by ``params`` (len(UPPER_FIELDS),)."""
    r = face.region
    disp = np.tensordot(params.astype(np.float32), r.fields, axes=1)
    gx, gy = face.grid
    src = canvas[r.y0 : r.y1, r.x0 : r.x1].copy()
    # Backward map in region coordinates. Moves here are a few pixels over a smooth field, so
    # the mouth warp's fixed-point refinement would change nothing visible: one remap.
    sx, sy = gx - r.x0 - disp[..., 0], gy - r.y0 - disp[..., 1]
    canvas[r.y0 : r.y1, r.x0 : r.x1] = cv2.remap(
        src, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
