"""Pitch, questions and the tongue on the speaking face (skimage's astronaut)."""

from dataclasses import replace

import cv2
import numpy as np
import pytest

from anima.frames import MediaClock, MouthShape, PhonemeTiming, SpeechChunk
from anima.lipsync import PhonemeLipSync
from anima.lipsync.pitch import f0_track, pitch_cues
from anima.render import face as F
from anima.render.animator import FaceAnimator, _effective
from anima.render.expression import LEFT_BROW, RIGHT_BROW, warp_upper

SR, FPS = 22050, 25


def _voice(f0: np.ndarray) -> np.ndarray:
    """A buzzy voiced sound (harmonics 1..5) following ``f0`` per sample, int16."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (x / np.abs(x).max() * 12000).astype(np.int16)


@pytest.mark.parametrize("hz", [95.0, 150.0, 230.0, 330.0])
def test_f0_tracker_finds_a_tone_within_five_percent(hz):
    pcm = _voice(np.full(SR, hz))
    times = np.arange(3, 22) / FPS
    f0 = f0_track(pcm, SR, times)
    assert np.all(np.abs(f0 / hz - 1) < 0.05), f0


def test_noise_and_silence_are_unvoiced():
    rng = np.random.default_rng(0)
    noise = (rng.standard_normal(SR) * 3000).astype(np.int16)
    times = np.arange(3, 22) / FPS
    assert (f0_track(noise, SR, times) == 0).mean() > 0.8
    assert np.all(f0_track(np.zeros(SR, np.int16), SR, times) == 0)


def _contour(rising: bool) -> np.ndarray:
    """1.6 s of voice: 140 Hz, then falling (statement) or rising (question) over 0.5 s."""
    n, end = int(1.6 * SR), int(0.5 * SR)
    f0 = np.full(n, 140.0)
    f0[-end:] = np.linspace(140, 230 if rising else 105, end)
    return f0


def test_a_rising_end_or_a_question_mark_is_a_question():
    times = np.arange(40) / FPS
    _, q_rise = pitch_cues(_voice(_contour(True)), SR, times)
    _, q_fall = pitch_cues(_voice(_contour(False)), SR, times)
    _, q_mark = pitch_cues(_voice(np.full(int(1.6 * SR), 140.0)), SR, times, "Is it open?")
    assert q_rise[-1] > 0.9 and q_mark[-1] > 0.9
    assert q_rise[:15].max() == 0
    assert q_fall.max() == 0


def _brow_shift(avatar, rising: bool) -> float:
    """Vertical shift (px, + down) of the brows at the phrase's end, against the photo."""
    anim = FaceAnimator(avatar, size=512, fps=FPS, seed=1, head_motion=0.0, blink_interval=1e6)
    times = np.arange(40) / FPS
    pitch, question = pitch_cues(_voice(_contour(rising)), SR, times)
    for i in range(40):
        jaw = 0.3 + 0.15 * np.sin(i * 1.3)
        anim.render(i, MouthShape(jaw, 0.45, pitch=pitch[i], question=question[i]), True)
    lm = avatar.landmarks[list(RIGHT_BROW + LEFT_BROW)]
    x0, y0 = (lm.min(0) - 4).astype(int)
    x1, y1 = (lm.max(0) + 4).astype(int)
    photo = anim.avatar.image.astype(np.float32).mean(2)
    now = anim._canvas.astype(np.float32).mean(2)  # before the head's pose
    # The shift that best lines the brows of the frame up with the photo's (block matching).
    err = [np.abs(photo[y0:y1, x0:x1] - now[y0 + d : y1 + d, x0:x1]).mean() for d in range(-8, 9)]
    return float(np.argmin(err) - 8)


def test_a_question_raises_the_brows_at_its_end(avatar):
    asked, told = _brow_shift(avatar, True), _brow_shift(avatar, False)
    assert asked <= told - 3, (asked, told)  # up by 3 px or more (about 2 % of the eyes' span)


def _tongue(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., k].astype(np.int32) for k in range(3))
    return (r > 100) & (r - g > 50) & (r - b > 40)


def _shape(phoneme: str) -> MouthShape:
    """The lip-sync's shape in the middle of ``phoneme`` in 'a<phoneme>a'."""
    timings = [PhonemeTiming("a", 0.0, 0.3), PhonemeTiming(phoneme, 0.3, 0.5)]
    timings.append(PhonemeTiming("a", 0.5, 0.8))
    pcm = np.full(int(0.8 * SR), 3000, np.int16)
    chunk = SpeechChunk(turn=0, pcm=pcm, sample_rate=SR, text="", phonemes=tuple(timings))
    shapes = PhonemeLipSync().shapes(chunk, 0, MediaClock(SR, FPS))
    return shapes[10][1]  # 0.4 s: the middle of the consonant


def _mouth(avatar, shape: MouthShape) -> tuple[np.ndarray, np.ndarray]:
    """Tongue and teeth pixel masks inside the mouth opening of a frame with ``shape``."""
    anim = FaceAnimator(avatar, size=512, fps=FPS, seed=1, head_motion=0.0, blink_interval=1e6)
    anim.render(0, shape, True)
    img = anim._canvas
    params = np.append(_effective(shape), np.float32(0.0))
    lm = anim.rig.landmarks_for(avatar.landmarks, params)
    poly = np.vstack([lm[list(F.LIPS_UPPER_INNER)], lm[list(F.LIPS_LOWER_INNER)][::-1]])
    inside = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(poly).astype(np.int32)], 1)
    inside = inside.astype(bool)
    teeth = inside & (img.astype(np.float32).mean(2) > 150) & ~_tongue(img)
    # A tongue is a blob: opening drops the thin, equally red wet rim of closed lips.
    tongue = (_tongue(img) & inside).astype(np.uint8)
    tongue = cv2.morphologyEx(tongue, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    return tongue, teeth


def test_th_shows_the_tongue_between_the_teeth(avatar):
    shape = _shape("θ")
    assert shape.tongue_out > 0.9
    tongue, _ = _mouth(avatar, shape)
    _, teeth_alone = _mouth(avatar, replace(shape, tongue_out=0.0))
    # The tip lies over the biting edge: pixels that are teeth without it are tongue with it.
    assert (tongue & teeth_alone).sum() > 50


def test_l_shows_the_tongue_tip_at_the_upper_teeth(avatar):
    shape = _shape("l")
    assert shape.tongue_up > 0.9 and shape.tongue_out == 0
    tongue, teeth = _mouth(avatar, shape)
    assert tongue.sum() > 30 and teeth.sum() > 10
    # Touching the upper teeth: tongue within 2 px under a tooth.
    below = np.zeros_like(teeth)
    below[2:] |= teeth[:-2]
    below[1:] |= teeth[:-1]
    assert (below & tongue).sum() > 5


def test_m_shows_no_tongue(avatar):
    shape = _shape("m")
    assert shape.tongue_up == 0 and shape.tongue_out == 0
    tongue, _ = _mouth(avatar, shape)
    assert tongue.sum() == 0


def test_the_cheek_field_lifts_the_lower_lids(avatar):
    anim = FaceAnimator(avatar, size=512, fps=FPS, seed=1, head_motion=0.0)
    photo = anim.avatar.image.astype(np.uint8)
    canvas = photo.copy()
    warp_upper(anim.upper, np.array([0, 0, 0, 0, 0, 1.0]), canvas)
    lid = avatar.landmarks[list(F.RIGHT_EYE_LOWER)]
    x0, x1 = int(lid[:, 0].min()), int(lid[:, 0].max())
    y0, y1 = int(lid[:, 1].min()) - 3, int(lid[:, 1].max()) + 4
    a, b = photo.astype(np.float32).mean(2), canvas.astype(np.float32).mean(2)
    err = [np.abs(a[y0:y1, x0:x1] - b[y0 + d : y1 + d, x0:x1]).mean() for d in range(-5, 6)]
    assert int(np.argmin(err)) - 5 <= -1  # the lid line moved up by a pixel or more
