"""Reading the user: a small lexicon-based estimate of the emotion in what they said.

Cheap and offline (no model): weighted cue words per emotion, with negation ("not happy"),
intensifiers ("really", "so"), shouting (CAPITALS, "!!") and repeated questions ("??") taken
into account; optionally the loudness and pace of their speech raise the arousal. The brain
uses :func:`reply_emotion` and :attr:`UserEmotion.calm_and_brief` so a frustrated user gets a
calmer, shorter answer with a concerned face.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

USER_EMOTIONS = ("neutral", "frustrated", "sad", "happy", "surprised", "confused")

# word (or prefix ending in "*") -> weight; multi-word phrases are matched on the raw text.
_LEXICON: dict[str, dict[str, float]] = {
    "frustrated": {
        "annoy*": 1.0,
        "frustrat*": 1.2,
        "angry": 1.2,
        "furious": 1.5,
        "ridiculous": 1.0,
        "useless": 1.2,
        "stupid": 1.0,
        "terrible": 0.9,
        "awful": 0.9,
        "hate": 1.1,
        "worst": 1.0,
        "broken": 0.6,
        "again": 0.4,
        "still": 0.3,
        "wtf": 1.4,
        "damn": 0.9,
        "seriously": 0.7,
        "waste": 0.8,
        "sick of": 1.3,
        "fed up": 1.3,
        "doesn't work": 1.0,
        "does not work": 1.0,
        "not working": 1.0,
        "never works": 1.2,
        "unacceptable": 1.2,
        "waiting": 0.5,
        "complain*": 0.8,
        "refund": 0.6,
        "wrong": 0.6,
    },
    "sad": {
        "sad": 1.2,
        "unhappy": 1.0,
        "depress*": 1.3,
        "lonely": 1.2,
        "miss*": 0.6,
        "lost": 0.6,
        "cry*": 1.1,
        "sorry": 0.4,
        "tired": 0.6,
        "hurt*": 0.8,
        "died": 1.3,
        "passed away": 1.4,
        "upset": 0.9,
        "disappoint*": 1.0,
        "worried": 0.8,
        "afraid": 0.8,
        "scared": 0.9,
        "anxious": 0.9,
        "alone": 0.7,
    },
    "happy": {
        "thank*": 0.8,
        "great": 0.8,
        "love": 0.9,
        "awesome": 1.1,
        "wonderful": 1.1,
        "happy": 1.1,
        "glad": 0.9,
        "excellent": 1.0,
        "perfect": 0.9,
        "nice": 0.6,
        "cool": 0.5,
        "fantastic": 1.1,
        "amazing": 1.0,
        "excited": 1.0,
        "yay": 1.2,
        "brilliant": 1.0,
        "good": 0.4,
        "enjoy*": 0.8,
        "fun": 0.7,
        "haha*": 1.0,
        "lol": 0.8,
    },
    "surprised": {
        "wow": 1.2,
        "really?": 0.9,
        "no way": 1.2,
        "unbelievable": 1.0,
        "what?!": 1.2,
        "surpris*": 1.0,
        "incredible": 0.9,
        "whoa": 1.2,
        "seriously?": 0.8,
        "oh my": 1.0,
    },
    "confused": {
        "confus*": 1.2,
        "don't understand": 1.3,
        "do not understand": 1.3,
        "what do you mean": 1.2,
        "unclear": 0.9,
        "lost": 0.4,
        "huh": 1.0,
        "which one": 0.5,
        "how do i": 0.5,
        "makes no sense": 1.2,
        "doesn't make sense": 1.2,
    },
}
_NEGATIONS = {"not", "no", "never", "n't", "dont", "don't", "isn't", "wasn't", "aren't", "hardly"}
_INTENSIFIERS = {
    "very": 1.5,
    "so": 1.4,
    "really": 1.4,
    "extremely": 1.8,
    "totally": 1.5,
    "too": 1.3,
}
_EMOTICONS = {":)": "happy", ":-)": "happy", ":D": "happy", ":(": "sad", ":-(": "sad", ":'(": "sad"}
_WORD = re.compile(r"[a-z']+[?!]*")


@dataclass(frozen=True)
class UserEmotion:
    """The estimate: ``label`` (one of :data:`USER_EMOTIONS`), its strength 0..1 and the cues."""

    label: str
    intensity: float
    scores: dict[str, float] = field(default_factory=dict)
    cues: tuple[str, ...] = ()

    @property
    def calm_and_brief(self) -> bool:
        """The reply should be calmer and shorter (an upset or frustrated user)."""
        return self.label in ("frustrated", "sad") and self.intensity >= 0.3


def _match(word: str, key: str) -> bool:
    return word.startswith(key[:-1]) if key.endswith("*") else word == key


def estimate_emotion(
    text: str, pcm: np.ndarray | None = None, sample_rate: int = 16_000
) -> UserEmotion:
    """The user's emotion from their words (and, if given, the loudness/pace of their speech)."""
    raw = text.strip()
    low = raw.lower()
    scores = dict.fromkeys(USER_EMOTIONS[1:], 0.0)
    cues: list[str] = []
    tokens = _WORD.findall(low)
    for i, token in enumerate(tokens):
        word = token.rstrip("?!")
        prev = tokens[max(0, i - 3) : i]
        negated = any(p.rstrip("?!") in _NEGATIONS or p.endswith("n't") for p in prev)
        boost = max([_INTENSIFIERS.get(p.rstrip("?!"), 1.0) for p in prev[-1:]] or [1.0])
        for emotion, words in _LEXICON.items():
            for key, weight in words.items():
                if " " in key or not _match(word if not key.endswith("?") else token, key):
                    continue
                if negated and emotion in ("happy", "surprised"):
                    # "not happy", "not great": the opposite, mildly.
                    scores["frustrated"] += 0.5 * weight
                    cues.append(f"not {word}")
                elif not negated:
                    scores[emotion] += weight * boost
                    cues.append(word)
    for emotion, words in _LEXICON.items():
        for key, weight in words.items():
            if " " in key and key in low:
                scores[emotion] += weight
                cues.append(key)
    for face, emotion in _EMOTICONS.items():
        if face in raw:
            scores[emotion] += 1.0
            cues.append(face)
    shouting = [w for w in re.findall(r"\b[A-Z]{3,}\b", raw) if w not in {"OK", "USA", "TV"}]
    if shouting:
        scores["frustrated"] += 0.5 * len(shouting)
        cues.append("CAPITALS")
    if "!!" in raw:
        top = max(("frustrated", "happy", "surprised"), key=lambda e: scores[e])
        scores[top if scores[top] > 0 else "frustrated"] += 0.6
        cues.append("!!")
    if "??" in raw or "?!" in raw:
        scores["confused" if scores["frustrated"] < 0.5 else "frustrated"] += 0.6
        cues.append("??")
    if pcm is not None and len(pcm):
        arousal = speech_arousal(pcm, sample_rate, len(tokens))
        if arousal > 0.5:  # loud and fast: amplify the strongest negative or positive cue
            top = max(scores, key=lambda e: scores[e])
            if scores[top] > 0:
                scores[top] *= 1.0 + arousal
                cues.append("loud/fast speech")
    label = max(scores, key=lambda e: scores[e])
    best = scores[label]
    if best < 0.5:
        return UserEmotion("neutral", 0.0, scores, tuple(cues))
    return UserEmotion(label, float(1.0 - math.exp(-best / 1.5)), scores, tuple(cues))


def speech_arousal(pcm: np.ndarray, sample_rate: int, words: int) -> float:
    """0..1 from the speech's loudness (active-speech RMS) and pace (words per second)."""
    x = np.asarray(pcm, np.float32)
    if x.dtype == np.float32 and np.abs(x).max() > 1.5:
        x = x / 32768.0
    frame = max(1, sample_rate // 50)
    n = len(x) // frame
    if n == 0:
        return 0.0
    rms = np.sqrt((x[: n * frame].reshape(n, frame) ** 2).mean(1))
    active = rms > max(0.01, 0.1 * rms.max())
    if not active.any():
        return 0.0
    level_db = 20 * np.log10(float(np.sqrt((rms[active] ** 2).mean())) + 1e-9)
    pace = words / max(active.sum() * frame / sample_rate, 0.3)
    loud = np.clip((level_db + 20) / 12, 0, 1)  # -20 dBFS conversational .. -8 dBFS shouting
    fast = np.clip((pace - 3.0) / 2.0, 0, 1)  # 3 words/s normal .. 5 words/s rushed
    return float(0.6 * loud + 0.4 * fast)


def reply_emotion(user: UserEmotion) -> str:
    """The face and voice the avatar should answer with (one of ``anima.frames.EMOTIONS``)."""
    if user.label in ("frustrated", "confused"):
        return "serious"  # calm, attentive, concerned; never mirror anger
    if user.label == "sad":
        return "sad" if user.intensity >= 0.5 else "serious"
    if user.label == "happy":
        return "happy"
    if user.label == "surprised":
        return "surprised" if user.intensity < 0.6 else "happy"
    return "neutral"
