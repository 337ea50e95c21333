"""``anima bench brain``: the embedded GGUF brain on the CPU, as a conversation feels it.

For each of a set of visitor questions (asked with the same persona prompt) it measures the
time to the first token, the time to the first speakable phrase out of the
:class:`~anima.dialogue.chunker.PhraseChunker` (what the TTS waits for) and the decoding speed
(tokens per second after the first token). Two passes:

- ``cold``: every conversation starts with a different system prompt, so the whole prompt is
  decoded (a new session on a model that served someone else);
- ``warm``: the same persona prompt each time, so llama.cpp's cache keeps it and only the
  question is decoded (the common case: one persona, many visitors).

Then quality (:mod:`anima.bench.brain_quality`): the project's question sets (English and
Chinese; knowledge, paraphrases, out-of-scope, small talk) asked of the whole agent with this
model as its brain: share right, honoured fallbacks, leaks, first phrase p50/p95 over all turns
and over the turns the model answered. The model is chosen by ``brain.model`` (a catalogue
name) or ``brain.model_path``; each run also writes ``brain-<model>.json``, and
``brain-quality.png`` plots right-share against first-phrase p50 for every model measured
into ``out`` so far.

Results go to ``<out>/brain.json`` with the raw samples; speeds compare only on one machine.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from anima.bench.brain_quality import QuestionSet, default_sets, evaluate
from anima.bench.common import stats, write_result
from anima.config import Settings
from anima.dialogue.brain import Message
from anima.dialogue.chunker import PhraseChunker
from anima.dialogue.gguf_backend import GGUFBrain
from anima.models import gguf_model

PERSONA = (
    "You are Ava, a friendly front-desk assistant at the city museum. Answer in one to three "
    "short spoken sentences, warmly and clearly, without lists or markup. The museum opens at "
    "9:30 a.m. and closes at 6 p.m.; tickets cost 12 euros, children under 12 enter free."
)
QUESTIONS = (
    "Hello! When does the museum open?",
    "How much is a ticket for two adults and a child?",
    "Is there a café inside?",
    "Can I take photos of the paintings?",
    "What is in the west wing?",
    "Where can I leave my coat?",
    "Do you have guided tours in the afternoon?",
    "Is the museum accessible by wheelchair?",
    "What is your favourite painting here?",
    "Thank you, goodbye!",
    "How do I get to the train station from here?",
    "Are dogs allowed in the museum?",
)


def bench_brain(
    out: Path,
    settings: Settings,
    err: Console,
    prompts: int = 10,
    max_tokens: int = 128,
    questions: int | None = None,
) -> int:
    """Measure the GGUF brain named by ``settings.brain`` and write ``brain.json`` into ``out``.

    ``questions`` caps the questions of each kind asked of each quality set (None: all).
    """
    return asyncio.run(_bench(out, settings, err, prompts, max_tokens, questions))


async def _bench(
    out: Path,
    settings: Settings,
    err: Console,
    prompts: int,
    max_tokens: int,
    per_kind: int | None = None,
) -> int:
    cfg = settings.brain
    started = time.perf_counter()
    path = cfg.model_path
    if path is None and cfg.model:
        path = gguf_model(cfg.model, settings.data_dir / "models")
    brain = GGUFBrain(
        path,
        n_ctx=cfg.n_ctx,
        threads=cfg.threads,
        temperature=0.0,  # greedy: quality is compared between models, not between runs
        max_tokens=max_tokens,
        seed=1234,  # the same replies on every run of one build
    )
    load_s = time.perf_counter() - started
    questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(max(1, prompts))]
    try:
        with err.status("warming up"):
            await _one(brain, [Message("system", "Warm up."), Message("user", "Hi")], 8)
        passes: dict[str, list[dict[str, Any]]] = {}
        for mode in ("cold", "warm"):
            if mode == "warm":  # a visitor before: the persona prompt is in the cache
                await _one(brain, [Message("system", PERSONA), Message("user", "Hi")], 4)
            runs = []
            for i, question in enumerate(questions):
                with err.status(f"{mode} {i + 1}/{len(questions)}"):
                    system = PERSONA if mode == "warm" else f"Session {i + 1}. {PERSONA}"
                    runs.append(
                        await _one(brain, [Message("system", system), Message("user", question)])
                    )
            passes[mode] = runs
        quality = []
        for qfile in default_sets():
            with err.status(f"quality: {qfile.stem}"):
                quality.append(
                    await evaluate(
                        QuestionSet.load(qfile).head(per_kind),
                        brain=brain,
                        settings=settings.knowledge,
                        cache_dir=settings.data_dir / "knowledge",
                    )
                )
    finally:
        await brain.aclose()

    result: dict[str, object] = {
        "benchmark": "brain",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {
            "backend": "gguf",
            "model": str(brain.model_path.name),
            "threads": brain.threads,
            "n_ctx": brain.n_ctx,
            "temperature": brain.temperature,
            "max_tokens": max_tokens,
            "prompts": len(questions),
        },
        "load_s": load_s,
    }
    for mode, runs in passes.items():
        result[mode] = {
            "first_token_s": stats([r["first_token_s"] for r in runs]),
            "first_phrase_s": stats([r["first_phrase_s"] for r in runs]),
            "tokens_per_s": stats([r["tokens_per_s"] for r in runs if r["tokens_per_s"]]),
            "prompt_tokens": stats([float(r["prompt_tokens"]) for r in runs]),
            "runs": runs,
        }
    result["quality"] = [_quality_summary(q) for q in quality]
    path = write_result(out, "brain", result)
    write_result(out, f"brain-{brain.model_path.stem}", result)
    _print(result, err)
    err.print(f"results: {path}")
    plot = plot_quality(out)
    if plot is not None:
        err.print(f"plot: {plot}")
    return 0


def _quality_summary(q: dict[str, Any]) -> dict[str, Any]:
    """Shares and first-phrase times of one question set (rows kept for reading)."""
    rows = q["rows"]
    every = [r["first_phrase_s"] for r in rows if r["first_phrase_s"] is not None]
    model = [r["first_phrase_s"] for r in rows if r["route"] == "llm" and r["first_phrase_s"]]
    return {
        **{k: q[k] for k in ("set", "questions", "right", "honoured_fallbacks", "leaks")},
        "first_phrase_s": stats(every) if every else None,
        "model_turns": len(model),
        "model_first_phrase_s": stats(model) if model else None,
        "rows": rows,
    }


def plot_quality(out: Path) -> Path | None:
    """``brain-quality.png``: share right against first-phrase p50, one point per model/set."""
    import json

    points = []
    for path in sorted(out.glob("brain-*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for q in data.get("quality", []):
            if q.get("first_phrase_s"):
                points.append(
                    (data["config"]["model"], q["set"], q["first_phrase_s"]["p50"], q["right"])
                )
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for model, qset, p50, right in points:
        ax.scatter(p50 * 1000, right * 100)
        ax.annotate(f"{model} / {qset}", (p50 * 1000, right * 100), fontsize=7)
    ax.set_xlabel("first phrase p50 (ms, all turns)")
    ax.set_ylabel("answered right (%)")
    ax.set_title("anima bench brain: quality vs latency")
    fig.tight_layout()
    target = out / "brain-quality.png"
    fig.savefig(target, dpi=100)
    plt.close(fig)
    return target


async def _one(brain: GGUFBrain, messages: list[Message], max_tokens: int | None = None) -> dict:
    """One reply: time to first token and first phrase, decode speed, what was said."""
    chunker = PhraseChunker()
    t0 = time.perf_counter()
    first_token = first_phrase = None
    phrases: list[str] = []
    async for delta in brain.stream(messages, max_tokens=max_tokens):
        now = time.perf_counter() - t0
        first_token = now if first_token is None else first_token
        released = chunker.feed(delta)
        if released and first_phrase is None:
            first_phrase = now
        phrases += [p.text for p in released]
    total = time.perf_counter() - t0
    rest = [p.text for p in chunker.flush()]
    if rest and first_phrase is None:
        first_phrase = total  # the whole reply was one phrase
    phrases += rest
    s = brain.last_stats
    assert s is not None
    return {
        "first_token_s": first_token if first_token is not None else total,
        "first_phrase_s": first_phrase if first_phrase is not None else total,
        "total_s": total,
        "tokens": s.generated_tokens,
        "tokens_per_s": (s.generated_tokens - 1) / s.decode_s if s.decode_s > 0 else None,
        "prompt_tokens": s.prompt_tokens,
        "reused_tokens": s.reused_tokens,
        "first_phrase": phrases[0] if phrases else "",
        "reply": " ".join(phrases),
    }


def _print(result: dict[str, Any], err: Console) -> None:
    cfg = result["config"]
    table = Table(
        title=f"brain: {cfg['model']}, {cfg['threads']} threads, {cfg['prompts']} prompts"
    )
    table.add_column("pass")
    table.add_column("metric")
    for col in ("p50", "p95", "max"):
        table.add_column(col, justify="right")
    for mode in ("cold", "warm"):
        block = result[mode]
        for key, label, scale, unit in (
            ("first_token_s", "first token", 1000, "ms"),
            ("first_phrase_s", "first phrase", 1000, "ms"),
            ("tokens_per_s", "tokens/s", 1, ""),
            ("prompt_tokens", "prompt tokens", 1, ""),
        ):
            s = block[key]
            table.add_row(
                mode, label, *(f"{s[c] * scale:.0f}{unit}" for c in ("p50", "p95", "max"))
            )
    err.print(table)
    err.print(f"model load: {result['load_s'] * 1000:.0f} ms")
    quality = Table(title="quality")
    for col in ("set", "right", "fallbacks", "leaks", "phrase p50", "p95", "model turns"):
        quality.add_column(col)
    for q in result.get("quality", []):
        fp = q["first_phrase_s"] or {"p50": 0.0, "p95": 0.0}
        quality.add_row(
            q["set"],
            f"{q['right']:.0%}",
            f"{q['honoured_fallbacks']:.0%}",
            str(q["leaks"]),
            f"{fp['p50'] * 1000:.0f}ms",
            f"{fp['p95'] * 1000:.0f}ms",
            str(q["model_turns"]),
        )
    err.print(quality)
