"""Chinese on the live overlays: a CJK font for the label and subtitles, wrapped by width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anima.live import overlay

HAS_CJK_FONT = any(Path(p).exists() for p in overlay._CJK_FONTS)


@pytest.mark.skipif(not HAS_CJK_FONT, reason="no CJK font installed (.ci/run installs one)")
def test_chinese_label_and_subtitle_use_a_cjk_font():
    # DejaVu (the Latin font) has no Chinese glyphs and would draw boxes.
    assert overlay._font_for("AI生成", 20).path in overlay._CJK_FONTS
    assert getattr(overlay._font_for("AI-generated", 20), "path", None) not in overlay._CJK_FONTS


def test_long_chinese_subtitle_keeps_two_full_lines():
    text = "各位市民朋友，大家早上好！欢迎收看江滨区社保服务中心的早间播报。本中心周一至周五办公。"
    layer = overlay.subtitle_layer(text, 512, 512)
    assert layer.rgb.shape[1] == 512
    # Two lines of text (not one line and a lone ellipsis): ink in both halves of the band.
    ink = (layer.rgb.max(axis=(1, 2)) > 100).nonzero()[0]
    assert ink.size and ink.max() - ink.min() > 30
    assert np.isfinite(layer.rgb).all()
