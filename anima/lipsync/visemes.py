"""Phonemes (IPA as espeak-ng/Piper writes them) -> visemes: mouth targets and dominance.

A viseme is the mouth's target for a class of sounds, as (jaw_open, lip_width, lip_round,
lip_closure), plus how strongly each of the four parameters insists on its target
("dominance", after Cohen & Massaro's coarticulation model): a /p/ must close the lips
whatever its neighbours do, while an /h/ or /t/ lets the vowel around it shape the mouth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Viseme:
    """A mouth target and the dominance of each of its four parameters."""

    name: str
    target: tuple[float, float, float, float]
    dominance: tuple[float, float, float, float]


# name: (jaw, width, round, closure), (dominance for each)
_VISEMES = {
    "rest": Viseme("rest", (0.0, 0.3, 0.0, 0.2), (4.0, 1.5, 1.5, 1.5)),
    "gap": Viseme("gap", (0.15, 0.35, 0.0, 0.0), (0.15, 0.15, 0.15, 0.15)),
    "PBM": Viseme("PBM", (0.02, 0.35, 0.0, 1.0), (4.0, 1.0, 1.0, 8.0)),
    "FV": Viseme("FV", (0.1, 0.45, 0.0, 0.6), (2.0, 1.0, 1.0, 4.0)),
    "TH": Viseme("TH", (0.22, 0.45, 0.0, 0.0), (1.0, 0.6, 0.6, 1.0)),
    "TDN": Viseme("TDN", (0.2, 0.45, 0.05, 0.0), (0.5, 0.4, 0.4, 0.6)),
    "SZ": Viseme("SZ", (0.1, 0.55, 0.0, 0.0), (1.5, 0.8, 0.6, 0.8)),
    "SH": Viseme("SH", (0.15, 0.2, 0.65, 0.0), (1.0, 1.5, 2.0, 0.6)),
    "KG": Viseme("KG", (0.3, 0.4, 0.05, 0.0), (0.4, 0.3, 0.3, 0.5)),
    "H": Viseme("H", (0.35, 0.4, 0.0, 0.0), (0.1, 0.1, 0.1, 0.2)),
    "R": Viseme("R", (0.2, 0.25, 0.55, 0.0), (0.8, 1.0, 1.5, 0.6)),
    "W": Viseme("W", (0.12, 0.1, 0.95, 0.0), (1.5, 2.0, 3.0, 0.8)),
    "Y": Viseme("Y", (0.15, 0.65, 0.0, 0.0), (0.8, 1.0, 0.8, 0.6)),
    "L": Viseme("L", (0.3, 0.45, 0.0, 0.0), (0.5, 0.4, 0.4, 0.6)),
    "AA": Viseme("AA", (0.95, 0.45, 0.05, 0.0), (2.0, 1.0, 1.0, 1.0)),
    "AE": Viseme("AE", (0.75, 0.6, 0.0, 0.0), (2.0, 1.0, 1.0, 1.0)),
    "EH": Viseme("EH", (0.55, 0.6, 0.0, 0.0), (1.6, 1.0, 1.0, 1.0)),
    "IY": Viseme("IY", (0.25, 0.85, 0.0, 0.0), (1.4, 1.5, 1.0, 1.0)),
    "AH": Viseme("AH", (0.45, 0.45, 0.05, 0.0), (1.0, 0.6, 0.6, 1.0)),
    "ER": Viseme("ER", (0.35, 0.3, 0.45, 0.0), (1.0, 0.8, 1.2, 1.0)),
    "AO": Viseme("AO", (0.65, 0.3, 0.7, 0.0), (1.8, 1.2, 1.6, 1.0)),
    "UW": Viseme("UW", (0.25, 0.1, 0.95, 0.0), (1.4, 1.8, 2.5, 1.0)),
}

_PHONEME_CLASSES = {
    "PBM": "pbmɱ",
    "FV": "fv",
    "TH": "θð",
    "TDN": "tdnɾɗʈɖɳ",
    "SZ": "szɕʑ",
    "SH": "ʃʒʂʐ",  # Mandarin retroflex zh ch sh r too
    "KG": "kgɡŋxɣqʔχ",
    "H": "hɦ",
    "R": "ɹrʁɻ",
    "W": "wʍ",
    "Y": "jç",
    "L": "lɫʎ",
    "AA": "aɑɐɒ",
    "AE": "æ",
    "EH": "eɛ",
    "IY": "iɪɨ",
    "AH": "əʌɜᵻɤ",  # Mandarin e (ɤ): mid, unrounded
    "ER": "ɚɝ",
    "AO": "oɔøœ",
    "UW": "uʊɯy",  # y is rounded (Mandarin ü, German ü): lips as for u
}
_BY_CHAR = {ch: _VISEMES[name] for name, chars in _PHONEME_CLASSES.items() for ch in chars}

# Marks that do not articulate: stress belongs to the next phoneme, length to the previous.
STRESS_MARKS = frozenset("ˈˌ")
LENGTH_MARKS = frozenset("ːˑ")
# Pauses: sentence start/end markers, punctuation and the inter-sentence silence.
PAUSES = frozenset("^$_.,;:!?…—-。，！？；：")


def viseme_for(phoneme: str) -> Viseme:
    """The viseme of one phoneme symbol; unknown letters get a neutral open-ish shape."""
    if not phoneme or phoneme in PAUSES:
        return _VISEMES["rest"]
    if phoneme.isspace():
        return _VISEMES["gap"]
    return _BY_CHAR.get(phoneme[0], _VISEMES["AH"])


def is_pause(phoneme: str) -> bool:
    """True for symbols during which the speaker is silent."""
    return not phoneme or phoneme in PAUSES


# The tongue tip where the lips let it show: (at the upper teeth, between the teeth). Mandarin
# l and n are the same symbols, so the data covers both languages.
_TONGUE_TIP = {"L": (1.0, 0.0), "TDN": (0.8, 0.0), "TH": (0.0, 1.0)}


def tongue_targets(phonemes: list[str]) -> np.ndarray:
    """(n, 2) tongue tip targets per phoneme: (up at the upper teeth, out between the teeth)."""
    rows = [_TONGUE_TIP.get(viseme_for(p).name, (0.0, 0.0)) for p in phonemes]
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def viseme_arrays(phonemes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Targets and dominances, each (n, 4), for a list of phoneme symbols."""
    visemes = [viseme_for(p) for p in phonemes]
    return (
        np.array([v.target for v in visemes], dtype=np.float64).reshape(-1, 4),
        np.array([v.dominance for v in visemes], dtype=np.float64).reshape(-1, 4),
    )
