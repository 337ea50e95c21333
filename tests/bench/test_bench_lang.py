"""``anima bench tts --lang zh``: first chunk and RTF per Mandarin voice, JSON + plot."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from anima.bench.lang import bench_tts_lang
from anima.config import Settings

pytestmark = pytest.mark.slow


def test_bench_tts_zh_writes_json_and_plot(tmp_path):
    settings = Settings.load(data_dir=tmp_path / "data")
    assert bench_tts_lang(tmp_path, settings, Console(file=None, quiet=True), lang="zh") == 0
    result = json.loads((tmp_path / "tts_zh.json").read_text())
    assert set(result["voices"]) == {"zh-baker", "espeak"}
    for voice in result["voices"].values():
        assert voice["sentences"] == 10
        assert voice["rtf"]["p50"] > 0  # speed targets live in the bench, not in tests
        assert voice["first_chunk_s"]["p50"] > 0
    assert (tmp_path / "tts_zh.png").stat().st_size > 1000


def test_bench_on_an_unknown_language_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="unknown language"):
        bench_tts_lang(tmp_path, Settings.load(), Console(quiet=True), lang="xx")
