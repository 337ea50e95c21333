import numpy as np
import pytest

from anima.frames import MouthShape
from anima.render.animator import FaceAnimator
from anima.render.face import mouth_opening, shared_detector
from anima.render.idle import IdleMotion


@pytest.fixture(scope="module")
def animator(avatar):
    return FaceAnimator(avatar, size=512, fps=25, seed=7)


def _opening(img: np.ndarray) -> float:
    faces = shared_detector().detect(img)
    assert faces, "the rendered frame no longer looks like a face"
    return mouth_opening(faces[0])


def test_frame_shape(animator):
    img = animator.render(0, MouthShape())
    assert img.shape == (512, 512, 3) and img.dtype == np.uint8


def test_rest_closes_the_photo_mouth_and_jaw_opens_it(animator, avatar):
    # The sample portrait smiles with parted lips; at rest the avatar's lips meet.
    assert mouth_opening(avatar.landmarks) > 0.1
    closed = _opening(animator.render(0, MouthShape()))
    half = _opening(animator.render(1, MouthShape(jaw_open=0.5, lip_width=0.4)))
    wide = _opening(animator.render(2, MouthShape(jaw_open=1.0, lip_width=0.45)))
    assert closed < 0.06
    assert half > closed + 0.08
    assert wide > half + 0.05


def test_bilabial_closure_keeps_lips_shut(animator):
    pressed = _opening(animator.render(3, MouthShape(jaw_open=0.5, lip_closure=1.0)))
    assert pressed < 0.08


def test_rounding_narrows_and_width_widens_the_mouth(animator):
    def width(shape: MouthShape) -> float:
        lm = shared_detector().detect(animator.render(4, shape))[0]
        return float(np.linalg.norm(lm[291] - lm[61]))

    neutral = width(MouthShape(jaw_open=0.2))
    assert width(MouthShape(jaw_open=0.2, lip_round=1.0)) < 0.93 * neutral
    assert width(MouthShape(jaw_open=0.2, lip_width=1.0)) > 1.04 * neutral


def test_blink_closes_the_eyes(avatar):
    times = np.arange(0, 20, 1 / 25)
    schedule = IdleMotion(seed=3)
    closure = np.array([schedule.blink(t) for t in times])
    anim = FaceAnimator(avatar, seed=3, head_motion=0.0)  # same seed, same blinks
    blinks = np.sum((closure[1:] > 0.5) & (closure[:-1] <= 0.5))
    assert 2 <= blinks <= 12  # natural rate: every 2-8 s
    shut = int(np.argmax(closure))
    assert closure[shut] > 0.9

    def eye_gap(index: int) -> float:
        lm = shared_detector().detect(anim.render(index, MouthShape()))[0]
        return float(lm[145, 1] - lm[159, 1] + lm[374, 1] - lm[386, 1])

    open_index = int(np.flatnonzero(closure == 0)[0])
    assert eye_gap(shut) < 0.6 * eye_gap(open_index)


def test_same_seed_same_frames(avatar):
    a = FaceAnimator(avatar, seed=11)
    b = FaceAnimator(avatar, seed=11)
    shapes = [MouthShape(jaw_open=j) for j in (0, 0.3, 0.8)]
    for i, s in enumerate(shapes):
        np.testing.assert_array_equal(a.render(i * 17, s), b.render(i * 17, s))


def test_idle_frames_move_a_little_but_not_much(avatar):
    anim = FaceAnimator(avatar, seed=5)
    f0 = anim.render(0, MouthShape()).astype(np.float32)
    f1 = anim.render(50, MouthShape()).astype(np.float32)
    diff = np.abs(f1 - f0).mean()
    assert 0.3 < diff < 25  # alive, not frozen, not jumping
