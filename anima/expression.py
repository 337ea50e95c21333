"""Emotion presets shared by the voice and the face, and their smooth blending over time.

The brain marks each :class:`~anima.frames.TextChunk` with one of
:data:`~anima.frames.EMOTIONS`. The voice reads :func:`voice_style` (Piper's length and noise
scales, the pause after a sentence) and the face reads :func:`face_expression` (smile, brows,
eye openness, head tilt and nods). Both stages import this small module, never each other.

Values are deliberately modest: an avatar that grins or frowns at full strength on every
sentence looks like a caricature. The face never jumps between presets: :class:`ExpressionBlend`
eases toward the target over about a quarter of a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from anima.frames import EMOTIONS


@dataclass(frozen=True, slots=True)
class VoiceStyle:
    """How an emotion changes the voice, relative to the configured voice.

    ``length``: factor on Piper's length_scale (above 1 is slower); ``noise`` and ``noise_w``:
    Piper's noise_scale (variation of the voice) and noise_w_scale (variation of phoneme
    lengths, i.e. rhythm); ``pause``: factor on the silence after each sentence.
    """

    length: float = 1.0
    noise: float = 0.667
    noise_w: float = 0.8
    pause: float = 1.0


@dataclass(frozen=True, slots=True)
class FaceExpression:
    """Face offsets for an emotion; 0 everywhere is the photo's own resting face.

    ``smile``: lip corners up and out (negative: down, a sad mouth), in -1..1;
    ``brow_raise``: both brows up (negative: lowered, a frown); ``brow_inner``: inner ends of the
    brows up and together (worry, sadness); ``eye_open``: wider eyes (negative: narrower, as in
    a smile or tiredness); ``tilt``: head roll in degrees; ``head_down``: head lowered (pixels
    per 100 of frame size); ``nod``: how much the head nods while talking (factor on the
    default nod).
    """

    smile: float = 0.0
    brow_raise: float = 0.0
    brow_inner: float = 0.0
    eye_open: float = 0.0
    tilt: float = 0.0
    head_down: float = 0.0
    nod: float = 1.0

    def as_tuple(self) -> tuple[float, ...]:
        """The values in declaration order."""
        return tuple(getattr(self, f.name) for f in fields(self))


_VOICE = {
    "neutral": VoiceStyle(),
    # Brighter and a little faster, livelier rhythm, shorter pauses.
    "happy": VoiceStyle(length=0.88, noise=0.75, noise_w=0.8, pause=0.8),
    # Slower and flatter, with longer pauses.
    "sad": VoiceStyle(length=1.18, noise=0.5, noise_w=0.55, pause=1.6),
    # Quick and lively.
    "surprised": VoiceStyle(length=0.88, noise=0.8, noise_w=1.0, pause=0.9),
    # Measured and even: the calm voice for a frustrated user.
    "serious": VoiceStyle(length=1.07, noise=0.5, noise_w=0.6, pause=1.25),
}

_FACE = {
    "neutral": FaceExpression(),
    "happy": FaceExpression(smile=0.8, brow_raise=0.15, eye_open=-0.25, tilt=2.0, nod=1.3),
    "sad": FaceExpression(
        smile=-0.5, brow_inner=0.7, eye_open=-0.35, tilt=-2.0, head_down=1.0, nod=0.5
    ),
    "surprised": FaceExpression(brow_raise=0.9, eye_open=0.45, nod=0.8, head_down=-0.5),
    # Attentive, slightly concerned: brows drawn in a little, no smile, small nods.
    "serious": FaceExpression(smile=-0.25, brow_raise=-0.8, brow_inner=0.25, nod=0.8),
}


def check_emotion(emotion: str) -> str:
    """``emotion`` if it is one of :data:`EMOTIONS`, else a ValueError naming the choices."""
    if emotion not in EMOTIONS:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {', '.join(EMOTIONS)}")
    return emotion


def voice_style(emotion: str) -> VoiceStyle:
    """The voice preset of ``emotion`` (unknown names fall back to neutral)."""
    return _VOICE.get(emotion, _VOICE["neutral"])


def face_expression(emotion: str) -> FaceExpression:
    """The face preset of ``emotion`` (unknown names fall back to neutral)."""
    return _FACE.get(emotion, _FACE["neutral"])


class ExpressionBlend:
    """The face's current expression, easing toward the latest target frame by frame.

    A critically damped approach with time constant ``tau`` seconds: about 90 % of the way in
    2.3 tau, never overshooting. Driven by frame steps, not a wall clock.
    """

    def __init__(self, fps: int, tau: float = 0.12) -> None:
        self._alpha = 1.0 - math.exp(-1.0 / (fps * tau))
        self._target = FaceExpression()
        self._now = list(FaceExpression().as_tuple())
        self._vel = list(self._now)
        self.emotion = "neutral"

    def set(self, emotion: str) -> None:
        """Aim at the preset of ``emotion`` from now on."""
        self.emotion = emotion
        self._target = face_expression(emotion)

    def step(self) -> FaceExpression:
        """Advance one video frame and return the expression to draw."""
        a = self._alpha
        for i, goal in enumerate(self._target.as_tuple()):
            # Two first-order filters in series: a smooth start and a smooth landing.
            self._vel[i] += (goal - self._vel[i]) * a
            self._now[i] += (self._vel[i] - self._now[i]) * a
        return FaceExpression(*self._now)
