"""Listening to Mandarin: Whisper base on fixed renditions, always simplified output."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from anima.asr import load_recognizer
from anima.asr.wer import cer
from anima.config import Settings
from anima.lang.zh_text import to_simplified

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures"


def audio(name: str) -> np.ndarray:
    with wave.open(str(FIXTURES / f"{name}.wav")) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768


@pytest.mark.parametrize("prompt", ["以下是普通话的句子，使用简体中文。", ""])
def test_mandarin_is_heard_in_simplified_characters(tmp_path, prompt):
    # Without the simplified prompt Whisper base writes traditional characters here (stock
    # faster-whisper: "設保卡丟了怎麼辦?", "你們幾點上班");
    # the pack's OpenCC filter makes the output simplified either way.
    s = Settings.load(
        data_dir=tmp_path.parent / "models-shared",
        persona={"language": "zh"},
        listen={"initial_prompt": prompt},
    )
    rec = load_recognizer(s.listen, s.data_dir)
    got = rec.transcribe(audio("zh_card"))
    assert got.language == "zh" and got.text == to_simplified(got.text)
    assert cer("社保卡丢了怎么办？", got.text) <= 0.2, got.text


def test_auto_identifies_english_and_mandarin(tmp_path):
    s = Settings.load(data_dir=tmp_path.parent / "models-shared", persona={"language": "auto"})
    rec = load_recognizer(s.listen, s.data_dir)
    assert rec.transcribe(audio("zh_card")).language == "zh"
    en = rec.transcribe(audio("en_park"))
    assert en.language == "en" and "park" in en.text.lower()
