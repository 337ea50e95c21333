"""Objective checks of the speaking face on the sample portrait (skimage's astronaut)."""

import cv2
import numpy as np
import pytest

from anima.frames import MouthShape
from anima.render.animator import FaceAnimator, _effective
from anima.render.idle import IdleMotion
from anima.render.prosody import Prosody

WIDE = MouthShape(jaw_open=1.0, lip_width=0.45)
REST = MouthShape(jaw_open=0.0, lip_width=0.3, lip_closure=0.2)


@pytest.fixture(scope="module")
def still(avatar):
    return FaceAnimator(avatar, size=512, fps=25, seed=3, head_motion=0.0)


def _landmarks(anim: FaceAnimator, shape: MouthShape) -> np.ndarray:
    """Landmarks moved by the rig, in output-frame pixels (no head motion)."""
    params = np.append(_effective(shape), np.float32(0.0))
    shift = (anim.avatar.work_size - anim.size) / 2
    return anim.rig.landmarks_for(anim.avatar.landmarks, params) - shift


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def test_teeth_are_brighter_than_the_cavity_and_not_a_uniform_band(still):
    img = still.render(0, WIDE)
    lm = _landmarks(still, WIDE)
    s = still.rig.mouth_width
    y = _luma(img)
    top, bot = lm[13], lm[14]
    x = np.arange(int(top[0] - 0.25 * s), int(top[0] + 0.25 * s))
    # The band just under the upper lip edge: teeth.
    band = y[int(top[1] + 0.03 * s) : int(top[1] + 0.07 * s), x]
    # The middle of the opening, between the two rows of teeth: the cavity.
    mid = (top[1] + bot[1]) / 2
    cavity = y[int(mid - 0.02 * s) : int(mid + 0.02 * s), x]
    assert band.mean() > cavity.mean() + 60
    # Separate teeth: the brightness along the band dips at the gaps between teeth.
    profile = band.mean(0)
    assert profile.std() > 6.0
    assert profile.max() - profile.min() > 25.0


def test_lips_keep_their_thickness_when_the_jaw_opens(still):
    rest, wide = _landmarks(still, REST), _landmarks(still, WIDE)
    for outer, inner in ((0, 13), (17, 14)):  # upper lip, lower lip at the midline
        t_rest = abs(rest[inner, 1] - rest[outer, 1])
        t_wide = abs(wide[inner, 1] - wide[outer, 1])
        assert t_wide >= 0.7 * t_rest, (outer, t_rest, t_wide)


def test_the_jaw_rotates_instead_of_stretching(still):
    rest, wide = _landmarks(still, REST), _landmarks(still, WIDE)
    s = still.rig.mouth_width
    chin_drop = (wide[152, 1] - wide[2, 1]) - (rest[152, 1] - rest[2, 1])
    lip_drop = wide[17, 1] - rest[17, 1]
    # Chin-to-nose grows, within what a jaw turning ~12 degrees gives (not a rubber stretch):
    assert 0.15 * s < chin_drop < 0.45 * s
    # Rotation: the chin, further below the hinge, drops a little less than the lower lip, so
    # the soft tissue between them is compressed, never stretched.
    assert chin_drop < lip_drop
    # The jaw angles, near the hinge axis, hardly move.
    for i in (172, 397):
        assert wide[i, 1] - rest[i, 1] < 0.4 * chin_drop


def test_nothing_outside_the_face_moves_beyond_the_head_motion(avatar):
    # Same seed: the same head motion; only the mouth differs. Outside the face (its landmark
    # hull, jaw open and shut, grown by half a mouth width, then moved by the frame's head pose)
    # the two frames must be identical.
    a = FaceAnimator(avatar, size=512, fps=25, seed=11, head_motion=1.0)
    b = FaceAnimator(avatar, size=512, fps=25, seed=11, head_motion=1.0)
    s = a.rig.mouth_width
    shift = (a.avatar.work_size - a.size) / 2
    for i in range(0, 50, 7):
        talk, rest = a.render(i, WIDE), b.render(i, REST)
        pts = np.vstack([_landmarks(a, WIDE), _landmarks(a, REST)]) + shift
        pose = a.idle.pose(i / a.fps, a.size)
        m = cv2.getRotationMatrix2D(tuple(map(float, a._face_centre)), pose.roll, pose.scale)
        m[:, 2] += (pose.dx - shift, pose.dy - shift)
        pts = pts @ m[:, :2].T + m[:, 2]
        mask = np.zeros((512, 512), np.uint8)
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(pts).astype(np.int32)), 1)
        mask = cv2.dilate(mask, np.ones((int(1.0 * s) + 1,) * 2, np.uint8))
        diff = np.abs(talk.astype(int) - rest.astype(int)).max(2)
        assert diff[mask == 0].max() <= 2
        assert diff[mask == 1].max() > 50  # the mouth did change


def test_blinks_wait_for_the_word_to_end():
    idle = IdleMotion(seed=5, blink_interval=2.0)
    fps = 25
    first = None
    for k in range(200):
        t = k / fps
        # Mid-word for the first 1.2 s of every 2 s.
        if (t % 2.0) < 1.2:
            idle.defer_blink(t, 1 / fps)
        if idle.blink(t) > 0 and first is None:
            first = t
    assert first is not None
    assert (first % 2.0) >= 1.2 or idle._deferred == 0.0  # deferred, or let through at the limit


def test_stress_raises_a_beat_and_sentence_end_is_seen():
    p = Prosody(25)
    beats, ends = [], []
    jaw = [0.1] * 25 + [0.9] * 5 + [0.15] * 10 + [0.0] * 20
    for k, j in enumerate(jaw):
        beats.append(p.step(j, speaking=k < 40))
        ends.append(p.sentence_ended)
    assert max(beats[25:35]) > 0.8  # the loud syllable
    assert max(beats[:25]) < 0.1  # even speech: no beat
    assert sum(ends) == 1 and ends.index(True) >= 40


def test_teeth_colour_comes_from_the_photo_when_it_shows_teeth(avatar, still):
    from anima.render import face as F
    from anima.render.mouth_interior import DEFAULT_TEETH, teeth_colour

    lm = avatar.landmarks
    upper = lm[list(F.LIPS_UPPER_INNER)]
    lower = lm[[F.INNER_CORNERS[0], *F.LIPS_LOWER_INNER, F.INNER_CORNERS[1]]]
    s = still.rig.mouth_width
    found = teeth_colour(avatar.image, upper, lower, s)
    # The astronaut smiles with her teeth showing: a light, warm, low-saturation colour of hers.
    assert not np.allclose(found, DEFAULT_TEETH)
    assert found.min() > 150 and found.max() - found.min() < 60
    # Closed lips show no teeth: the default.
    shut = lower.copy()
    shut[:, 1] = np.interp(shut[:, 0], upper[:, 0], upper[:, 1])
    assert np.allclose(teeth_colour(avatar.image, upper, shut, s), DEFAULT_TEETH)
