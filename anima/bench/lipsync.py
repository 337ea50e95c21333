"""``anima bench lipsync``: the audio-to-mouth network on held-out speakers, vs a loudness baseline.

Held out from training (see ``training/make_data.py``): espeak-ng voice variants ``m7`` and
``f5`` with the ``en-gb-x-rp`` accent, and the Piper voice at ``length_scale`` 1.45, speaking
sentences that are not in the training grammar, clean and with noise and reverberation. The
truth is the phoneme lip-sync's mouth track (25 fps) from the voices' own timings on the clean
audio. For each parameter we report Pearson correlation with the truth for the network and for
the loudness envelope, and the lag (frames) where the network's cross-correlation with the
truth peaks. Inference cost is measured streaming 40 ms blocks on one thread.

Also written: one PNG per emotion (``lipsync_emotion_<name>.png``, and all side by side) and the
voice parameters and speech length each emotion gives, so voice and face changes can be seen.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console

from anima.bench.common import stats, write_result
from anima.config import Settings
from anima.expression import face_expression, voice_style
from anima.frames import EMOTIONS, MediaClock, MouthShape, PhonemeTiming, SpeechChunk
from anima.levels import rms
from anima.lipsync import PhonemeLipSync
from anima.lipsync import neural as N
from anima.lipsync.coarticulation import loudness_envelope

PARAMS = ("jaw_open", "lip_width", "lip_round", "lip_closure")
HELD_OUT_SENTENCES = (
    "A king ruled the state in the early days.",
    "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.",
    "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.",
    "Mesh wire keeps chicks inside.",
    "Would you mind if I opened the blue door?",
    "Our museum opens at nine, and closes at five in the evening.",
)
ESPEAK_HELD_OUT = (("en-gb-x-rp+m7", 165, 45), ("en-gb-x-rp+f5", 185, 70))
PIPER_HELD_OUT_LENGTH = 1.45


def held_out_speech(settings: Settings) -> list[tuple[str, np.ndarray, int, list[PhonemeTiming]]]:
    """(speaker, pcm, rate, timings) for every held-out voice and sentence; espeak if installed."""
    from anima.tts.piper_voice import PiperTTS

    out = []
    try:
        from anima.tts.espeak import Espeak

        espeak = Espeak()
        for voice, rate, pitch in ESPEAK_HELD_OUT:
            for text in HELD_OUT_SENTENCES:
                u = espeak.speak(text, voice, rate=rate, pitch=pitch)
                out.append((voice, u.pcm, u.sample_rate, u.timings))
    except Exception as exc:  # noqa: BLE001 - espeak is the optional train extra
        print(f"espeak-ng unavailable ({exc}); Piper only")
    piper = PiperTTS(settings.voice.model, length_scale=PIPER_HELD_OUT_LENGTH, sentence_silence=0.3)
    for text in HELD_OUT_SENTENCES:
        for c in piper.synthesize(text):
            out.append((f"piper@{PIPER_HELD_OUT_LENGTH}", c.pcm, c.sample_rate, list(c.phonemes)))
    return out


def degrade(pcm16k: np.ndarray, seed: int) -> np.ndarray:
    """Pink-ish noise at 15 dB SNR and a 0.35 s synthetic room reverberation."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(seed)
    n = int(0.35 * N.SAMPLE_RATE)
    t = np.arange(n) / N.SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / 0.35) * 0.3
    ir[0] = 1.0
    x = fftconvolve(pcm16k, ir)[: len(pcm16k)]
    x *= np.abs(pcm16k).max() / (np.abs(x).max() + 1e-9)
    spec = np.fft.rfft(rng.standard_normal(len(x)))
    spec /= np.sqrt(np.arange(len(spec)) + 1.0)
    noise = np.fft.irfft(spec, len(x))
    loud = x[np.abs(x) > 0.01]
    level = rms(loud) if loud.size else 0.05
    noise *= level * 10 ** (-15 / 20) / (rms(noise) + 1e-12)
    return np.clip(x + noise, -1, 1).astype(np.float32)


def truth_track(pcm: np.ndarray, sr: int, timings: list[PhonemeTiming]) -> np.ndarray:
    """The phoneme lip-sync's parameters (frames, 4) at 25 fps."""
    chunk = SpeechChunk(turn=0, pcm=pcm, sample_rate=sr, text="", phonemes=tuple(timings))
    rows = PhonemeLipSync().shapes(chunk, 0, MediaClock(sr, N.FPS))
    return np.array([s.as_array() for _, s, _ in rows])


def lag_frames(pred: np.ndarray, truth: np.ndarray, max_lag: int = 5) -> int:
    """The shift (frames; positive: prediction late) that maximises their correlation."""
    best, arg = -2.0, 0
    for lag in range(-max_lag, max_lag + 1):
        a = pred[lag:] if lag >= 0 else pred[:lag]
        b = truth[: len(truth) - lag] if lag >= 0 else truth[-lag:]
        c = float(np.corrcoef(a, b)[0, 1])
        if c > best:
            best, arg = c, lag
    return arg


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def evaluate(items, model: N.Audio2MouthModel, noisy: bool) -> dict[str, object]:
    """Per speaker and overall: correlations (network, loudness) and lags."""
    by: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for k, (speaker, pcm, sr, timings) in enumerate(items):
        truth = truth_track(pcm, sr, timings)
        x = N.to_16k(pcm, sr)
        if noisy:
            x = degrade(x, seed=k)
        pred = N.mouth_from_audio(x, model)
        n = min(len(truth), len(pred))
        times = np.arange(n) / N.FPS
        loud = loudness_envelope((x * 32767).astype(np.int16), N.SAMPLE_RATE, times, 2 / N.FPS)
        by.setdefault(speaker, []).append((truth[:n], pred[:n], loud))
    out: dict[str, object] = {}
    groups = {**by, "all": [r for rows in by.values() for r in rows]}
    for name, rows in groups.items():
        truth = np.concatenate([r[0] for r in rows])
        pred = np.concatenate([r[1] for r in rows])
        loud = np.concatenate([r[2] for r in rows])
        out[name] = {
            "frames": len(truth),
            "neural_corr": {p: _corr(pred[:, i], truth[:, i]) for i, p in enumerate(PARAMS)},
            "loudness_corr": {p: _corr(loud, truth[:, i]) for i, p in enumerate(PARAMS)},
            "neural_lag_frames": {
                p: lag_frames(pred[:, i], truth[:, i]) for i, p in enumerate(PARAMS)
            },
            "loudness_lag_frames_jaw": lag_frames(loud, truth[:, 0]),
            "neural_mae": {
                p: float(np.abs(pred[:, i] - truth[:, i]).mean()) for i, p in enumerate(PARAMS)
            },
        }
    return out


def inference_cost(model: N.Audio2MouthModel, seconds: float = 20.0) -> dict[str, object]:
    """Streaming cost per 40 ms frame (features + network), one onnxruntime thread."""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(seconds * N.SAMPLE_RATE)) * 0.05).astype(np.float32)
    block = N.SAMPLE_RATE // N.FPS
    stream = N.NeuralMouth(model)
    per_block: list[float] = []
    frames = 0
    for start in range(0, len(audio), block):
        t0 = time.perf_counter()
        frames += len(stream.push(audio[start : start + block]))
        per_block.append((time.perf_counter() - t0) * 1000)
    mel_t0 = time.perf_counter()
    N.log_mel(audio, 0, len(audio) // N.HOP)
    mel_ms = (time.perf_counter() - mel_t0) * 1000 / max(frames, 1)
    return {
        "frames": frames,
        "ms_per_frame": stats(per_block[5:]),
        "features_ms_per_frame": mel_ms,
        "frame_budget_ms": 1000 / N.FPS,
        "model_bytes": N.MODEL_PATH.stat().st_size,
        "threads": 1,
    }


def emotion_examples(out: Path, settings: Settings) -> dict[str, object]:
    """One PNG per emotion after the face has eased in, and the voice each emotion gives."""
    from anima.render.animator import FaceAnimator
    from anima.render.avatar import prepare_avatar, sample_portrait
    from anima.tts.piper_voice import PiperTTS

    r = settings.render
    avatar = prepare_avatar(sample_portrait(), "sample", size=r.size, margin=r.face_margin)
    images, face = [], {}
    base = None
    for emotion in EMOTIONS:
        anim = FaceAnimator(avatar, size=r.size, fps=r.fps, seed=1, head_motion=0.0)
        for i in range(int(r.fps)):  # one second: fully blended
            img = anim.render(i, MouthShape(jaw_open=0.05, lip_width=0.35), False, emotion)
        Image.fromarray(img).save(out / f"lipsync_emotion_{emotion}.png")
        images.append(img)
        base = img if base is None else base
        face[emotion] = {
            "preset": dict(
                zip(
                    ("smile", "brow_raise", "brow_inner", "eye_open", "tilt", "head_down", "nod"),
                    face_expression(emotion).as_tuple(),
                    strict=True,
                )
            ),
            "mean_abs_pixel_change_vs_neutral": float(np.abs(img.astype(np.float32) - base).mean()),
        }
    Image.fromarray(np.hstack(images)).save(out / "lipsync_emotions.png")
    voice = PiperTTS(settings.voice.model)
    text = "Thank you for waiting. Your table is ready now."
    speech = {}
    for emotion in EMOTIONS:
        chunks = list(voice.synthesize(text, emotion=emotion))
        style = voice_style(emotion)
        speech[emotion] = {
            "length_scale": style.length,
            "noise_scale": style.noise,
            "noise_w_scale": style.noise_w,
            "pause_factor": style.pause,
            "seconds": sum(c.duration for c in chunks),
        }
    return {"face": face, "voice": speech, "pngs": [f"lipsync_emotion_{e}.png" for e in EMOTIONS]}


def _plot(out: Path, items, model: N.Audio2MouthModel, result: dict[str, object]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    speaker, pcm, sr, timings = items[0]
    truth = truth_track(pcm, sr, timings)
    x = N.to_16k(pcm, sr)
    pred = N.mouth_from_audio(x, model)[: len(truth)]
    times = np.arange(len(pred)) / N.FPS
    loud = loudness_envelope((x * 32767).astype(np.int16), N.SAMPLE_RATE, times, 2 / N.FPS)
    fig, axes = plt.subplots(3, 1, figsize=(10, 8))
    for ax, i in zip(axes[:2], (0, 3), strict=True):
        ax.plot(times, truth[: len(pred), i], label="truth (phoneme timings)")
        ax.plot(times, pred[:, i], label="neural")
        if i == 0:
            ax.plot(times, loud, label="loudness", alpha=0.6)
        ax.set_title(f"{PARAMS[i]} - {speaker} (held out)")
        ax.legend(loc="upper right", fontsize=8)
    clean = result["clean"]["all"]
    noisy = result["noisy"]["all"]
    w = 0.25
    xs = np.arange(len(PARAMS))
    axes[2].bar(xs - w, [clean["neural_corr"][p] for p in PARAMS], w, label="neural, clean")
    axes[2].bar(xs, [noisy["neural_corr"][p] for p in PARAMS], w, label="neural, noisy")
    axes[2].bar(xs + w, [clean["loudness_corr"][p] for p in PARAMS], w, label="loudness, clean")
    axes[2].set_xticks(xs, PARAMS)
    axes[2].set_ylabel("correlation with truth")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "lipsync.png", dpi=90)
    plt.close(fig)


def bench_lipsync(
    out: Path, settings: Settings, err: Console, emotions: bool = True, lang: str | None = None
) -> int:
    """Run the held-out evaluation, cost and emotion examples; write ``lipsync.json``.

    With ``lang`` (``--lang zh``): the network on that language pack's voices instead.
    """
    if lang:
        from anima.bench.lang import bench_lipsync_lang

        return bench_lipsync_lang(out, settings, err, lang)
    out.mkdir(parents=True, exist_ok=True)
    model = N.Audio2MouthModel(threads=1)
    with err.status("synthesising held-out speech"):
        items = held_out_speech(settings)
    with err.status("evaluating"):
        result: dict[str, object] = {
            "benchmark": "lipsync",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "held_out": {
                "espeak": [v for v, _, _ in ESPEAK_HELD_OUT],
                "piper_length_scale": PIPER_HELD_OUT_LENGTH,
                "sentences": len(HELD_OUT_SENTENCES),
            },
            "clean": evaluate(items, model, noisy=False),
            "noisy": evaluate(items, model, noisy=True),
            "inference": inference_cost(model),
        }
        _plot(out, items, model, result)
    with err.status("drive mode: delay and cost"):
        from anima.bench.drive import bench_drive

        result["drive"] = bench_drive(settings)
    if emotions:
        with err.status("emotion examples"):
            result["emotions"] = emotion_examples(out, settings)
    path = write_result(out, "lipsync", result)
    allc = result["clean"]["all"]
    err.print(f"wrote {path}")
    for p in PARAMS:
        err.print(
            f"{p:12s} neural r={allc['neural_corr'][p]:.3f} "
            f"(noisy {result['noisy']['all']['neural_corr'][p]:.3f}) "
            f"loudness r={allc['loudness_corr'][p]:.3f} lag={allc['neural_lag_frames'][p]}"
        )
    inf = result["inference"]
    err.print(
        f"inference {inf['ms_per_frame']['mean']:.2f} ms/frame (budget {inf['frame_budget_ms']:.0f} ms)"
    )
    for live in result["drive"]["latency"]:
        lat = live["capture_to_frame_ms"]
        err.print(
            f"drive ({live['media']}): capture to frame {lat['p50']:.0f} ms median, "
            f"{lat['p95']:.0f} ms p95 (floor {live['buffering_floor_ms']:.0f} ms); "
            f"{result['drive']['cost_ms_per_frame']['in_48000']['p50']:.2f} ms CPU a frame"
        )
    return 0
