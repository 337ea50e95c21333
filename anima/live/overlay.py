"""Broadcast overlays: background, lower-third subtitles, the "AI-generated" label and a logo.

Every overlay is drawn once with Pillow into a small RGBA layer and cached; per frame only the
layer's rectangle is alpha-blended with numpy, so overlays cost little next to render and encode.
The avatar frame is placed on a canvas of the output size; with a background image it sits at
the bottom centre with feathered edges, like an anchor in front of a set.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

AI_LABEL = "AI-generated"


class OverlayError(ValueError):
    """An overlay image cannot be used."""


@dataclass(frozen=True)
class Layer:
    """Premultiplied RGB and inverse alpha for one rectangle of the canvas."""

    y: int
    x: int
    rgb: np.ndarray  # float32 (h, w, 3), already multiplied by alpha
    keep: np.ndarray  # float32 (h, w, 1): 1 - alpha

    def blend(self, canvas: np.ndarray) -> None:
        """Draw onto ``canvas`` (uint8, in place)."""
        h, w = self.keep.shape[:2]
        roi = canvas[self.y : self.y + h, self.x : self.x + w]
        roi[:] = (roi * self.keep + self.rgb).astype(np.uint8)


def _layer(rgba: np.ndarray, y: int, x: int) -> Layer:
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return Layer(y, x, rgba[..., :3].astype(np.float32) * a, 1.0 - a)


# Fonts with Chinese glyphs (Debian: fonts-wqy-microhei, fonts-noto-cjk), tried first for text
# with CJK characters; DejaVu has none and would draw boxes for 字幕 and the AI生成 label.
_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
_CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef]")


def _font_for(text: str, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font that has glyphs for ``text`` (a CJK one when it holds Chinese characters)."""
    return _font(px, cjk=bool(_CJK.search(text)))


@lru_cache(maxsize=8)
def _font(px: int, cjk: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    latin = (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    )
    for path in (*_CJK_FONTS, *latin) if cjk else latin:
        if Path(path).exists():
            return ImageFont.truetype(path, px)
    return ImageFont.load_default(size=px)  # Pillow's embedded font (Pillow >= 10.1)


def read_image(path: Path, *, alpha: bool) -> np.ndarray:
    """RGB (or RGBA with ``alpha``) uint8 pixels of an image file, with a clear error."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGBA" if alpha else "RGB"))
    except (OSError, ValueError) as exc:
        raise OverlayError(f"cannot read overlay image {path}: {exc}") from exc


def label_layer(text: str, width: int, height: int) -> Layer:
    """A small dark pill with ``text``, top-left: the disclosure that the host is synthetic."""
    px = max(10, round(height * 0.032))
    font = _font_for(text, px)
    left, top, right, bottom = font.getbbox(text)
    pad = px // 2
    w, h = right - left + 2 * pad, bottom - top + 2 * pad
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    draw = ImageDraw.Draw(im)
    draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=h // 3, fill=(0, 0, 0, 150))
    draw.text((pad - left, pad - top), text, font=font, fill=(255, 255, 255, 235))
    margin = max(4, round(height * 0.02))
    return _layer(np.asarray(im), margin, margin)


def logo_layer(rgba: np.ndarray, width: int, height: int) -> Layer:
    """The logo scaled to about 14 % of the width, top-right."""
    target = max(8, round(width * 0.14))
    h, w = rgba.shape[:2]
    scale = min(target / w, target / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgba, size, interpolation=cv2.INTER_AREA)
    margin = max(4, round(height * 0.02))
    return _layer(small, margin, width - size[0] - margin)


def subtitle_layer(text: str, width: int, height: int) -> Layer:
    """A lower-third band with ``text`` wrapped to at most two lines (ellipsis beyond)."""
    px = max(10, round(height * 0.042))
    font = _font_for(text, px)
    # The text's own average width: a Chinese character is about twice a Latin letter.
    sample = text.replace(" ", "") or "abcdefghijklmnopqrstuvwxyz"
    avg = max(1.0, font.getlength(sample) / len(sample))
    chars = max(8, int(width * 0.9 / avg))
    lines = textwrap.wrap(text, chars) or [""]
    if len(lines) > 2:
        rest = " ".join(lines[1:])
        short = textwrap.shorten(rest, chars, placeholder=" …")
        if short.strip() == "…":  # no spaces to cut at (Chinese): cut at a character
            short = rest[: chars - 1] + "…"
        lines = [lines[0], short]
    spacing = px // 3
    band_h = len(lines) * px + (len(lines) - 1) * spacing + px
    im = Image.new("RGBA", (width, band_h), (0, 0, 0, 140))
    draw = ImageDraw.Draw(im)
    y = px // 2
    for line in lines:
        w = font.getlength(line)
        draw.text(((width - w) / 2, y), line, font=font, fill=(255, 255, 255, 255))
        y += px + spacing
    bottom = round(height * 0.05)
    return _layer(np.asarray(im), height - band_h - bottom, 0)


class Compositor:
    """Places the avatar frame on the output canvas and draws the overlays."""

    def __init__(
        self,
        width: int,
        height: int,
        *,
        background: np.ndarray | None = None,
        logo: np.ndarray | None = None,
        label: str | None = AI_LABEL,
        subtitles: bool = True,
    ) -> None:
        self.width, self.height = width, height
        self.subtitles = subtitles
        self._background = _cover(background, width, height) if background is not None else None
        self._static = []
        if logo is not None:
            self._static.append(logo_layer(logo, width, height))
        if label:
            self._static.append(label_layer(label, width, height))
        self._placement: tuple[int, int, int, np.ndarray | None] | None = None
        self._subtitle_cache: tuple[str, Layer] | None = None

    def compose(self, avatar: np.ndarray, subtitle: str | None = None) -> np.ndarray:
        """The output frame (height, width, 3) for one rendered avatar frame."""
        canvas = self._place(avatar)
        for layer in self._static:
            layer.blend(canvas)
        if self.subtitles and subtitle:
            if self._subtitle_cache is None or self._subtitle_cache[0] != subtitle:
                self._subtitle_cache = (
                    subtitle,
                    subtitle_layer(subtitle, self.width, self.height),
                )
            self._subtitle_cache[1].blend(canvas)
        return canvas

    def _place(self, avatar: np.ndarray) -> np.ndarray:
        h, w = avatar.shape[:2]
        if self._background is None and (h, w) == (self.height, self.width):
            return avatar.copy()
        if self._placement is None:
            self._placement = self._layout(h, w)
        size, y, x, mask = self._placement
        canvas = (
            self._background.copy()
            if self._background is not None
            else np.full((self.height, self.width, 3), 24, np.uint8)
        )
        face = (
            avatar if size == h else cv2.resize(avatar, (size, size), interpolation=cv2.INTER_AREA)
        )
        roi = canvas[y : y + size, x : x + size]
        if mask is None:
            roi[:] = face
        else:
            roi[:] = (roi * (1.0 - mask) + face * mask).astype(np.uint8)
        return canvas

    def _layout(self, h: int, w: int) -> tuple[int, int, int, np.ndarray | None]:
        """Avatar size and position on the canvas, and its feathered mask over a background."""
        if self._background is None:
            size = min(self.width, self.height)
            return size, (self.height - size) // 2, (self.width - size) // 2, None
        size = min(self.width, round(self.height * 0.9))
        y, x = self.height - size, (self.width - size) // 2
        # An ellipse with a soft edge, open at the bottom: the anchor stands in front of the set.
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        r = ((xx - 0.5) / 0.46) ** 2 + (np.minimum(yy - 0.55, 0) / 0.5) ** 2
        mask = np.clip((1.0 - r) / 0.25, 0.0, 1.0)[..., None]
        return size, y, x, mask


def _cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` scaled and centre-cropped to fill ``width`` x ``height``."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(
        image,
        (max(width, round(w * scale)), max(height, round(h * scale))),
        interpolation=cv2.INTER_AREA,
    )
    y = (resized.shape[0] - height) // 2
    x = (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y : y + height, x : x + width, :3])
