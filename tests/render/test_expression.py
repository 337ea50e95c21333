"""Emotion on the face (measured on rendered frames) and natural idle statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from anima.expression import ExpressionBlend, face_expression
from anima.frames import EMOTIONS, MouthShape
from anima.render.animator import FaceAnimator
from anima.render.face import shared_detector
from anima.render.idle import IdleMotion

REST = MouthShape(jaw_open=0.0, lip_width=0.3, lip_closure=0.2)


@pytest.fixture(scope="module")
def rendered(avatar) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(frame, landmarks) per emotion, one second after the emotion was set."""
    out = {}
    for emotion in EMOTIONS:
        anim = FaceAnimator(avatar, size=512, seed=2, head_motion=0.0)
        for i in range(25):
            img = anim.render(i, REST, False, emotion)
        found = shared_detector().detect(img)
        assert found, f"{emotion}: the frame no longer looks like a face"
        out[emotion] = (img, found[0])
    return out


@pytest.fixture(scope="module")
def faces(rendered) -> dict[str, np.ndarray]:
    return {e: lm for e, (_, lm) in rendered.items()}


def _dark_eye_pixels(img: np.ndarray, lm: np.ndarray) -> int:
    """Dark (iris, pupil, lashes) pixels in boxes around both eyes, found in this frame."""
    gray = img.astype(np.float32).mean(axis=2)
    total = 0
    for a, b in ((33, 133), (263, 362)):
        x0, x1 = sorted((int(lm[a, 0]), int(lm[b, 0])))
        y = float((lm[a, 1] + lm[b, 1]) / 2)
        h = 0.35 * (x1 - x0)
        total += int((gray[int(y - h) : int(y + h), x0:x1] < 70).sum())
    return total


def _corners_y(lm: np.ndarray) -> float:
    return float(lm[[61, 291], 1].mean() - lm[[13, 14], 1].mean())  # relative to lip centre


def _brow_height(lm: np.ndarray) -> float:
    brows = [105, 66, 334, 296]
    return float(lm[[159, 386], 1].mean() - lm[brows, 1].mean())  # brow above upper lid


def _eye_gap(lm: np.ndarray) -> float:
    return float(lm[145, 1] - lm[159, 1] + lm[374, 1] - lm[386, 1])


def _tilt(lm: np.ndarray) -> float:
    d = lm[263] - lm[33]
    return math.degrees(math.atan2(float(d[1]), float(d[0])))


def test_happy_lifts_the_lip_corners_and_sad_lowers_them(faces):
    neutral = _corners_y(faces["neutral"])
    assert _corners_y(faces["happy"]) < neutral - 0.5  # image y grows downward
    assert _corners_y(faces["sad"]) > neutral + 0.5


def test_surprise_raises_brows_and_opens_eyes(faces):
    assert _brow_height(faces["surprised"]) > _brow_height(faces["neutral"]) + 1.0
    assert _eye_gap(faces["surprised"]) > _eye_gap(faces["neutral"]) * 1.05


def test_serious_lowers_the_brows_and_happy_narrows_the_eyes(faces, rendered):
    assert _brow_height(faces["serious"]) < _brow_height(faces["neutral"]) - 0.5
    # The lowered lids of a smile cover part of the irises.
    happy, neutral = (_dark_eye_pixels(*rendered[e]) for e in ("happy", "neutral"))
    assert happy < 0.9 * neutral


def test_emotions_tilt_the_head(faces):
    # A positive roll turns the image counter-clockwise: the eye line rises to the right.
    assert _tilt(faces["happy"]) - _tilt(faces["neutral"]) < -1.0
    assert _tilt(faces["sad"]) - _tilt(faces["neutral"]) > 1.0


def test_switching_emotion_blends_over_frames(avatar):
    anim = FaceAnimator(avatar, size=256, seed=2, head_motion=0.0)
    for i in range(5):
        anim.render(i, REST, False, "neutral")
    frames = [anim.render(5 + i, REST, False, "surprised").astype(np.float32) for i in range(20)]
    steps = [float(np.abs(b - a).mean()) for a, b in zip(frames, frames[1:], strict=False)]
    total = float(np.abs(frames[-1] - frames[0]).mean())
    assert total > 0.3  # the face did change
    assert max(steps) < 0.5 * total  # ... over several frames, no jump


def test_blend_is_smooth_and_settles_without_overshoot():
    blend = ExpressionBlend(fps=25)
    blend.set("happy")
    smiles = [blend.step().smile for _ in range(40)]
    target = face_expression("happy").smile
    assert smiles[0] < 0.1 * target  # eases in
    assert all(b >= a - 1e-9 for a, b in zip(smiles, smiles[1:], strict=False))  # monotone
    assert max(smiles) <= target + 1e-9
    assert smiles[int(0.6 * 25)] > 0.8 * target  # mostly there within 0.6 s


def test_blink_statistics_over_an_hour():
    idle = IdleMotion(seed=4, blink_interval=4.0)
    fps = 25
    closure = np.array([idle.blink(i / fps) for i in range(3600 * fps)])
    shut = closure > 0.05
    starts = np.flatnonzero(shut[1:] & ~shut[:-1])
    ends = np.flatnonzero(~shut[1:] & shut[:-1])
    n = min(len(starts), len(ends))
    durations = (ends[:n] - starts[:n]) / fps
    per_minute = len(starts) / 60
    assert 10 <= per_minute <= 20  # relaxed adult: ~10-20 blinks a minute
    assert 0.08 <= float(np.median(durations)) <= 0.3
    assert durations.max() <= 0.45
    gaps = np.diff(starts) / fps
    assert np.std(gaps) > 0.8  # irregular, not a metronome
    assert closure.max() > 0.95  # blinks close fully


def test_gaze_fixations_and_saccades_over_ten_minutes():
    idle = IdleMotion(seed=5)
    fps = 25
    gaze = np.array([idle.gaze(i / fps) for i in range(600 * fps)])
    assert np.abs(gaze).max() <= 1.0
    speed = np.linalg.norm(np.diff(gaze, axis=0), axis=1)
    moves = np.flatnonzero(speed > 0.02)
    saccades = np.sum(np.diff(moves) > 1) + (1 if len(moves) else 0)
    assert 150 <= saccades <= 900  # fixations of roughly 0.4-4 s
    still = np.mean(speed < 1e-9)
    assert still > 0.85  # eyes mostly hold still between quick jumps
    near = np.mean(np.linalg.norm(gaze, axis=1) < 0.35)
    assert near > 0.5  # mostly looking at the listener


def test_no_head_motion_means_still_eyes(avatar):
    anim = FaceAnimator(avatar, size=256, seed=2, head_motion=0.0)
    assert anim._gaze_amount == 0.0
