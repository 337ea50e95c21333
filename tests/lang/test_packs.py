"""Language packs: lookup by code or name, settings they fill, clear errors."""

from __future__ import annotations

import pytest

from anima.asr import listener_config
from anima.config import Settings
from anima.lang import LanguageError, get_pack, pack_for_text, page_strings
from anima.lang import packs as all_packs


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("中文", "zh"),
        ("Mandarin", "zh"),
        ("English", "en"),
        ("en_GB", "en"),
        ("auto", "auto"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_pack_by_code_or_name(name, code):
    assert get_pack(name).code == code


def test_unknown_language_is_a_clear_error():
    with pytest.raises(LanguageError, match=r"unknown language 'klingon'; known: auto, en, zh"):
        get_pack("klingon")
    with pytest.raises(ValueError, match="unknown language"):
        Settings.load(persona={"language": "xx-YY"})


def test_zh_persona_makes_the_chain_mandarin_but_keeps_what_the_operator_set():
    s = Settings.load(persona={"language": "zh"})
    assert (s.lang.code, s.listen.model, s.listen.language) == ("zh", "base", "zh")
    assert s.voice.backend == "espeak" and s.live.label_text == "AI生成"
    assert "简体" in s.listen.initial_prompt and s.persona.dont_know.startswith("抱歉")
    assert s.persona.language == "Simplified Chinese (Mandarin)"  # what the prompt says
    own = Settings.load(
        persona={"language": "zh", "dont_know": "不知道。"}, voice={"backend": "zh-baker"}
    )
    assert own.persona.dont_know == "不知道。" and own.voice.backend == "zh-baker"
    assert own.overridden({"render": {"fps": 30}}).lang.code == "zh"


def test_english_default_is_untouched():
    s = Settings.load()
    assert (s.lang.code, s.listen.model, s.voice.backend) == ("en", "tiny.en", "piper")


def test_persona_file_language_picks_the_pack(tmp_path):
    f = tmp_path / "p.yaml"
    f.write_text("name: 小安\nlanguage: 中文\n", encoding="utf-8")
    s = Settings.load(persona={"file": f})
    assert s.lang.code == "zh" and s.listen.language == "zh"
    from anima.dialogue.persona import Persona

    persona = Persona.from_settings(s.persona)
    assert persona.language == "Simplified Chinese (Mandarin)" and "小安" in persona.greeting


def test_auto_listens_for_both_and_endpoints_with_both_word_lists():
    s = Settings.load(persona={"language": "auto"})
    assert s.listen.language is None and s.listen.languages == ["zh", "en"]
    policy = listener_config(s.listen, "auto").segmenter.policy
    assert policy.classify("我想问一下然后") == "incomplete"
    assert policy.classify("I'd like a coffee and") == "incomplete"


def test_text_goes_to_the_pack_of_its_script():
    zh, en = get_pack("zh"), get_pack("en")
    assert pack_for_text("你好", [zh, en]) is zh
    assert pack_for_text("Hello 😀", [zh, en]) is en


def test_page_strings_fall_back_to_english():
    zh = page_strings("zh-CN")
    assert zh["ai_label"] == "AI生成" and set(page_strings("en")) <= set(zh)
    assert page_strings("klingon") == page_strings("en")


def test_every_pack_is_complete():
    for pack in all_packs().values():
        for member in pack.members:
            assert member in all_packs()
        assert pack.prompt_name and pack.aliases


def test_cli_lang_unknown_code_is_one_line(capsys):
    from anima.cli import main

    assert main(["--lang", "klingon", "chat", "--once", "hi", "--backend", "kb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "anima: error: bad settings: unknown language 'klingon'; known: auto, en, zh"


def test_cli_chat_in_mandarin_answers_from_chinese_knowledge(capsys, tmp_path):
    from pathlib import Path

    from anima.cli import main

    kb = Path(__file__).parent / "knowledge_zh"
    args = ["--lang", "zh", "--data-dir", str(tmp_path), "chat", "--once", "社保卡丢了怎么办？"]
    assert main([*args, "--backend", "kb", "--kb", str(kb)]) == 0
    assert "二楼三号窗口" in capsys.readouterr().out
