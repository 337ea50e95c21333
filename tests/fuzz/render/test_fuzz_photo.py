"""Uploaded photos under hostile input: ``read_photo`` decodes or raises AvatarError only.

Mutated JPEG (with EXIF, so orientation parsing is reached), PNG, WebP and GIF bytes plus
raw random bytes; and decompression bombs refused from the header, before any decoding.
"""

from __future__ import annotations

import struct
import sys
import zlib
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fuzz_helpers import fuzz, regression_files  # noqa: E402

from anima.render.avatar import AvatarError, PhotoLimits, read_photo  # noqa: E402

LIMITS = PhotoLimits(max_bytes=64 * 1024, max_pixels=512 * 512)


def _seed(fmt: str) -> bytes:
    rgb = np.random.default_rng(0).integers(0, 255, (40, 48, 3), np.uint8)
    img = Image.fromarray(rgb)
    buf = BytesIO()
    if fmt == "JPEG":
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate, so exif_transpose does real work
        img.save(buf, fmt, exif=exif)
    else:
        img.save(buf, fmt)
    return buf.getvalue()


SEEDS = [_seed(f) for f in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")]


def _mutate(seed_i: int, flips: list[tuple[int, int]], cut: int) -> bytes:
    data = bytearray(SEEDS[seed_i % len(SEEDS)])
    for pos, value in flips:
        data[pos % len(data)] = value
    return bytes(data[: max(1, len(data) - cut)])


photos = st.builds(
    _mutate,
    st.integers(0, len(SEEDS) - 1),
    st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=8),
    st.integers(0, 64) | st.just(0),
) | st.binary(max_size=300)


def check_photo(data: bytes) -> None:
    """Any bytes: an RGB image within the limits, or AvatarError with one line."""
    try:
        rgb = read_photo(data, LIMITS)
    except AvatarError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    assert rgb.shape[0] * rgb.shape[1] <= LIMITS.max_pixels


test_photo, test_photo_slow = fuzz(
    check_photo, photos, examples=300, cases=[(b,) for b in regression_files("photo")]
)


def png_bomb(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 100_000, 9)  # a few hundred bytes standing for far more
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_png_bomb_refused_before_decoding(monkeypatch):
    """100k x 100k pixels in a file of under 1 KB: refused from the header, never decoded."""
    data = png_bomb(100_000, 100_000)
    assert len(data) < 2048
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(AvatarError, match="pixels"):
        read_photo(data)
    assert decoded == []  # the header alone decided


def test_png_bomb_refused_by_pillow_guard_too():
    """With the operator's pixel limit raised absurdly, Pillow's own bomb guard still refuses."""
    with pytest.raises(AvatarError, match="pixels"):
        read_photo(png_bomb(100_000, 100_000), PhotoLimits(max_pixels=10**12))


def test_bytes_limit_before_parsing(tmp_path):
    """A file over max_bytes is refused from its size (path and bytes inputs alike)."""
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 70_000)
    for source in (big, big.read_bytes()):
        with pytest.raises(AvatarError, match="MB"):
            read_photo(source, LIMITS)
