"""A learned judge of which passage answers a question, and whether any does.

Word match and embeddings each say something about a (question, passage) pair; how much each
counts, and what an unanswerable question looks like, was not something hand-set weights got
right on folders they had not seen. The judge is a linear choice model (a softmax over the
candidates and "none of them") over the candidates of a search: the fused ranking's first
:data:`CANDIDATES` passages, each described by

* the search's own numbers: fused, lexical and dense confidence, BM25, z-score, rank, gaps to
  the first, the background margin, the share of question words the folder never uses;
* the elementwise product of the question's embedding and the passage text nearest it (which
  directions of meaning must agree), and the question's embedding itself (what kinds of
  question a desk tends not to answer).

It was trained on question sets written for the purpose (``training/judge``: forty service
desks, English and Chinese, facts worded as visitors speak, out-of-scope questions on
neighbouring topics) by :mod:`anima.bench.judge_train`; the weights are a few kilobytes of
numpy in ``data/judge.npz`` (no model to ship, microseconds a question). The candidates are
reranked by the judge's probability, and the probability is mapped onto the knowledge
confidence so that the judge's decision point sits at :data:`CONFIDENCE_AT_DECISION`
(``knowledge.threshold``'s default).
"""

from __future__ import annotations

import logging
import math
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anima.dialogue.dense import DenseMatch
    from anima.dialogue.lexical import Match

log = logging.getLogger(__name__)

WEIGHTS_FILE = Path(__file__).with_name("data") / "judge.npz"
# The features' layout; weights trained on another layout are not used.
FEATURES_VERSION = 2
CANDIDATES = 6
CONFIDENCE_AT_DECISION = 0.3
N_SCALARS = 19
EMBEDDING = 384  # multilingual-e5-small
# The columns that describe the question, not the passage: what "none of them" is scored on
# (the background margin and its flag, the number of words and the unknown share, the script,
# the log of the words, and the question's embedding).
QUERY_COLUMNS = (11, 12, 13, 14, 15, 18, *range(N_SCALARS + EMBEDDING, N_SCALARS + 2 * EMBEDDING))
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@dataclass(frozen=True)
class Query:
    """What the search knows of one question, for :func:`features`."""

    text: str
    lexical: Mapping[int, Match]  # every passage the words found, by index
    dense: DenseMatch
    fused: Sequence[tuple[int, float]]  # (passage, fused confidence), best first
    words: int  # index words in the question
    unknown: float  # share of them the folder never uses
    background_margin: float  # the margin from which the embeddings vouch for nothing


def candidates(query: Query) -> list[int]:
    """The passages the judge looks at: the fused ranking's first, then the nearest in meaning."""
    out = [i for i, _ in query.fused[:CANDIDATES]]
    best = query.dense.best
    for i in best.argsort()[::-1].tolist():
        if len(out) >= CANDIDATES:
            break
        if i not in out:
            out.append(int(i))
    return out


def features(query: Query, cands: Sequence[int]) -> Any:
    """One row of features per candidate passage (see the module docstring)."""
    import numpy as np

    dense = query.dense
    fused = dict(query.fused)
    top_fused = query.fused[0][1] if query.fused else 0.0
    best = dense.best
    mean, std = float(best.mean()), max(float(best.std()), 0.015)
    top_best = float(best.max())
    top_bm25 = max((m.score for m in query.lexical.values()), default=1.0) or 1.0
    cjk = float(_CJK.search(query.text) is not None)
    rows = []
    for rank, i in enumerate(cands):
        unit = dense.best_unit(i)
        whole = int(dense.index.units_of(i)[0])
        m = query.lexical.get(i)
        scalars = [
            fused.get(i, 0.0),
            m.confidence if m else 0.0,
            m.doc_coverage if m else 0.0,
            m.score / top_bm25 if m else 0.0,
            (float(best[i]) - mean) / std,
            float(best[i]),
            float(dense.cos[whole]),
            float(dense.cos[unit]),
            float(rank),
            top_fused - fused.get(i, 0.0),
            top_best - float(best[i]),
            query.dense.margin,
            float(query.dense.margin > query.background_margin),
            float(query.words),
            query.unknown,
            cjk,
            float(len(dense.index.units_of(i))),
            dense.index.hub(unit),
            math.log1p(query.words),
        ]
        vector = dense.index.unit_vector(unit)
        rows.append(
            np.concatenate([np.asarray(scalars, np.float32), dense.query * vector, dense.query])
        )
    return np.asarray(rows, np.float32).reshape(len(cands), -1)


class JudgeError(ValueError):
    """The judge's weights file is missing, damaged or of another feature layout."""


@dataclass(frozen=True)
class Judge:
    """A choice among a question's candidates or none, and the decision point it was tuned at.

    Each candidate scores ``weights`` · its standardised features; *none of them* scores
    ``none_weights`` · the question's own features (:data:`QUERY_COLUMNS`) + ``none_bias``.
    A softmax over the candidates and *none* gives each candidate's probability of being the
    answer, so a candidate is weighed against the others and against answering nothing.
    """

    mean: Any
    scale: Any
    weights: Any
    none_weights: Any
    none_bias: float
    decision: float

    @classmethod
    def load(cls, path: Path | None = None) -> Judge:
        """The judge in ``path`` (default: the shipped one); a :class:`JudgeError` says what is
        wrong with the file."""
        import numpy as np

        from anima.dialogue.dense import MODEL_ID

        path = path or WEIGHTS_FILE
        try:
            with np.load(path) as data:
                version = int(data["version"])
                embedder = str(data["embedder"])
                judge = cls(
                    data["mean"].astype(np.float32),
                    data["scale"].astype(np.float32),
                    data["weights"].astype(np.float32),
                    data["none_weights"].astype(np.float32),
                    float(data["none_bias"]),
                    float(data["decision"]),
                )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise JudgeError(f"cannot read the judge's weights {path}: {exc}") from exc
        if version != FEATURES_VERSION:
            raise JudgeError(f"{path}: features version {version}, expected {FEATURES_VERSION}")
        if embedder != MODEL_ID:  # another embedder's vectors mean nothing to these weights
            raise JudgeError(
                f"{path}: trained on {embedder} embeddings, the search uses {MODEL_ID}"
            )
        if not (judge.mean.shape == judge.scale.shape == judge.weights.shape) or (
            judge.none_weights.shape != (len(QUERY_COLUMNS),)
        ):
            raise JudgeError(f"{path}: weights of mismatched shapes")
        if not 0.0 < judge.decision < 1.0:
            raise JudgeError(f"{path}: decision point {judge.decision} outside (0, 1)")
        return judge

    def probabilities(self, rows: Any) -> Any:
        """The probability that each row's passage is the answer (rows: one question's)."""
        import numpy as np

        if rows.ndim != 2 or rows.shape[1] != self.weights.shape[0]:
            raise JudgeError(
                f"features of shape {rows.shape}, the weights expect {self.weights.shape[0]}"
            )
        z = (rows - self.mean) / self.scale
        scores = np.append(
            z @ self.weights, z[0, QUERY_COLUMNS] @ self.none_weights + self.none_bias
        )
        e = np.exp(scores - scores.max())
        return (e / e.sum())[:-1]

    def confidence(self, p: float) -> float:
        """A probability on the knowledge confidence scale: the decision point lands on 0.3."""
        d, c = self.decision, CONFIDENCE_AT_DECISION
        if p < d:
            return c * p / d
        return c + (1.0 - c) * (p - d) / (1.0 - d)

    def rank(self, query: Query) -> list[tuple[int, float]]:
        """(passage, confidence) of the candidates, best first, then the rest of the fused
        ranking (for a ``top_k`` above :data:`CANDIDATES`), none above the last judged one."""
        cands = candidates(query)
        if not cands:
            return []
        p = self.probabilities(features(query, cands)).tolist()
        ranked = sorted(zip(cands, p, strict=True), key=lambda x: x[1], reverse=True)
        out = [(i, self.confidence(q)) for i, q in ranked]
        floor = out[-1][1]
        judged = set(cands)
        out += [(i, min(conf, floor)) for i, conf in query.fused if i not in judged]
        return out


@lru_cache(maxsize=1)
def shipped() -> Judge | None:
    """The judge shipped with anima, or None (logged once) when its file cannot be used."""
    try:
        return Judge.load()
    except JudgeError as exc:
        log.warning("knowledge judge off: %s", exc)
        return None
