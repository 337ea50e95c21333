"""``anima bench asr|tts --lang CODE``: listening and speaking in one language pack's language.

``asr``: the pack's bench sentences are spoken by each of its bench voices (for Mandarin the
neural zh-baker voice and espeak-ng; the recogniser was tuned on neither), fed to the live
listener at real-time pace in 20 ms chunks, and scored by character error rate (CER; the
texts are compared in simplified characters without punctuation), with the time from the end
of speech to the final transcript, the endpoint delay and the final decode latency.

``lipsync``: the audio-to-mouth network on the pack's voices, against the phoneme lip-sync's
track from the voices' own timings (:func:`anima.bench.lipsync.evaluate`), beside the same
figures on the English held-out voices.

``tts``: each bench voice speaks every sentence; first-chunk time (text in -> first audio
chunk out, a one-sentence reply) and real-time factor (synthesis time / audio length).

JSON in ``<out>/asr_<code>.json`` / ``tts_<code>.json``, plots beside them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from anima.asr import Listener, listener_config, load_recognizer
from anima.asr.audio import RATE, resample
from anima.asr.wer import cer
from anima.bench.common import stats, write_result
from anima.config import Settings
from anima.lang import get_pack
from anima.tts import load_voice


def _pack(settings: Settings, lang: str | None):  # noqa: ANN202
    pack = get_pack(lang)
    if not pack.bench.get("sentences") or not pack.bench.get("voices"):
        raise ValueError(f"language pack {pack.code!r} has no bench sentences or voices")
    return pack


def _voice(name: str, code: str):  # noqa: ANN202
    return load_voice(name, language=code)


def bench_asr_lang(out: Path, settings: Settings, err: Console, lang: str, reps: int = 1) -> int:
    """CER and latency of the live listener on the pack's sentences, per bench voice."""
    from anima.bench.asr import _live

    pack = _pack(settings, lang)
    if settings.lang.code != pack.code:
        settings = _with(settings, pack)
    recognizer = load_recognizer(settings.listen, settings.data_dir)
    config = listener_config(settings.listen, pack.code)
    recognizer.transcribe(np.zeros(RATE, np.float32))  # warm-up
    results: dict[str, object] = {}
    runs: dict[str, list[dict[str, object]]] = {}
    for name in pack.bench["voices"]:
        voice = _voice(name, pack.code)
        rows = []
        for _ in range(reps):
            for text in pack.bench["sentences"]:
                pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
                speech = resample(pcm, voice.sample_rate)
                run = asyncio.run(_live(Listener(recognizer, config), speech))
                heard = pack.clean_text(str(run["text"]))
                run |= {"reference": text, "text": heard, "cer": cer(pack.clean_text(text), heard)}
                rows.append(run)
                err.print(f"{name}: {text} -> {heard}  CER {run['cer']:.2f}")
        ok = [r for r in rows if r["speech_end_to_final_s"] is not None]
        results[name] = {
            "cer_mean": float(np.mean([float(r["cer"]) for r in rows])),  # type: ignore[arg-type]
            "speech_end_to_final_s": stats([r["speech_end_to_final_s"] for r in ok]),  # type: ignore[misc]
            "endpoint_delay_s": stats([r["endpoint_delay_s"] for r in ok]),  # type: ignore[misc]
            "final_latency_s": stats([r["asr_latency_s"] for r in ok]),  # type: ignore[misc]
            "rtf": stats([r["rtf"] for r in ok]),  # type: ignore[misc]
            "missed": len(rows) - len(ok),
            "utterances": len(rows),
        }
        runs[name] = rows
    s = settings.listen
    path = write_result(
        out,
        f"asr_{pack.code}",
        {
            "benchmark": f"asr --lang {pack.code}",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": {
                "model": s.model,
                "language": s.language,
                "initial_prompt": s.initial_prompt,
                "cpu_threads": s.cpu_threads,
                "pace": "real time, 20 ms chunks",
            },
            "voices": results,
            "runs": runs,
        },
    )
    _plot(results, "cer_mean", "speech_end_to_final_s", out / f"asr_{pack.code}.png", pack.code)
    for name, r in results.items():
        lat = r["speech_end_to_final_s"]  # type: ignore[index]
        err.print(
            f"{name}: CER {r['cer_mean']:.3f}; speech end -> final p50 "  # type: ignore[index]
            f"{lat['p50'] * 1000:.0f} ms, p95 {lat['p95'] * 1000:.0f} ms"  # type: ignore[index]
        )
    err.print(f"results: {path}")
    return 0


def bench_tts_lang(
    out: Path, settings: Settings, err: Console, lang: str | None = None, reps: int = 1
) -> int:
    """First-chunk time and real-time factor of each of the pack's bench voices."""
    pack = _pack(settings, lang)
    results: dict[str, object] = {}
    for name in pack.bench["voices"]:
        voice = _voice(name, pack.code)
        next(iter(voice.synthesize(pack.bench["sentences"][0])))  # warm-up (loads dictionaries)
        first, rtf = [], []
        for _ in range(reps):
            for text in pack.bench["sentences"]:
                t0 = time.perf_counter()
                chunks = iter(voice.synthesize(text))
                chunk = next(chunks)
                first.append(time.perf_counter() - t0)
                audio = chunk.duration + sum(c.duration for c in chunks)
                rtf.append((time.perf_counter() - t0) / audio)
        results[name] = {
            "first_chunk_s": stats(first),
            "rtf": stats(rtf),
            "sample_rate": voice.sample_rate,
            "sentences": len(first),
        }
        err.print(
            f"{name}: first chunk p50 {results[name]['first_chunk_s']['p50'] * 1000:.0f} ms, "  # type: ignore[index]
            f"RTF p50 {results[name]['rtf']['p50']:.3f}"  # type: ignore[index]
        )
    path = write_result(
        out,
        f"tts_{pack.code}",
        {
            "benchmark": f"tts --lang {pack.code}",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "voices": results,
        },
    )
    _plot(results, "rtf", "first_chunk_s", out / f"tts_{pack.code}.png", pack.code)
    err.print(f"results: {path}")
    return 0


def _with(settings: Settings, pack) -> Settings:  # noqa: ANN001
    """``settings`` with the pack's recogniser settings (for ``--lang`` on a bench)."""
    return settings.overridden({k: dict(v) for k, v in pack.settings.items() if k == "listen"})


def _plot(results: dict[str, object], left: str, right: str, path: Path, code: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)

    def value(name: str, key: str) -> float:
        v = results[name][key]  # type: ignore[index]
        return float(v["p50"] if isinstance(v, dict) else v)

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.5), dpi=100)
    for ax, key in zip(axes, (left, right), strict=True):
        ax.bar(names, [value(n, key) for n in names], color=["#4c72b0", "#dd8452", "#55a868"])
        ax.set_title(f"{key} ({code})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def bench_lipsync_lang(out: Path, settings: Settings, err: Console, lang: str) -> int:
    """Correlation of the audio-to-mouth network with the phoneme track, pack vs English."""
    from anima.bench.lipsync import PARAMS, evaluate, held_out_speech
    from anima.lipsync import neural as N

    pack = _pack(settings, lang)
    voices = {name: _voice(name, pack.code) for name in pack.bench["voices"]}
    items = [
        (name, c.pcm, c.sample_rate, list(c.phonemes))
        for name, voice in voices.items()
        for text in pack.bench["sentences"]
        for c in voice.synthesize(text)
    ]
    model = N.Audio2MouthModel(threads=1)
    ours = evaluate(items, model, noisy=False)
    english = evaluate(held_out_speech(settings), model, noisy=False)["all"]
    result = {
        "benchmark": f"lipsync --lang {pack.code}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        pack.code: ours,
        "en_held_out": english,
    }
    path = write_result(out, f"lipsync_{pack.code}", result)
    for name, r in {**ours, "en (held out)": english}.items():
        corr = ", ".join(f"{p} {r['neural_corr'][p]:.2f}" for p in PARAMS)  # type: ignore[index]
        err.print(f"{name}: network r: {corr}")
    err.print(f"results: {path}")
    return 0
