"""``anima bench asr``: how soon after the person stops speaking the final transcript is there.

Utterances of about 2, 5 and 10 s are spoken by the project's own voice and fed to the live
listener in 20 ms chunks at real-time pace (wall clock), as a microphone would. For each we
record the time from the last sample of speech being fed to the final transcript (which
includes the endpoint silence), the listener's own endpoint delay and final latency, and the
real-time factor of the decode. A second table decodes the same utterances three ways, to show
where the time goes: stock ``WhisperModel.transcribe`` (30 s window, beam 5), our decode on
the full 30 s window, and our decode on the short window. JSON in ``<out>/asr.json`` and a
plot in ``<out>/asr_latency.png``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress

from anima.asr import Final, Listener, listener_config, load_recognizer
from anima.asr.audio import RATE, resample
from anima.asr.models import resolve_model
from anima.asr.wer import wer
from anima.asr.whisper import WhisperOptions, WhisperRecognizer
from anima.bench.common import stats, write_result
from anima.config import Settings
from anima.tts import Voice, load_voice

# One sentence each, without commas: one utterance per text (a comma pause may end an
# utterance early by design). Spoken by the embedded voice they last about 2, 5 and 10 s.
TEXTS = {
    2: [
        "Where is the nearest train station from here please?",
        "I need a taxi to the airport right now.",
        "Can you help me find my lost car keys?",
        "What time does the museum open today?",
        "Please show me the dinner menu once again.",
    ],
    5: [
        "I would like to book a table for four people tomorrow evening at the little Italian "
        "restaurant near the river.",
        "Could you tell me how to get to the history museum from the central bus station on foot?",
        "The weekly team meeting has been moved to Thursday afternoon at three in the large "
        "room upstairs.",
        "Please send the final report to my office before the end of the day on Friday.",
        "How much does a return ticket to the airport cost if I travel after nine in the morning?",
    ],
    10: [
        "Last summer my family and I drove slowly along the whole coast for two long weeks and "
        "stopped in many small fishing villages where we ate fresh fish in every little harbour "
        "we could find before the sun went down.",
        "The public library on the main square is open every day of the week except Monday "
        "and on Friday evenings it stays open until late at night for poetry readings and small "
        "concerts by local musicians.",
        "If you want to visit the old castle on the hill you should take the number twelve bus "
        "from the central station and get off at the very last stop and then walk up the steep "
        "path for about ten minutes.",
        "Our new phone plan includes unlimited calls and text messages and twenty gigabytes of "
        "mobile data every month as well as free roaming in most European countries at no "
        "extra cost for you.",
        "The old stone bridge in the middle of our town was built more than two hundred years "
        "ago by the people of the village and it still carries cars and bicycles across the "
        "river every single day.",
    ],
}
CHUNK = RATE // 50
LEAD, TAIL = 0.5, 1.5  # silence before and after each utterance, seconds


def _speech(voice: Voice, text: str) -> np.ndarray:
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)])
    return resample(pcm, voice.sample_rate)


def _speech_end(audio: np.ndarray) -> int:
    loud = np.flatnonzero(np.abs(audio) > 0.02 * np.abs(audio).max())
    return int(loud[-1]) + 1 if len(loud) else len(audio)


async def _live(listener: Listener, speech: np.ndarray) -> dict[str, object]:
    """Feed lead + speech + tail at real-time pace; time speech end -> final."""
    audio = np.concatenate(
        [np.zeros(int(LEAD * RATE), np.float32), speech, np.zeros(int(TAIL * RATE), np.float32)]
    )
    end_sample = int(LEAD * RATE) + _speech_end(speech)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    t0 = time.perf_counter()
    t_end = None
    finals: list[tuple[float, Final]] = []
    for i in range(0, len(pcm), CHUNK):
        # Pace like a microphone: chunk i is available only once its audio has "happened".
        due = t0 + (i + CHUNK) / RATE
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        events = await listener.feed(pcm[i : i + CHUNK], RATE)
        now = time.perf_counter()
        if t_end is None and i + CHUNK >= end_sample:
            t_end = now
        finals.extend((now, e) for e in events if isinstance(e, Final))
    finals.extend((time.perf_counter(), e) for e in await listener.flush() if isinstance(e, Final))
    assert t_end is not None
    first_at, last = finals[-1] if finals else (time.perf_counter(), None)
    text = " ".join(f.transcript.text for _, f in finals)
    return {
        "speech_end_to_final_s": (finals[-1][0] - t_end) if finals else None,
        "finals": len(finals),
        "endpoint_delay_s": last.metrics.endpoint_delay if last else None,
        "asr_latency_s": last.metrics.asr_latency if last else None,
        "rtf": last.metrics.rtf if last else None,
        "speculative": last.metrics.speculative if last else None,
        "partials": sum(f.metrics.partials for _, f in finals),
        "text": text,
    }


def _decode_table(voice: Voice, settings: Settings, count: int = 3) -> dict[str, object]:
    """Decode time of the same utterances: stock faster-whisper vs our full and short window."""
    from faster_whisper import WhisperModel

    s = settings.listen
    folder = resolve_model(s.model, settings.data_dir)
    from anima.asr.models import compute_type_for
    from anima.device import resolve_device

    dev = resolve_device(s.device, "ctranslate2", what="speech recogniser")
    stock = WhisperModel(
        str(folder),
        device=dev.kind,
        device_index=dev.index,
        compute_type=compute_type_for(str(dev), s.compute_type),
        cpu_threads=s.cpu_threads,
    )
    ours = {
        window: WhisperRecognizer(
            folder,
            device=s.device,
            compute_type=s.compute_type,
            cpu_threads=s.cpu_threads,
            options=WhisperOptions(language=s.language, encoder_window=window),
        )
        for window in (30.0, s.encoder_window)
    }
    table: dict[str, object] = {}
    for length, texts in TEXTS.items():
        times: dict[str, list[float]] = {"stock_transcribe": [], "full_window": [], "short": []}
        for text in texts[:count]:
            audio = _speech(voice, text)
            t = time.perf_counter()
            segments, _ = stock.transcribe(audio, language="en" if not s.language else s.language)
            "".join(seg.text for seg in segments)
            times["stock_transcribe"].append(time.perf_counter() - t)
            times["full_window"].append(ours[30.0].transcribe(audio).compute_seconds)
            times["short"].append(ours[s.encoder_window].transcribe(audio).compute_seconds)
        table[f"{length}s"] = {k: stats(v) for k, v in times.items()}
    return table


def bench_asr(
    out: Path, settings: Settings, err: Console, reps: int = 5, lang: str | None = None
) -> int:
    """Run the benchmark and write ``asr.json`` (and ``asr_latency.png``) into ``out``.

    With ``lang`` (``--lang zh``) the language pack's sentences and voices are measured
    instead, by character error rate (:mod:`anima.bench.lang`).
    """
    if lang:
        from anima.bench.lang import bench_asr_lang

        return bench_asr_lang(out, settings, err, lang, reps=max(1, reps // 5))
    voice = load_voice(settings.voice.backend, model=settings.voice.model)
    recognizer = load_recognizer(settings.listen, settings.data_dir)
    config = listener_config(settings.listen, settings.lang.code)
    results: dict[str, object] = {}
    raw: dict[str, list[dict[str, object]]] = {}
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("utterances", total=reps * len(TEXTS) + 1)
        recognizer.transcribe(np.zeros(RATE, np.float32))  # warm-up: first call allocates
        for length, texts in TEXTS.items():
            runs = []
            for i in range(reps):
                text = texts[i % len(texts)]
                speech = _speech(voice, text)
                run = asyncio.run(_live(Listener(recognizer, config), speech))
                run |= {"audio_s": len(speech) / RATE, "wer": wer(text, str(run["text"]))}
                runs.append(run)
                progress.advance(task)
            raw[f"{length}s"] = runs
            ok = [r for r in runs if r["speech_end_to_final_s"] is not None]
            results[f"{length}s"] = {
                "audio_s": stats([float(r["audio_s"]) for r in runs]),  # type: ignore[arg-type]
                "speech_end_to_final_s": stats([r["speech_end_to_final_s"] for r in ok]),  # type: ignore[misc]
                "endpoint_delay_s": stats([r["endpoint_delay_s"] for r in ok]),  # type: ignore[misc]
                "final_latency_s": stats([r["asr_latency_s"] for r in ok]),  # type: ignore[misc]
                "rtf": stats([r["rtf"] for r in ok]),  # type: ignore[misc]
                "speculative_share": sum(bool(r["speculative"]) for r in ok) / max(1, len(ok)),
                "wer_mean": float(np.mean([float(r["wer"]) for r in runs])),  # type: ignore[arg-type]
                "missed": len(runs) - len(ok),
            }
        progress.update(task, description="decode table")
        decode = _decode_table(voice, settings, count=min(3, reps))
        progress.advance(task)
    s = settings.listen
    path = write_result(
        out,
        "asr",
        {
            "benchmark": "asr",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": {
                "model": s.model,
                "device": s.device,
                "compute_type": s.compute_type,
                "cpu_threads": s.cpu_threads,
                "encoder_window": s.encoder_window,
                "silence": s.silence,
                "silence_complete": s.silence_complete,
                "speculative": s.speculative,
                "reps": reps,
                "pace": "real time, 20 ms chunks",
            },
            "live": results,
            "decode_seconds": decode,
            "runs": raw,
        },
    )
    _plot(results, out / "asr_latency.png")
    for length, r in results.items():
        lat = r["speech_end_to_final_s"]  # type: ignore[index]
        err.print(
            f"{length:>4}: speech end -> final p50 {lat['p50'] * 1000:.0f} ms, "  # type: ignore[index]
            f"p95 {lat['p95'] * 1000:.0f} ms; RTF p50 {r['rtf']['p50']:.3f}; "  # type: ignore[index]
            f"WER {r['wer_mean']:.2f}"  # type: ignore[index]
        )
    err.print(f"results: {path}")
    return 0


def _plot(results: dict[str, object], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    p50 = [results[n]["speech_end_to_final_s"]["p50"] * 1000 for n in names]  # type: ignore[index]
    p95 = [results[n]["speech_end_to_final_s"]["p95"] * 1000 for n in names]  # type: ignore[index]
    ep = [results[n]["endpoint_delay_s"]["p50"] * 1000 for n in names]  # type: ignore[index]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.bar(x - 0.25, ep, 0.25, label="endpoint silence (p50)")
    ax.bar(x, p50, 0.25, label="speech end → final (p50)")
    ax.bar(x + 0.25, p95, 0.25, label="speech end → final (p95)")
    ax.set_xticks(x, [f"{n} utterance" for n in names])
    ax.set_ylabel("ms")
    ax.set_title("anima listener latency (real-time feed)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
