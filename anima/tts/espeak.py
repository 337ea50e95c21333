"""espeak-ng through ctypes (library from ``espeakng-loader``): PCM plus per-phoneme timings.

Many speakers (voice variants), speeds and pitches for the lip-sync network's training data and
held-out tests; not a conversational voice (it sounds robotic). The phoneme events carry IPA
symbols (``espeakINITIALIZE_PHONEME_IPA``) and the audio position of each phoneme's start, so a
phoneme ends where the next one begins. ``espeakng-loader`` is a main dependency (the free
Mandarin voice, :mod:`anima.tts.espeak_voice`).
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anima.frames import PhonemeTiming
from anima.tts import VoiceError

_SYNCHRONOUS = 2
_PHONEME_EVENTS = 0x0001
_PHONEME_IPA = 0x0002
_DONT_EXIT = 0x8000
_EV_PHONEME = 7
_EV_END = 5
_RATE, _PITCH, _RANGE = 1, 3, 4
_MARKS = set("ˈˌːˑ")


class _Event(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [
            ("number", ctypes.c_int),
            ("name", ctypes.c_char_p),
            ("string", ctypes.c_char * 8),
        ]

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _Id),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass
class Utterance:
    """One synthesised sentence."""

    pcm: np.ndarray
    sample_rate: int
    timings: list[PhonemeTiming]


class _Library:
    """The loaded espeak-ng library: initialised once per process, with one audio callback."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise VoiceError("espeak-ng is not installed: pip install espeakng-loader") from exc

        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        # espeak wants the folder that contains espeak-ng-data.
        home = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self.lib.espeak_Initialize.restype = ctypes.c_int
        flags = _PHONEME_EVENTS | _PHONEME_IPA | _DONT_EXIT
        self.sample_rate = self.lib.espeak_Initialize(_SYNCHRONOUS, 0, home, flags)
        if self.sample_rate <= 0:
            raise VoiceError("espeak-ng failed to initialise")
        self.chunks: list[np.ndarray] = []
        self.events: list[tuple[int, str]] = []
        # Kept alive for the life of the process: the library calls it on every synthesis.
        self.callback = _CALLBACK(self._on_audio)
        self.lib.espeak_SetSynthCallback(self.callback)

    def _on_audio(self, wav: object, n: int, events: object) -> int:
        if n > 0 and wav:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != 0:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                sym = bytes(ev.id.string).split(b"\0")[0].decode("utf-8", "ignore")
                self.events.append((ev.audio_position, sym))
            i += 1
        return 0


# espeak-ng keeps its voice, parameters and callback in globals: one library per process, and
# one synthesis at a time across every thread (two engines loading at once crashed it).
_LOCK = threading.RLock()
_LIBRARY: _Library | None = None


def _library() -> _Library:
    global _LIBRARY
    with _LOCK:
        if _LIBRARY is None:
            _LIBRARY = _Library()
        return _LIBRARY


class Espeak:
    """espeak-ng for one caller; every instance shares the process's library and lock."""

    def __init__(self) -> None:
        self._shared = _library()
        self.sample_rate = self._shared.sample_rate

    def speak(self, text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> Utterance:
        """Speak ``text`` with ``voice`` (e.g. ``en-us+m3``) at ``rate`` words/min and ``pitch`` 0..100."""
        shared = self._shared
        with _LOCK:
            if shared.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise VoiceError(f"unknown espeak voice {voice!r}")
            shared.lib.espeak_SetParameter(_RATE, rate, 0)
            shared.lib.espeak_SetParameter(_PITCH, pitch, 0)
            shared.chunks, shared.events = [], []
            raw = text.encode() + b"\0"
            shared.lib.espeak_Synth(raw, len(raw), 0, 1, 0, 1, None, None)
            shared.lib.espeak_Synchronize()
            chunks, found = shared.chunks, shared.events
            shared.chunks, shared.events = [], []
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        end = len(pcm) / self.sample_rate
        timings: list[PhonemeTiming] = []
        events = sorted(found)
        prev = 0.0
        for k, (ms, sym) in enumerate(events):
            start = ms / 1000.0
            stop = events[k + 1][0] / 1000.0 if k + 1 < len(events) else end
            sym = "".join(ch for ch in sym if ch not in _MARKS) or "_"
            if start > prev + 1e-4:
                timings.append(PhonemeTiming("_", prev, start))
            if stop > start:
                timings.append(PhonemeTiming(sym, start, min(stop, end)))
                prev = min(stop, end)
        if prev < end:
            timings.append(PhonemeTiming("_", prev, end))
        return Utterance(pcm.astype(np.int16), self.sample_rate, timings)
