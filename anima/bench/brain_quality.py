"""How right the mind is: a question set asked of the whole agent, graded without a judge model.

A question file (``examples/questions/*.yaml``) names its knowledge folder (with the persona in
``persona.yaml`` there) and lists questions. Each is graded on what would be spoken:

- ``facts``: every listed word is in the answer (case-insensitive) -> right;
- ``expect: dont_know``: the persona's "don't know" line and no fact from the knowledge that
  the question did not ask for -> right (an honoured fallback);
- ``expect: smalltalk``: a short reply that is not the "don't know" line -> right.

A reply that holds an internal token (a passage id, a template token, a bracket) is a leak,
and wrong whatever else it says.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anima.config import KnowledgeSettings
from anima.dialogue.agent import Agent
from anima.dialogue.brain import Brain, Phrase
from anima.dialogue.knowledge import KnowledgeBase, load_yaml
from anima.dialogue.persona import Persona

QUESTIONS_DIR = Path(__file__).resolve().parents[2] / "examples" / "questions"
_LEAK = re.compile(r"\[|\]|<\||\|>|</?\w+>|\.(md|csv|ya?ml)\b|#[\w-]+-[\w-]+")


@dataclass(frozen=True)
class QuestionSet:
    """One question file: where its knowledge is and what to ask."""

    name: str
    knowledge: Path
    items: list[dict[str, Any]]

    @classmethod
    def load(cls, path: Path) -> QuestionSet:
        """Read a question file (see the module docstring)."""
        data = load_yaml(path.read_text(encoding="utf-8"))
        folder = (path.parent / str(data["knowledge"])).resolve()
        return cls(path.stem, folder, list(data["questions"]))

    def head(self, n: int | None) -> QuestionSet:
        """The first ``n`` questions of each kind (all when ``n`` is None)."""
        if n is None:
            return self
        counts: dict[str, int] = {}
        items = []
        for item in self.items:
            kind = str(item.get("expect", "fact"))
            counts[kind] = counts.get(kind, 0) + 1
            if counts[kind] <= n:
                items.append(item)
        return QuestionSet(self.name, self.knowledge, items)


def default_sets() -> list[Path]:
    """The question files the project ships."""
    return sorted(QUESTIONS_DIR.glob("*.yaml"))


def squashed(text: object) -> str:
    """``text`` case-folded without whitespace: how the grader compares facts with answers.

    Phrases are joined by spaces, also after Chinese punctuation: compare without them.
    """
    return "".join(str(text).casefold().split())


def grade(item: dict[str, Any], answer: str, persona: Persona) -> tuple[bool, bool]:
    """(right, leaked) for one spoken ``answer``."""
    leaked = _LEAK.search(answer) is not None
    folded = squashed(answer)
    expect = item.get("expect")
    said_dont_know = squashed(persona.dont_know) in folded
    if expect == "dont_know":
        right = said_dont_know
    elif expect == "smalltalk":
        right = bool(answer.strip()) and not said_dont_know
    else:
        right = all(squashed(f) in folded for f in item.get("facts", []))
    return right and not leaked, leaked


async def evaluate(
    qset: QuestionSet,
    *,
    brain: Brain | None = None,
    settings: KnowledgeSettings | None = None,
    cache_dir: Path | None = None,
    dense: bool = True,
) -> dict[str, Any]:
    """Ask every question of ``qset`` (fresh conversation each) and grade the answers."""
    judge = settings.judge if settings is not None else True
    kb = KnowledgeBase.load(qset.knowledge, dense=dense, cache_dir=cache_dir, judge=judge)
    persona_file = qset.knowledge / "persona.yaml"
    persona = Persona.load(persona_file) if persona_file.is_file() else Persona.from_settings()
    agent = Agent(persona, brain=brain, knowledge=kb, knowledge_settings=settings)
    rows = []
    for item in qset.items:
        agent.reset()
        started = time.perf_counter()
        first: float | None = None
        spoken: list[str] = []
        async for event in agent.respond(str(item["q"])):
            if isinstance(event, Phrase):
                first = first if first is not None else time.perf_counter() - started
                spoken.append(event.text)
        answer = " ".join(spoken)
        right, leaked = grade(item, answer, persona)
        turn = agent.last_turn
        rows.append(
            {
                "q": item["q"],
                "kind": item.get("expect", "fact"),
                "route": turn.route if turn else "",
                "confidence": turn.confidence if turn else None,
                "answer": answer,
                "right": right,
                "leak": leaked,
                "first_phrase_s": first,
            }
        )
    await agent.aclose()
    fallbacks = [r for r in rows if r["kind"] == "dont_know"]
    return {
        "set": qset.name,
        "questions": len(rows),
        "right": sum(r["right"] for r in rows) / max(1, len(rows)),
        "honoured_fallbacks": sum(r["right"] for r in fallbacks) / max(1, len(fallbacks)),
        "leaks": sum(r["leak"] for r in rows),
        "rows": rows,
    }


HELD_OUT_DIR = Path(__file__).resolve().parents[2] / "tests" / "dialogue" / "held_out"


def main(argv: list[str] | None = None) -> int:
    """``python -m anima.bench.brain_quality [FILE ...]``: the knowledge-only mind graded on
    question files (default: every set the project has, shipped and held out), one line a set
    and its misses, then the total."""
    args = sys.argv[1:] if argv is None else argv
    quiet = "--quiet" in args
    files = [Path(a) for a in args if a != "--quiet"]
    files = files or sorted(HELD_OUT_DIR.glob("*.yaml")) + default_sets()
    right = total = 0
    for path in files:
        result = asyncio.run(evaluate(QuestionSet.load(path)))
        kinds: dict[str, list[int]] = {}
        for row in result["rows"]:
            tally = kinds.setdefault(row["kind"], [0, 0])
            tally[0] += row["right"]
            tally[1] += 1
        counts = " ".join(f"{k} {a}/{b}" for k, (a, b) in kinds.items())
        print(f"{result['set']:14} right {result['right']:.2f} leaks {result['leaks']} {counts}")
        for row in [] if quiet else [r for r in result["rows"] if not r["right"]]:
            print(f"    miss {row['kind']:9} {row['route']:9} {row['q']} -> {row['answer'][:60]}")
        right += sum(r["right"] for r in result["rows"])
        total += result["questions"]
    print(f"all {right}/{total} = {right / max(1, total):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
