"""The page's language: browser language or ?lang=, strings from the language packs."""

from __future__ import annotations

from pathlib import Path

import httpx

from anima.engine import Engine
from anima.server.app import STATIC, create_app


async def strings(url: str, lang: str | None) -> dict:
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.get("/api/strings", params={"lang": lang} if lang is not None else None)
        assert r.status_code == 200
        return r.json()


async def test_page_strings_follow_the_asked_language(tmp_path, make_settings, serve):
    engine = Engine(make_settings(tmp_path))
    async with serve(create_app(engine.settings, engine, host="127.0.0.1")) as url:
        zh = await strings(url, "zh-CN")
        assert zh["lang"] == "zh" and zh["strings"]["ai_label"] == "AI生成"
        assert zh["strings"]["start"] == "开始说话"
        en = await strings(url, "en-GB")
        assert en["lang"] == "en" and en["strings"]["ai_label"] == "AI-generated"
        assert (await strings(url, "tlh"))["lang"] == "en"  # unknown: English, no error
        assert (await strings(url, ""))["lang"] == "en"  # the persona's language


async def test_chinese_persona_makes_chinese_the_page_default(tmp_path, make_settings, serve):
    engine = Engine(make_settings(tmp_path, persona={"language": "zh"}))
    async with serve(create_app(engine.settings, engine, host="127.0.0.1")) as url:
        assert (await strings(url, ""))["strings"]["ai_label"] == "AI生成"


def test_every_labelled_element_has_an_english_and_a_chinese_string():
    import re

    from anima.lang import get_pack

    html = Path(STATIC / "index.html").read_text(encoding="utf-8")
    keys = set(re.findall(r'data-i18n(?:-placeholder|-title)?="([a-z_]+)"', html))
    assert {"ai_label", "start", "stop", "send"} <= keys
    for code in ("en", "zh"):
        assert keys <= set(get_pack(code).page), code
