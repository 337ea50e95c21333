"""The inside of an open mouth, painted between the inner lip edges of a photo avatar.

Back to front: a cavity that darkens with depth (towards its centre and the corners), a tongue
(a shaded dome on open vowels; its tip raised to the upper teeth for /l/ /n/ /t/ /d/, and
out between the teeth, over their edges, for /th/, as the lip-sync's tongue values say), lower teeth when the jaw is wide open, and upper teeth drawn one by one (central
incisors, laterals, canines, premolars, narrowing with the dental arch) with cylindrical
shading, dark gaps, a shadow under the upper lip and darkness towards the corners. Around the
opening the lips get their wet, darker inner rim. All sizes are in mouth widths ``s``.

The teeth colour comes from the photo when its mouth shows teeth (:func:`teeth_colour`).
"""

from __future__ import annotations

import cv2
import numpy as np

_CAVITY = np.array([86, 30, 34], np.float32)  # near the lips: lit mucosa
_CAVITY_DEEP = np.array([16, 4, 6], np.float32)  # the back of the mouth
_TONGUE = np.array([176, 82, 86], np.float32)
DEFAULT_TEETH = np.array([226, 216, 198], np.float32)
# Projected widths (in mouth widths) of the upper teeth from the midline outwards: the arch
# curves away from the camera, so teeth further back look narrower.
_UPPER_WIDTHS = np.array([0.135, 0.105, 0.085, 0.07, 0.06, 0.05])
# Relative length of each tooth (centrals longest; canines pointed, premolars shorter).
_UPPER_LENGTH = np.array([1.0, 0.88, 0.95, 0.8, 0.72, 0.65])
_LOWER_WIDTHS = np.array([0.085, 0.08, 0.075, 0.065, 0.055])


def teeth_colour(image: np.ndarray, upper: np.ndarray, lower: np.ndarray, s: float) -> np.ndarray:
    """The photo's teeth colour (RGB float32) between the inner lips, or the default.

    Teeth are the bright, little-saturated pixels of the opening; when the lips are closed or
    nothing tooth-like shows, a plausible ivory is returned.
    """
    gap = float((lower[:, 1] - np.interp(lower[:, 0], upper[:, 0], upper[:, 1])).max())
    if gap < 0.04 * s:
        return DEFAULT_TEETH.copy()
    poly = np.vstack([upper, lower[::-1]]).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly], 1)
    px = image[mask.astype(bool)].astype(np.float32)
    if len(px) < 20:
        return DEFAULT_TEETH.copy()
    light = px.mean(1)
    sat = px.max(1) - px.min(1)
    teeth = px[(light > np.percentile(light, 60)) & (sat < 0.35 * np.maximum(light, 1))]
    if len(teeth) < 10 or teeth.mean() < 120:
        return DEFAULT_TEETH.copy()
    colour = np.median(teeth, axis=0)
    # Teeth in photos are often in the lips' shadow: lift to a lit tooth's brightness.
    return np.clip(colour * (215.0 / max(float(colour.max()), 1.0)), 0, 255).astype(np.float32)


def fill_opening(image: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """``image`` with the photo's own mouth opening filled from the lips around it.

    A photo with parted lips shows its own teeth there; closing the lips by warping alone would
    squeeze them into a pale line along the lip seam, so the opening is inpainted first.
    """
    poly = np.vstack([upper, lower[::-1]])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
    if not mask.any():
        return image
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8))
    return cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)


def paint_interior(
    canvas: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    s: float,
    teeth: np.ndarray,
    roundness: float = 0.0,
    tongue_up: float = 0.0,
    tongue_out: float = 0.0,
) -> None:
    """Paint the mouth opening between ``upper`` and ``lower`` inner lip edges into ``canvas``.

    ``upper`` and ``lower`` run corner to corner (left to right) and share their end points.
    ``tongue_up`` (0..1) raises the tongue tip to the upper teeth; ``tongue_out`` (0..1) shows
    it between the teeth.
    """
    gaps = lower[:, 1] - np.interp(lower[:, 0], upper[:, 0], upper[:, 1])
    if gaps.max() < 0.01 * s:
        return
    poly = np.vstack([upper, lower[::-1]])
    rim_w = 0.03 * s
    pad = int(np.ceil(3 * rim_w)) + 2
    x0, y0 = np.floor(poly.min(0)).astype(int) - pad
    x1, y1 = np.ceil(poly.max(0)).astype(int) + pad
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    h, w = y1 - y0, x1 - x0
    off = np.array([x0, y0], np.float64)
    up, lo = upper - off, lower - off
    cover = _fill(poly - off, (h, w))
    mask = cv2.GaussianBlur(cover, (0, 0), 0.6)
    xs = np.arange(w, dtype=np.float32)
    top = np.interp(xs, up[:, 0], up[:, 1]).astype(np.float32)[None, :]
    bot = np.interp(xs, lo[:, 0], lo[:, 1]).astype(np.float32)[None, :]
    gap = np.maximum(bot - top, 0.0)
    yy = np.arange(h, dtype=np.float32)[:, None]
    cx = float(up[0, 0] + up[-1, 0]) / 2
    rx = max(float(up[-1, 0] - up[0, 0]) / 2, 1.0)
    across = np.clip(1 - ((xs[None, :] - cx) / rx) ** 2, 0, 1)  # 1 mid-mouth, 0 at corners
    centre_gap = float(gaps.max())

    # Cavity: lit mucosa just inside the lips, dark deep in the middle and towards the corners.
    from_lip = np.minimum(yy - top, bot - yy) / max(0.5 * centre_gap, 1.0)
    depth = np.clip(from_lip, 0, 1) ** 0.6 * (0.45 + 0.55 * across) + (1 - across) * 0.5
    depth = np.clip(depth, 0, 1)[..., None]
    inside = _CAVITY * (1 - depth) + _CAVITY_DEEP * depth

    # Tongue: a dome on the floor of the mouth; on mid openings its tip rises to the teeth.
    open_ = np.clip(centre_gap / (0.3 * s), 0, 1)
    tip = float(np.clip(tongue_up, 0, 1)) * (1 - roundness)
    if centre_gap > 0.05 * s:
        dome_w = rx * (0.62 - 0.15 * tip)
        dx = (xs[None, :] - cx) / max(dome_w, 1.0)
        # A raised tip reaches the upper teeth's edge (which it shortens: see below).
        height = gap * (0.25 + 0.15 * open_ + 0.5 * tip) * np.sqrt(np.clip(1 - dx**2, 0, 1))
        surface = bot - height
        t = np.clip((yy - surface) / 1.2, 0, 1) * (np.abs(dx) < 1)
        # Lighter along the top ridge and the middle, darker back and sides; a faint groove.
        ridge = np.clip(1 - (yy - surface) / max(0.08 * s, 1.0), 0, 1)
        groove = 1 - 0.08 * np.exp(-((xs[None, :] - cx) ** 2) / max((0.02 * s) ** 2, 1.0))
        shade = (0.62 + 0.28 * ridge + 0.15 * np.sqrt(np.clip(1 - dx**2, 0, 1))) * groove
        shade = shade * (0.85 + 0.15 * max(open_, tip))
        t = (t * (0.35 + 0.65 * open_ + 0.5 * tip)).clip(0, 1)[..., None]
        inside = inside * (1 - t) + (_TONGUE * shade[..., None]) * t

    # Lower teeth: just above the lower lip once the jaw is well open.
    low_len = np.clip((gap - 0.22 * s) * 0.5, 0, 0.06 * s) * (0.3 + 0.7 * across)
    if low_len.max() > 0.8:
        inside = _teeth(
            inside,
            xs,
            yy,
            cx,
            s,
            bot - low_len,
            bot + 1,
            _LOWER_WIDTHS,
            None,
            teeth * 0.88,
            across,
            from_top=False,
        )

    # Upper teeth: hang from under the upper lip; lower lip covers them when nearly closed.
    # A raised tongue tip (/l/, /n/, /th/) shows just under the teeth.
    length = np.minimum(0.12 * s, (0.62 - 0.3 * tip) * gap)
    inside = _teeth(
        inside,
        xs,
        yy,
        cx,
        s,
        top,
        top + length,
        _UPPER_WIDTHS,
        _UPPER_LENGTH,
        teeth,
        across,
        from_top=True,
    )

    # /th/: the tongue tip lies between the teeth, over the upper teeth's biting edge.
    out = float(np.clip(tongue_out, 0, 1)) * (1 - roundness)
    if out > 0.05:
        # A rounded tip rising from the floor of the mouth to just over the teeth's edge.
        dx = (xs[None, :] - cx) / (0.19 * s)
        half = np.clip(1 - dx**2, 0, 1) ** 0.35
        t_top = bot - (bot - (top + 0.7 * length)) * half
        below = yy - t_top
        ridge = np.clip(1 - below / max(0.05 * s, 1.0), 0, 1)
        shade = (0.7 + 0.22 * ridge + 0.1 * half) * (1 - 0.25 * np.abs(dx) ** 4)
        t = np.clip(below + 0.5, 0, 1) * (np.abs(dx) < 1) * min(1.0, out * 1.5)
        inside = inside * (1 - t[..., None]) + (_TONGUE * shade[..., None]) * t[..., None]

    roi = canvas[y0:y1, x0:x1].astype(np.float32)
    # The wet inner rim of the lips: a darker, slightly redder band just outside the opening.
    rim = np.clip(cv2.GaussianBlur(cover, (0, 0), rim_w) * 2.2 - cover * 2.2, 0, 1)
    rim = (rim * min(1.0, centre_gap / (0.04 * s)))[..., None]
    roi = roi * (1 - 0.38 * rim) + np.array([60, 14, 18], np.float32) * 0.38 * rim * 0.5
    m = mask[..., None]
    canvas[y0:y1, x0:x1] = np.clip(roi * (1 - m) + inside * m, 0, 255).astype(np.uint8)


def _teeth(
    inside: np.ndarray,
    xs: np.ndarray,
    yy: np.ndarray,
    cx: float,
    s: float,
    root: np.ndarray,
    edge: np.ndarray,
    widths: np.ndarray,
    lengths: np.ndarray | None,
    colour: np.ndarray,
    across: np.ndarray,
    from_top: bool,
) -> np.ndarray:
    """Composite one row of teeth between ``root`` and ``edge`` (per column) over ``inside``."""
    bounds = np.concatenate([[0.0], np.cumsum(widths)]) * s
    d = np.abs(xs - cx)
    k = np.clip(np.searchsorted(bounds, d, side="right") - 1, 0, len(widths) - 1)
    u = np.clip((d - bounds[k]) / (widths[k] * s), 0, 1)  # 0..1 across each tooth
    c = 2 * u - 1  # -1..1, 0 at the tooth's middle
    full = (edge - root) * (np.ones_like(d) if lengths is None else lengths[k])[None, :]
    # Rounded incisal corners: a tooth is a little shorter at its sides.
    length = full * (1 - 0.3 * np.abs(c[None, :]) ** 6)
    pos = (yy - root) if from_top else (edge - yy)  # distance from where the tooth emerges
    lo_y, hi_y = (root, root + length) if from_top else (edge - length, edge)
    inside_tooth = np.clip(yy - lo_y + 0.5, 0, 1) * np.clip(hi_y - yy + 0.5, 0, 1)
    cover = inside_tooth * (d < bounds[-1])[None, :]
    # Shading: cylindrical across each tooth, darker towards the corners, dark interdental gaps
    # (wider towards the biting edge), a shadow under the lip, a translucent biting edge.
    gap_w = 0.0045 / widths[k]
    frac = np.clip(pos / np.maximum(full, 1.0), 0, 1)
    gap_dark = np.exp(-(((1 - np.abs(c))[None, :] / (gap_w * (1 + 1.5 * frac**3))) ** 2))
    shade = (1 - 0.15 * c[None, :] ** 2) * (0.2 + 0.8 * across**0.7) * (1 - 0.55 * gap_dark)
    shade = shade * (0.62 + 0.38 * np.clip(pos / max(0.03 * s, 1.0), 0, 1))
    shade = shade * (1 - 0.12 * np.clip((frac - 0.75) / 0.25, 0, 1))
    col = colour[None, None, :] * shade[..., None]
    # The biting edge is a little bluish-grey (enamel without dentine behind it).
    col = col + (np.clip((frac - 0.8) / 0.2, 0, 1) * 10)[..., None] * np.array([-1, 0, 1.2])
    a = cover[..., None]
    return inside * (1 - a) + col * a


def _fill(poly: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased coverage (0..1) of polygon ``poly`` on a canvas of ``shape``."""
    canvas = np.zeros(shape, np.uint8)
    pts = np.round(poly * 16).astype(np.int32)  # 4 fractional bits of sub-pixel precision
    cv2.fillPoly(canvas, [pts], 255, lineType=cv2.LINE_AA, shift=4)
    return canvas.astype(np.float32) / 255.0
