"""Synthesise the lip-sync training set: speech + timing-derived mouth labels -> an .npz cache.

Recipe (seeded, repeatable): random sentences (``sentences.py``) spoken by the embedded Piper
voice at several length and noise scales, and by espeak-ng voices (several accents, voice
variants, speeds and pitches); silence before and after; labels from the phoneme timings
through the same :class:`~anima.lipsync.PhonemeLipSync` the engine uses (25 fps), computed on the
clean audio; then resampled to 16 kHz with random gain, coloured noise and synthetic room
reverberation, and turned into log-mel frames by :mod:`anima.lipsync.neural`.

Held out (never used here): espeak variants ``m7`` and ``f5`` with the ``en-gb-x-rp`` accent and
Piper at ``length_scale`` 1.45 -- ``anima bench lipsync`` tests on those.

    .venv/bin/python training/make_data.py --out training/cache/train.npz
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sentences import sentences  # noqa: E402
from sentences_zh import sentences_zh  # noqa: E402

from anima.frames import MediaClock, PhonemeTiming, SpeechChunk  # noqa: E402
from anima.lipsync import PhonemeLipSync  # noqa: E402
from anima.lipsync import neural as N  # noqa: E402

SEED = 1234
ESPEAK_ACCENTS = ["en-us", "en", "en-029", "en-gb-scotland", "en-gb-x-gbclan"]
ESPEAK_VARIANTS = [
    "",
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "f1",
    "f2",
    "f3",
    "f4",
    "klatt",
    "klatt3",
]
PIPER_LENGTHS = [0.8, 0.9, 1.0, 1.1, 1.25]
ZH_LENGTHS = [0.8, 0.9, 1.0, 1.1, 1.25]  # Mandarin voices (espeak cmn-latn-pinyin, zh-baker)


def chunked(chunks) -> tuple[np.ndarray, list[PhonemeTiming]]:
    """One PCM array and one timing list from a voice's per-sentence chunks."""
    pcm = np.concatenate([c.pcm for c in chunks])
    timings, off = [], 0.0
    for c in chunks:
        timings += [PhonemeTiming(t.phoneme, t.start + off, t.end + off) for t in c.phonemes]
        off += c.duration
    return pcm, timings


def mandarin(n_espeak: int, n_baker: int, rng: random.Random):
    """(pcm, rate, timings, source) from both Mandarin voices, bench sentences left out."""
    from anima.lang import get_pack
    from anima.tts.baker_voice import BakerVoice
    from anima.tts.espeak_voice import EspeakVoice

    held_out = tuple(get_pack("zh").bench["sentences"])
    texts = sentences_zh(n_espeak + n_baker, SEED + 1, held_out)
    voices: dict[float, object] = {}
    for i, text in enumerate(texts):
        length = rng.choice(ZH_LENGTHS)
        if i < n_espeak:
            voice = EspeakVoice("zh", length_scale=length, pitch=rng.randint(20, 85))
            source = "zh-espeak"
        else:
            if length not in voices:
                voices[length] = BakerVoice(length_scale=length, threads=1)
            voice, source = voices[length], "zh-baker"
        chunks = list(voice.synthesize(text))
        if chunks:
            pcm, timings = chunked(chunks)
            yield pcm, voice.sample_rate, timings, source


def label(pcm: np.ndarray, sr: int, timings: list[PhonemeTiming]) -> np.ndarray:
    """Mouth parameters (frames, 4) at 25 fps, exactly as the phoneme lip-sync makes them."""
    chunk = SpeechChunk(turn=0, pcm=pcm, sample_rate=sr, text="", phonemes=tuple(timings))
    rows = PhonemeLipSync().shapes(chunk, 0, MediaClock(sr, N.FPS))
    return np.array([s.as_array() for _, s, _ in rows], np.float32)


def pad(pcm: np.ndarray, sr: int, timings: list[PhonemeTiming], rng: random.Random):
    """Random silence before and after, with the timings shifted to match."""
    a, b = int(rng.uniform(0.05, 0.6) * sr), int(rng.uniform(0.1, 0.6) * sr)
    out = np.concatenate([np.zeros(a, np.int16), pcm, np.zeros(b, np.int16)])
    t0, end = a / sr, len(out) / sr
    shifted = [PhonemeTiming("_", 0.0, t0)]
    shifted += [PhonemeTiming(t.phoneme, t.start + t0, t.end + t0) for t in timings]
    shifted.append(PhonemeTiming("_", shifted[-1].end, end))
    return out, shifted


def coloured_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink or brown-ish noise, unit RMS."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec)) + 1.0
    spec /= f ** rng.choice([0.0, 0.5, 1.0])
    x = np.fft.irfft(spec, n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-9)).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Convolve with a synthetic room response (exponentially decaying noise, RT60 0.15-0.6 s)."""
    from scipy.signal import fftconvolve

    rt60 = rng.uniform(0.15, 0.6)
    n = int(rt60 * N.SAMPLE_RATE)
    t = np.arange(n) / N.SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * rng.uniform(0.1, 0.5)
    ir[0] = 1.0
    y = fftconvolve(x, ir)[: len(x)]
    return (y / (np.abs(y).max() + 1e-9) * np.abs(x).max()).astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, strength: float = 1.0) -> np.ndarray:
    """Gain, reverberation and noise at random, as a microphone in a room would add."""
    if rng.random() < 0.5 * strength:
        x = reverb(x, rng)
    if rng.random() < 0.7 * strength:
        speech_rms = (
            np.sqrt(np.mean(x[np.abs(x) > 0.01] ** 2)) if np.any(np.abs(x) > 0.01) else 0.05
        )
        snr = rng.uniform(5, 35)
        x = x + coloured_noise(len(x), rng) * speech_rms * 10 ** (-snr / 20)
    x = x * 10 ** (rng.uniform(-18, 3) / 20)
    return np.clip(x, -1, 1).astype(np.float32)


def features(x16: np.ndarray) -> np.ndarray:
    """All log-mel frames the video frames of ``x16`` need (look-ahead past the end = silence)."""
    n = N.frames_for(len(x16))
    return N.log_mel(x16, 0, n * N.PER_FRAME + N.AHEAD + 1)


def main() -> None:
    """Build the cache."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("training/cache/train.npz"))
    ap.add_argument("--piper", type=int, default=360)
    ap.add_argument("--espeak", type=int, default=480)
    ap.add_argument("--zh-espeak", type=int, default=0, help="Mandarin espeak-ng utterances")
    ap.add_argument("--zh-baker", type=int, default=0, help="Mandarin zh-baker utterances")
    args = ap.parse_args()
    rng = random.Random(SEED)
    nrng = np.random.default_rng(SEED)
    texts = sentences(args.piper + args.espeak, SEED)
    from piper import SynthesisConfig

    from anima.tts.espeak import Espeak
    from anima.tts.piper_voice import PiperTTS

    piper = PiperTTS(sentence_silence=0.0)
    espeak = Espeak()
    mels, labels, sources = [], [], []
    started = time.perf_counter()

    def english():
        for i, text in enumerate(texts):
            if i < args.piper:
                piper._config = SynthesisConfig(  # training-only: vary the voice's randomness
                    length_scale=rng.choice(PIPER_LENGTHS),
                    noise_scale=rng.uniform(0.3, 0.9),
                    noise_w_scale=rng.uniform(0.4, 1.0),
                )
                chunks = list(piper.synthesize(text))
                if chunks:
                    pcm, timings = chunked(chunks)
                    yield pcm, piper.sample_rate, timings, "piper"
            else:
                accent, variant = rng.choice(ESPEAK_ACCENTS), rng.choice(ESPEAK_VARIANTS)
                voice = accent + (f"+{variant}" if variant else "")
                rate, pitch = rng.randint(120, 240), rng.randint(20, 85)
                u = espeak.speak(text, voice, rate=rate, pitch=pitch)
                yield u.pcm, u.sample_rate, u.timings, "espeak"

    total = len(texts) + args.zh_espeak + args.zh_baker
    items = itertools.chain(english(), mandarin(args.zh_espeak, args.zh_baker, rng))
    for i, (pcm, sr, timings, source) in enumerate(items):
        pcm, timings = pad(pcm, sr, timings, rng)
        y = label(pcm, sr, timings)
        x16 = augment(N.to_16k(pcm, sr), nrng)
        mel = features(x16)
        assert len(y) == N.frames_for(len(x16)) or abs(len(y) - N.frames_for(len(x16))) <= 1
        n = min(len(y), N.frames_for(len(x16)))
        mels.append(mel[: n * N.PER_FRAME + N.AHEAD + 1].astype(np.float16))
        labels.append(y[:n])
        sources.append(source)
        if i % 50 == 0:
            print(f"{i}/{total} {time.perf_counter() - started:.0f}s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    mel_len = np.array([len(m) for m in mels])
    lab_len = np.array([len(y) for y in labels])
    np.savez_compressed(
        args.out,
        mel=np.concatenate(mels),
        mel_len=mel_len,
        label=np.concatenate(labels),
        label_len=lab_len,
        source=np.array(sources),
    )
    print(
        f"{len(labels)} utterances, {lab_len.sum() / N.FPS / 60:.1f} min of speech, "
        f"{time.perf_counter() - started:.0f}s"
    )


if __name__ == "__main__":
    main()
