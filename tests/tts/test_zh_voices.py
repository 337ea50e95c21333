"""The Mandarin voices: espeak-ng (free default), zh-baker (neural, opt-in) and auto."""

from __future__ import annotations

import re

import numpy as np
import pytest

from anima.lipsync.visemes import viseme_for
from anima.tts import VoiceError, load_voice

TEXT = "欢迎来到江滨区社保服务中心。办理时间是上午9:00到下午5:30。"


def covers(chunk) -> bool:
    """Timings run gap-free from 0 to the end of the chunk's audio."""
    ph = chunk.phonemes
    ends = [a.end for a in ph[:-1]]
    starts = [b.start for b in ph[1:]]
    return (
        abs(ph[0].start) < 1e-6
        and abs(ph[-1].end - chunk.duration) < 0.02
        and all(abs(e - s) < 1e-6 for e, s in zip(ends, starts, strict=True))
    )


@pytest.fixture(scope="module")
def espeak():
    return load_voice("espeak", language="zh")


@pytest.fixture(scope="module")
def baker():
    return load_voice("zh-baker")


def test_espeak_mandarin_speaks_with_timings_the_lips_understand(espeak):
    chunks = list(espeak.synthesize(TEXT))
    assert [c.text for c in chunks] == [
        "欢迎来到江滨区社保服务中心。",
        "办理时间是上午9:00到下午5:30。",
    ]
    for c in chunks:
        assert c.sample_rate == 22050 and np.abs(c.pcm).max() > 3000 and covers(c)
    symbols = {p.phoneme for c in chunks for p in c.phonemes}
    assert {"ʂ", "ɕ", "x"} <= symbols  # espeak's s. / χ mapped to IPA
    assert not any(len(s) > 1 and all(ch in "aeiouɑ" for ch in s) for s in symbols)  # split
    assert viseme_for("u").name == "UW" and viseme_for("ʂ").name in {"SH", "SZ"}


def test_espeak_reads_numbers_in_chinese_not_english(espeak):
    # 13812345678 read as 幺三八… is 11 syllables: about 11 vowels, far more than "one billion…"
    digits = next(espeak.synthesize("13812345678"))
    vowels = [
        p for p in digits.phonemes if p.phoneme in {"a", "i", "u", "y", "ɑ", "ɤ", "o", "e", "ɨ"}
    ]
    assert len(vowels) >= 11


def test_baker_voice_gives_initial_and_final_durations(baker):
    chunk = next(baker.synthesize("社保服务中心。"))
    assert chunk.sample_rate == 24000 and np.abs(chunk.pcm).max() > 3000 and covers(chunk)
    spoken = [p.phoneme for p in chunk.phonemes if p.phoneme.strip() and p.phoneme != "_"]
    # she4 bao3 fu2 wu4 zhong1 xin1 -> ʂ ɤ p ɑ u f u u ʂ ʊ ŋ ɕ i n
    assert spoken == ["ʂ", "ɤ", "p", "ɑ", "u", "f", "u", "u", "ʂ", "ʊ", "ŋ", "ɕ", "i", "n"]
    assert baker.symbols("银行行长") == [
        "sil",
        "^",
        "in2",
        "#0",
        "h",
        "ang2",
        "#0",
        "h",
        "ang2",
        "#0",
        "zh",
        "ang3",
        "sil",
    ]


def test_baker_licence_is_stated(baker):
    assert "NON-COMMERCIAL" in baker.licence


def test_auto_voice_speaks_each_sentence_in_its_language():
    voice = load_voice("auto")
    chunks = list(voice.synthesize("Hello there. 你好！"))
    assert [c.text for c in chunks] == ["Hello there.", "你好！"]
    assert {c.sample_rate for c in chunks} == {voice.sample_rate}
    zh = {p.phoneme for p in chunks[1].phonemes}
    assert "x" in zh or "n" in zh


def test_bad_text_never_crashes(espeak, baker):
    for text in ["😀👍", "Hello 你好 ABC 123！", "。。。", ""]:
        for voice in (espeak, baker):
            for c in voice.synthesize(text):
                assert covers(c)
    long = "社保服务中心欢迎您。" * 1000  # 10,000 characters
    first = next(espeak.synthesize(long))
    assert first.text == "社保服务中心欢迎您。"


def test_unknown_language_voice_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown language"):
        load_voice("espeak", language="klingon")
    with pytest.raises(VoiceError, match="unknown voice backend"):
        load_voice("nope")


def test_no_tensorflow_at_run_time(baker):
    import sys

    list(baker.synthesize("你好。"))
    assert not any(re.match(r"tensorflow|tflite", m) for m in sys.modules)
