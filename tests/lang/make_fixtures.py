"""Render the Mandarin test questions once into WAV fixtures (run again only to change them).

    PYTHONPATH=. python tests/lang/make_fixtures.py

The zh-baker voice renders the Mandarin ones, Piper the English one; the files are committed so
that what the recogniser hears never changes between runs. 16 kHz mono int16.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from anima.asr.audio import resample
from anima.tts import load_voice

QUESTIONS = {  # name: (voice backend, text)
    "zh_hours": ("zh-baker", "你们几点上班？"),
    "zh_card": ("zh-baker", "社保卡丢了怎么办？"),
    "en_park": ("piper", "Where can I park my car?"),
}
HERE = Path(__file__).parent / "fixtures"


def main() -> None:
    """Write one WAV per question."""
    for name, (backend, text) in QUESTIONS.items():
        voice = load_voice(backend)
        pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
        audio = (resample(pcm, voice.sample_rate) * 32767).astype("<i2")
        with wave.open(str(HERE / f"{name}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(audio.tobytes())


if __name__ == "__main__":
    main()
