"""Video avatars: seamless idle loop, mouth on each frame's face, one clear line per bad clip."""

import math

import cv2
import numpy as np
import pytest

from anima.frames import MouthShape, VideoFrame
from anima.media import Mp4Writer
from anima.render.avatar import AvatarError, sample_portrait
from anima.render.video_avatar import (
    VideoAnimator,
    frame_difference,
    prepare_video,
    read_clip,
)


def _clip(seconds: float, leave: bool = False) -> list[np.ndarray]:
    """The astronaut with slow synthetic head motion (sway, nod, roll), 25 fps."""
    img = sample_portrait()
    h, w = img.shape[:2]
    out = []
    for k in range(int(seconds * 25)):
        t = k / 25
        dx = 9 * math.sin(2 * math.pi * t / 2.3) + (400 * max(0.0, t - 4.5) if leave else 0)
        dy = 5 * math.sin(2 * math.pi * t / 1.7 + 1.0)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * math.sin(2 * math.pi * t / 3.1), 1.0)
        m[:, 2] += (dx, dy)
        out.append(cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE))
    return out


@pytest.fixture(scope="module")
def video():
    return prepare_video(_clip(5.2), "guide", size=256)


def _small(v, k: int) -> np.ndarray:
    grey = cv2.cvtColor(v.frame(k), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)


def test_idle_loop_seam_is_below_the_median_frame_step(video):
    n = len(video.frames)
    steps = [frame_difference(_small(video, k), _small(video, k + 1)) for k in range(n - 1)]
    median = float(np.median(steps))
    played = [video.clip_index(i) for i in range(3 * n)]
    seams = [
        frame_difference(_small(video, a), _small(video, b))
        for a, b in zip(played, played[1:], strict=False)
        if abs(b - a) != 1 and a != b
    ]
    assert all(s < median for s in seams), (seams, median)
    assert len(set(played)) > n // 2  # the loop keeps most of the clip


def test_mouth_is_drawn_on_each_frame_of_the_clip(video):
    anim = VideoAnimator(video, size=256)
    wide = MouthShape(jaw_open=1.0, lip_width=0.45)
    for i in (0, 17, 40):
        rest = anim.render(i, MouthShape(), False)
        talk = anim.render(i, wide, True)
        k = video.clip_index(i)
        lm = video.landmarks[k] - (video.work_size - 256) // 2
        x, y = np.round(lm[13]).astype(int)
        diff = np.abs(talk.astype(int) - rest.astype(int)).max(2)
        # The mouth opens where this frame's mouth is, and nowhere far from it.
        assert diff[y - 3 : y + 10, x - 5 : x + 5].mean() > 40
        far = np.ones_like(diff, bool)
        far[max(0, y - 80) : y + 90, max(0, x - 90) : x + 90] = False
        assert diff[far].max() <= 2


def test_bad_clips_get_one_clear_line(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(AvatarError, match="not a readable video"):
        read_clip(bad)
    short = tmp_path / "short.mp4"
    writer = Mp4Writer(short, 128, 25)
    for i in range(50):
        writer.write_video(VideoFrame(turn=0, image=np.full((128, 128, 3), 90, np.uint8), index=i))
    writer.close()
    with pytest.raises(AvatarError, match="5-60 s"):
        read_clip(short)
    grey = [np.full((256, 256, 3), 120, np.uint8)] * 5
    with pytest.raises(AvatarError, match="no face"):
        prepare_video(grey, "x")
    with pytest.raises(AvatarError, match="leaves the frame|lost"):
        prepare_video(_clip(5.2, leave=True)[100:], "x")
    face = sample_portrait()[20:300, 110:370]
    two = [np.ascontiguousarray(np.hstack([face, face[:, ::-1]]))]
    with pytest.raises(AvatarError, match="several faces"):
        prepare_video(two, "x")


def test_avatar_add_takes_a_clip_and_stores_it(tmp_path, capsys):
    from anima.cli import main
    from anima.render.video_avatar import VideoAvatar

    clip = tmp_path / "clip.mp4"
    writer = Mp4Writer(clip, 512, 25, watermark=False)
    for i, img in enumerate(_clip(5.2)):
        writer.write_video(VideoFrame(turn=0, image=img, index=i))
    writer.close()
    data = str(tmp_path / "data")
    assert main(["--data-dir", data, "avatar", "add", str(clip), "--name", "guide"]) == 0
    main(["--data-dir", data, "avatar", "list"])
    assert "guide" in capsys.readouterr().out
    video = VideoAvatar.load(tmp_path / "data" / "avatars" / "guide")
    assert len(video.frames) == 130 and video.landmarks.shape == (130, 478, 2)
    # A clip that is no video: one line, exit code 2 (the CLI's user-error code).
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"junk" * 50)
    assert main(["--data-dir", data, "avatar", "add", str(bad), "--name", "bad"]) != 0


def test_say_renders_a_stored_video_avatar(tmp_path):
    """A stored clip becomes a VideoAnimator wherever the engine and `anima say` make one."""
    from anima.config import RenderSettings
    from anima.render.avatar import AvatarStore
    from anima.render.video_avatar import VideoAnimator, animator_for

    store = AvatarStore(tmp_path)
    video = prepare_video(_clip(5.2), "guide", size=256)
    folder = store.add(video.reference())
    video.save(folder)
    anim = animator_for(store.get("guide"), RenderSettings(size=256))
    assert isinstance(anim, VideoAnimator)
    frames = [anim.render(i, MouthShape(), False) for i in range(3)]
    assert frames[0].shape == (256, 256, 3)
    # Real head motion from the clip: successive idle frames differ.
    assert np.abs(frames[0].astype(int) - frames[2].astype(int)).mean() > 0.5
