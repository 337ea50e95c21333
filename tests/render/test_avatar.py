import io

import numpy as np
import pytest
from PIL import Image

from anima.render.avatar import (
    Avatar,
    AvatarError,
    AvatarStore,
    PhotoLimits,
    prepare_avatar,
    read_photo,
)
from anima.render.face import face_width, shared_detector


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def test_not_an_image_is_refused():
    with pytest.raises(AvatarError, match="not an image"):
        read_photo(b"this is a text file, not a photo" * 10)


def test_empty_and_truncated_files(tmp_path, portrait):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(AvatarError, match="empty"):
        read_photo(empty)
    data = _png(portrait)
    with pytest.raises(AvatarError, match="damaged|not an image"):
        read_photo(data[: len(data) // 3])


def test_byte_limit_checked_before_reading(tmp_path):
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\0" * 5000)
    with pytest.raises(AvatarError, match="limit is"):
        read_photo(big, PhotoLimits(max_bytes=4096))


def test_pixel_limit_refuses_decompression_bombs():
    # 12000 x 12000 one-bit pixels compress to a few KB but would decode to 432 MB as RGB.
    buf = io.BytesIO()
    Image.new("1", (12000, 12000)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(AvatarError, match="pixels; the limit is 40,000,000"):
        read_photo(buf.getvalue(), PhotoLimits(max_pixels=40_000_000))
    # Under Pillow's own bomb threshold, our lower limit still applies from the header.
    buf = io.BytesIO()
    Image.new("1", (3000, 3000)).save(buf, format="PNG")
    with pytest.raises(AvatarError, match="3000x3000 pixels"):
        read_photo(buf.getvalue(), PhotoLimits(max_pixels=1_000_000))


def test_photo_with_no_face():
    grad = np.tile(np.linspace(0, 255, 400, dtype=np.uint8)[None, :, None], (300, 1, 3))
    with pytest.raises(AvatarError, match="no face found"):
        prepare_avatar(grad, "x")


def test_face_too_small_names_the_minimum(portrait):
    tiny = np.asarray(Image.fromarray(portrait).resize((160, 160)))
    with pytest.raises(AvatarError, match="at least 80 pixels"):
        prepare_avatar(tiny, "x", min_face_pixels=80)


def test_several_faces_picks_the_largest(portrait):
    face = portrait[30:250, 110:330]
    small = np.asarray(Image.fromarray(face).resize((150, 150)))
    canvas = np.full((260, 420, 3), 200, np.uint8)
    canvas[20:240, 0:220] = face
    canvas[50:200, 250:400] = small
    faces = shared_detector().detect(canvas)
    assert len(faces) == 2
    avatar = prepare_avatar(canvas, "two", min_face_pixels=40)
    assert any("2 faces" in n and "largest" in n for n in avatar.notes)
    # Largest first: the big face on the left.
    assert face_width(faces[0]) > 1.3 * face_width(faces[1])
    assert faces[0][:, 0].mean() < 220


def test_prepared_avatar_geometry(avatar):
    assert avatar.image.shape == (563, 563, 3)
    lm = avatar.landmarks
    assert lm.shape == (478, 2)
    # The face sits near the centre and fills a good part of the frame.
    assert abs(lm[:, 0].mean() - 563 / 2) < 40
    assert 0.3 < face_width(lm) / 563 < 0.7


def test_store_round_trip(tmp_path, avatar):
    store = AvatarStore(tmp_path / "avatars")
    assert store.names() == []
    store.add(avatar)
    assert store.names() == ["sample"]
    with pytest.raises(AvatarError, match="exists"):
        store.add(avatar)
    loaded = store.get("sample")
    assert isinstance(loaded, Avatar)
    np.testing.assert_array_equal(loaded.image, avatar.image)
    np.testing.assert_allclose(loaded.landmarks, avatar.landmarks)
    store.remove("sample")
    assert store.names() == []
    with pytest.raises(AvatarError, match="no avatar named"):
        store.get("sample")


def test_store_rejects_path_like_names(tmp_path, avatar):
    store = AvatarStore(tmp_path)
    for bad in ("../evil", "a/b", "", ".hidden"):
        with pytest.raises(AvatarError, match="invalid avatar name"):
            store.remove(bad)


def test_damaged_store_entry_is_a_clear_error(tmp_path, avatar):
    store = AvatarStore(tmp_path)
    folder = store.add(avatar)
    (folder / "landmarks.npy").write_bytes(b"garbage")
    with pytest.raises(AvatarError, match="missing or damaged"):
        store.get("sample")
