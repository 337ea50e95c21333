"""Overlays: the AI label is on by default, subtitles sit in the lower third, images place."""

import numpy as np
import pytest

from anima.air.actions import ActionTrack
from anima.live.overlay import Compositor, OverlayError, read_image


def grey(h=256, w=256):
    return np.full((h, w, 3), 128, np.uint8)


def changed(a, b):
    return np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30


def test_ai_label_is_drawn_by_default_top_left_and_nothing_else():
    out = Compositor(256, 256).compose(grey())
    diff = changed(out, grey())
    assert diff[:30, :100].sum() > 100  # the label
    assert diff[60:, :].sum() == 0 and diff[:, 160:].sum() == 0
    plain = Compositor(256, 256, label=None).compose(grey())
    assert not changed(plain, grey()).any()


def test_subtitles_in_the_lower_third_and_cached_per_text():
    comp = Compositor(256, 256, label=None)
    out = comp.compose(grey(), "Hello and welcome to the show, everyone watching today.")
    diff = changed(out, grey())
    rows = np.nonzero(diff.any(axis=1))[0]
    assert rows.min() > 256 * 2 // 3 and rows.max() < 256
    layer = comp._subtitle_cache[1]
    comp.compose(grey(), "Hello and welcome to the show, everyone watching today.")
    assert comp._subtitle_cache[1] is layer
    long = comp.compose(grey(), "word " * 200)  # wrapped to two lines, never off the frame
    assert changed(long, grey())[170:].any()


def test_background_and_logo(tmp_path):
    bg = np.zeros((90, 160, 3), np.uint8)
    bg[:, :, 2] = 255  # blue set
    logo = np.zeros((20, 40, 4), np.uint8)
    logo[..., 0] = 255
    logo[..., 3] = 255  # opaque red
    comp = Compositor(320, 180, background=bg, logo=logo, label=None)
    out = comp.compose(grey(128, 128))
    assert out.shape == (180, 320, 3)
    assert out[90, 5].tolist() == [0, 0, 255]  # the set shows at the sides
    assert abs(int(out[120, 160, 0]) - 128) < 5  # the avatar in the middle
    assert out[10, 320 - 20, 0] == 255 and out[10, 320 - 20, 2] == 0  # the logo, top-right


def test_unreadable_overlay_image_is_a_clear_error(tmp_path):
    bad = tmp_path / "logo.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(OverlayError, match="cannot read overlay image"):
        read_image(bad, alpha=True)


def test_nod_moves_the_frame_then_returns_to_rest():
    img = np.zeros((64, 64, 3), np.uint8)
    img[20:40, 20:40] = 255
    track = ActionTrack(fps=25)
    track.start("nod", 0)
    moved = [not np.array_equal(track.apply(img, k), img) for k in range(40)]
    assert any(moved[:25]) and not any(moved[26:])
    with pytest.raises(ValueError, match="unknown action"):
        track.start("dance", 0)
