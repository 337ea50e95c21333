"""Endpointing in Mandarin: sentence ends and final particles end a turn, 然后/就是/那个 do not."""

from __future__ import annotations

import pytest

from anima.asr import listener_config
from anima.asr.endpoint import EndpointPolicy
from anima.asr.whisper import Recognition  # noqa: F401  (the module imports the lang packs)
from anima.config import ListenSettings
from anima.lang import clean_transcript


@pytest.fixture(scope="module")
def zh() -> EndpointPolicy:
    return listener_config(ListenSettings(), "zh").segmenter.policy


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("社保卡怎么办理？", "complete"),
        ("你们周六上班吗", "complete"),  # a final particle, no punctuation from Whisper
        ("好的，谢谢", "complete"),
        ("我想问一下然后", "incomplete"),
        ("就是那个", "incomplete"),
        ("我想办社保卡，还有。", "incomplete"),  # Whisper's period does not end it
        ("然后呢？", "complete"),
        ("我想办社保卡…", "incomplete"),
        ("社保卡", "unknown"),
    ],
)
def test_mandarin_endpoint_words(zh, text, kind):
    assert zh.classify(text) == kind


def test_silence_windows_follow_the_words(zh):
    assert zh.silence_needed("你们几点上班吗") == zh.complete
    assert zh.silence_needed("我想问一下然后") == zh.incomplete


def test_english_policy_is_unchanged():
    en = listener_config(ListenSettings(), "en").segmenter.policy
    assert en.classify("I'd like a coffee and") == "incomplete"
    assert en.classify("What time is it?") == "complete"
    assert en.classify("我想问一下然后") == "unknown"


def test_traditional_leaning_decode_comes_out_simplified():
    assert clean_transcript("請問社保卡怎麼補辦？", "zh") == "请问社保卡怎么补办？"
    assert clean_transcript("請問", "en") == "請問"  # only the Chinese pack converts
