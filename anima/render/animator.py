"""Per-frame rendering of a prepared avatar: mouth, jaw, blinks and head motion.

A frame is made in four cheap steps on the avatar's working image:
1. the mouth region is warped by the rig's fields weighted by the mouth shape;
2. where the lips part, the inside of the mouth is painted: a dark cavity, upper teeth below
   the upper lip, a hint of lower teeth and tongue when wide open, with soft edges;
3. blinking eyelids are painted over the eyes (see :mod:`anima.render.eyelids`), then the
   upper face is warped for brows, eye openness and gaze (see :mod:`anima.render.expression`);
4. one affine warp applies head sway, breathing, nods and the emotion's tilt and crops to the
   output size.

The emotion of each frame (a preset from :mod:`anima.expression`) is eased in over a few frames:
smile via the lip corners, brows, eye openness, head tilt and nod strength.
"""

from __future__ import annotations

from dataclasses import replace

import cv2
import numpy as np

from anima.config import RenderSettings
from anima.expression import ExpressionBlend
from anima.frames import MouthShape
from anima.render import face as F
from anima.render.avatar import Avatar
from anima.render.expression import add_smile, build_upper_face, warp_upper
from anima.render.eyelids import Eyelids
from anima.render.idle import HeadPose, IdleMotion
from anima.render.mouth_interior import fill_opening, paint_interior, teeth_colour
from anima.render.prosody import Prosody
from anima.render.rig import Region, build_rig


class FaceAnimator:
    """Renders frames of one avatar. Not thread-safe: use one per session."""

    def __init__(
        self,
        avatar: Avatar,
        *,
        size: int = 512,
        fps: int = 25,
        seed: int | None = None,
        blink_interval: float = 4.0,
        head_motion: float = 1.0,
    ) -> None:
        self.avatar = avatar
        self.size = size
        self.fps = fps
        self.rig = build_rig(avatar.landmarks, avatar.work_size)
        add_smile(self.rig, avatar.landmarks)
        self.upper = build_upper_face(avatar.landmarks, avatar.work_size, self.rig.mouth.y0)
        self.expression = ExpressionBlend(fps)
        self._gaze_amount = min(1.0, head_motion)
        self.idle = IdleMotion(seed, blink_interval, head_motion)
        self.prosody = Prosody(fps)
        self._image = avatar.image.astype(np.uint8)
        self._canvas = self._image.copy()
        self._talk = 0.0
        self._face_centre = avatar.landmarks.mean(axis=0)
        self.eyelids = Eyelids(self._image, avatar.landmarks)
        self._grid = _grid(self.rig.mouth)
        lm = avatar.landmarks
        upper = lm[list(F.LIPS_UPPER_INNER)]
        lower = lm[[F.INNER_CORNERS[0], *F.LIPS_LOWER_INNER, F.INNER_CORNERS[1]]]
        self._teeth = teeth_colour(self._image, upper, lower, self.rig.mouth_width)
        # The photo's own teeth would show as a pale seam once the base warp closes the lips.
        self._image = fill_opening(self._image, upper, lower)
        self._canvas = self._image.copy()
        self._mouth_canvas = self._image.copy()

    @classmethod
    def from_settings(cls, avatar: Avatar, render: RenderSettings) -> FaceAnimator:
        """An animator with size, fps, seed, blinks and head motion from the render settings."""
        return cls(
            avatar,
            size=render.size,
            fps=render.fps,
            seed=render.seed,
            blink_interval=render.blink_interval,
            head_motion=render.head_motion,
        )

    def render(
        self, index: int, shape: MouthShape, speaking: bool = False, emotion: str | None = None
    ) -> np.ndarray:
        """The RGB frame (size, size, 3) for video frame ``index`` with mouth ``shape``.

        ``emotion`` sets the expression the face eases toward; None keeps the current one.
        Call once per frame in order: the expression blends frame by frame.
        """
        t = index / self.fps
        canvas = self._canvas
        if emotion is not None and emotion != self.expression.emotion:
            self.expression.set(emotion)
        expr = self.expression.step()
        params = np.append(_effective(shape), np.float32(expr.smile))
        self._warp(self.rig.mouth, params, canvas)
        self._paint_mouth(params, canvas, shape)
        up = self.upper.region
        canvas[up.y0 : up.y1, up.x0 : up.x1] = self._image[up.y0 : up.y1, up.x0 : up.x1]
        # Narrowed eyes (a smile, sadness) are a partly lowered lid; blinks close the rest.
        squint = 0.5 * max(0.0, -expr.eye_open)
        self.eyelids.apply(canvas, squint + (1.0 - squint) * self.idle.blink(t))
        stress = self.prosody.step(float(shape.jaw_open), speaking, shape.pitch, shape.question)
        asking = self.prosody.asking
        if self.prosody.mid_word:
            self.idle.defer_blink(t, 1.0 / self.fps)
        if self.prosody.sentence_ended:
            self.idle.look_at_viewer(t)
        gx, gy = self.idle.gaze(t)
        g = self._gaze_amount
        upper = np.array(
            [
                expr.brow_raise + 0.35 * stress + 0.45 * asking,
                expr.brow_inner,
                max(0.0, expr.eye_open),
                g * gx,
                g * gy,
                # The cheeks lift the lower lids with a smile and, a little, on open vowels.
                max(0.0, expr.smile) * 0.8 + 0.25 * max(0.0, float(shape.jaw_open) - 0.4),
            ]
        )
        if np.abs(upper).max() > 1e-3:
            warp_upper(self.upper, upper, canvas)
        # Smoothed speaking activity drives small nods; ~0.3 s time constant.
        self._talk += (float(shape.jaw_open) * (1.0 if speaking else 0.0) - self._talk) * min(
            1.0, 4.0 / self.fps
        )
        pose = self.idle.pose(t, self.size, self._talk * expr.nod)
        pose = replace(
            pose,
            roll=pose.roll + expr.tilt + 2.5 * asking,
            dy=pose.dy + (expr.head_down + 0.5 * stress * expr.nod) * 0.01 * self.size,
        )
        return self._frame(canvas, pose)

    # -- steps ---------------------------------------------------------------------------

    def mouth_on(
        self, image: np.ndarray, shape: MouthShape, rect: tuple[int, int, int, int] | None = None
    ) -> np.ndarray:
        """``image`` (aligned to this avatar's face, work size) with the mouth ``shape`` drawn.

        For video avatars: each clip frame brings its own face; jaw, lips and the mouth's
        inside are this avatar's rig applied to it. Expression and head motion are not applied.
        ``rect`` limits the copy of ``image`` to the part that matters (x0, y0, x1, y1).
        """
        params = np.append(_effective(shape), np.float32(0.0))
        if rect is None:
            canvas = image.copy()
        else:
            canvas = self._mouth_canvas
            x0, y0, x1, y1 = rect
            canvas[y0:y1, x0:x1] = image[y0:y1, x0:x1]
        self._warp(self.rig.mouth, params, canvas, image)
        self._paint_mouth(params, canvas, shape)
        return canvas

    def _warp(
        self,
        region: Region,
        params: np.ndarray,
        canvas: np.ndarray,
        source: np.ndarray | None = None,
    ) -> None:
        """Backward-warp ``region`` of the photo into ``canvas``; one fixed-point refinement."""
        disp = region.base + np.tensordot(params.astype(np.float32), region.fields, axes=1)
        gx, gy = self._grid
        # dst(x) = src(x - d(src)); first guess src = x - d(x), then resample d there once.
        sx, sy = gx - disp[..., 0], gy - disp[..., 1]
        local = cv2.remap(
            disp, sx - region.x0, sy - region.y0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        sx, sy = gx - local[..., 0], gy - local[..., 1]
        canvas[region.y0 : region.y1, region.x0 : region.x1] = cv2.remap(
            self._image if source is None else source,
            sx,
            sy,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT,
        )

    def _paint_mouth(self, params: np.ndarray, canvas: np.ndarray, shape: MouthShape) -> None:
        lm = self.rig.landmarks_for(self.avatar.landmarks, params)
        upper = lm[list(F.LIPS_UPPER_INNER)]
        lower = lm[[F.INNER_CORNERS[0], *F.LIPS_LOWER_INNER, F.INNER_CORNERS[1]]]
        paint_interior(
            canvas,
            upper,
            lower,
            self.rig.mouth_width,
            self._teeth,
            float(params[2]),
            shape.tongue_up,
            shape.tongue_out,
        )

    def _frame(self, canvas: np.ndarray, pose: HeadPose) -> np.ndarray:
        work = canvas.shape[0]
        cx, cy = float(self._face_centre[0]), float(self._face_centre[1])
        m = cv2.getRotationMatrix2D((cx, cy), pose.roll, pose.scale)
        # Then centre-crop the working square to the output square.
        shift = (work - self.size) / 2
        m[0, 2] += pose.dx - shift
        m[1, 2] += pose.dy - shift
        return cv2.warpAffine(
            canvas, m, (self.size, self.size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )


def _effective(shape: MouthShape) -> np.ndarray:
    """Mouth parameters as the rig uses them: pressed lips hold the jaw nearly shut.

    Coarticulated speech rarely drives the jaw past 0.4, so small openings are boosted
    (0 and 1 stay put) to keep articulation visible.
    """
    p = shape.as_array().astype(np.float32)
    p[0] = 1.0 - (1.0 - p[0]) ** 2
    p[0] *= 1.0 - 0.9 * p[3]
    return p


def _grid(region: Region) -> tuple[np.ndarray, np.ndarray]:
    h, w = region.y1 - region.y0, region.x1 - region.x0
    gy, gx = np.mgrid[region.y0 : region.y0 + h, region.x0 : region.x0 + w].astype(np.float32)
    return gx, gy
