"""Barge-in: the person talks over the avatar. The echo guard and the trigger.

When the client does no echo cancellation, the microphone hears the avatar's own voice, and
Silero rightly calls that speech. :class:`EchoGuard` keeps what the avatar is playing (the
reference, placed on the microphone's timeline) and, for each 32 ms microphone window, finds
the best normalised cross-correlation with the reference over lags of 0..``max_lag``. A high
value means the window is (mostly) the avatar's voice coming back; it is then not counted as
user speech. Geometry: with a pure echo plus the user's voice, the correlation is
sqrt(E_echo / (E_echo + E_user)), so at the default threshold 0.7 the user's voice counts once
it is about as loud at the microphone as the echo. For quieter users use a client with echo
cancellation (``duplex = "full"``) or half-duplex (``duplex = "half"``: the microphone is
ignored while the avatar speaks; no barge-in at all).

:class:`BargeInTrigger` fires once per avatar turn when user speech has lasted ``min_speech``
seconds while the avatar speaks, so a cough or a door does not cut the avatar off.
"""

from __future__ import annotations

from collections import deque

import numpy as np

RATE = 16_000
_TAPS = 16  # FIR length of the learnt echo path (1 ms at 16 kHz)
_PRE = 4  # taps before the bulk delay, for a delay estimate a few samples late


class EchoGuard:
    """The avatar's playback as a reference, and a test of mic windows against it."""

    def __init__(self, max_lag: float = 0.25, threshold: float = 0.7, tail: float = 0.3) -> None:
        self.max_lag = int(max_lag * RATE)
        self.threshold = threshold
        self._tail = int(tail * RATE)
        self._segments: deque[tuple[int, np.ndarray]] = deque()  # (start sample, pcm)
        self.last_correlation = 0.0
        # The echo path as learnt in clean echo windows: the bulk delay in samples and a short
        # FIR filter around it (the loudspeaker, the room's first reflections, the mic).
        self.lag = -1
        self.fir = np.zeros(_TAPS, np.float64)

    def play(self, pcm: np.ndarray, at: int) -> None:
        """The avatar plays 16 kHz float32 ``pcm`` starting at mic-timeline sample ``at``."""
        if len(pcm):
            if self._segments:
                last_start, last = self._segments[-1]
                at = max(at, last_start + len(last))  # queued playback follows what is queued
            self._segments.append((at, pcm.astype(np.float32, copy=False)))

    def playing_until(self) -> int:
        """Mic sample at which the queued playback ends (0 when nothing was played)."""
        if not self._segments:
            return 0
        start, pcm = self._segments[-1]
        return start + len(pcm)

    def speaking(self, at: int) -> bool:
        """True while playback covers sample ``at`` (or ended less than ``tail`` ago)."""
        if not self._segments:
            return False
        first = self._segments[0][0]
        return first <= at + self.max_lag and at < self.playing_until() + self._tail

    def clear(self) -> None:
        """Playback was cut (interruption): forget the queued reference."""
        self._segments.clear()

    def reference(self, start: int, n: int) -> np.ndarray:
        """Reference samples ``start``..``start+n`` on the mic timeline (zeros where silent)."""
        out = np.zeros(n, np.float32)
        while self._segments and self._segments[0][0] + len(self._segments[0][1]) < start - RATE:
            self._segments.popleft()  # a second behind the oldest lag we look at: done with it
        for seg_start, pcm in self._segments:
            lo, hi = max(start, seg_start), min(start + n, seg_start + len(pcm))
            if lo < hi:
                out[lo - start : hi - start] = pcm[lo - seg_start : hi - seg_start]
            if seg_start >= start + n:
                break
        return out

    def is_echo(self, window: np.ndarray, at: int) -> bool:
        """Whether the mic ``window`` starting at sample ``at`` is mostly the avatar's voice."""
        n = len(window)
        ref = self.reference(at - self.max_lag, n + self.max_lag)
        energy = float(window @ window)
        if energy < 1e-8 or float(ref @ ref) < 1e-8:
            self.last_correlation = 0.0
            return False
        size = 1 << int(np.ceil(np.log2(len(ref) + n)))
        # corr[k] = sum_i window[i] * ref[k + i]: every lag at once through the FFT.
        corr = np.fft.irfft(np.fft.rfft(ref, size) * np.conj(np.fft.rfft(window, size)), size)
        corr = corr[: len(ref) - n + 1]
        sq = np.concatenate([[0.0], np.cumsum(ref.astype(np.float64) ** 2)])
        ref_energy = sq[n:] - sq[:-n]
        ncc = corr / np.sqrt(np.maximum(ref_energy, 1e-12) * energy)
        ncc[ref_energy < 1e-8] = 0.0
        best = int(np.argmax(ncc))
        self.last_correlation = float(ncc[best])
        if self.last_correlation >= max(0.8, self.threshold):
            self._learn(window, at, self.max_lag - best)
        return self.last_correlation >= self.threshold

    def _taps(self, at: int, n: int, lag: int) -> np.ndarray:
        """(n, taps) matrix: column k is the reference delayed by lag - _PRE + k samples."""
        first = lag - _PRE  # smallest delay
        ref = self.reference(at - first - _TAPS + 1, n + _TAPS - 1).astype(np.float64)
        return np.lib.stride_tricks.sliding_window_view(ref, _TAPS)[:, ::-1]

    def _learn(self, window: np.ndarray, at: int, lag: int) -> None:
        """A clean echo window: fit the FIR by ridge least squares and smooth it over windows."""
        if lag < _PRE:
            lag = _PRE
        taps = self._taps(at, len(window), lag)
        gram = taps.T @ taps
        ridge = 1e-3 * np.trace(gram) / _TAPS + 1e-9
        fir = np.linalg.solve(gram + ridge * np.eye(_TAPS), taps.T @ window.astype(np.float64))
        self.fir = fir if abs(lag - self.lag) > 2 else 0.7 * self.fir + 0.3 * fir
        self.lag = lag

    def residual(self, window: np.ndarray, at: int) -> np.ndarray:
        """``window`` minus the echo predicted from the learnt path (the window if none yet).

        What remains is the user (and noise): the listener runs a second VAD on it, so a door
        banging over the avatar's voice is judged as a door, not as the voice underneath.
        """
        if self.lag < 0:
            return window
        echo = self._taps(at, len(window), self.lag) @ self.fir
        return (window - echo).astype(np.float32)


class BargeInTrigger:
    """Fires once per avatar turn after ``min_speech`` seconds of user speech during playback."""

    def __init__(self, min_speech: float = 0.12, gap: int = 1) -> None:
        self.min_samples = int(min_speech * RATE)
        self.gap = gap  # silent windows tolerated inside the run (a plosive's closure)
        self._onset = -1
        self._speech = 0
        self._silent = 0
        self._fired: set[int] = set()
        self.turn = -1

    def arm(self, turn: int) -> None:
        """The avatar is playing ``turn``; a barge-in may cut it once."""
        if turn != self.turn:
            self.turn = turn
            self._fired = {t for t in self._fired if t >= turn - 8}  # bounded bookkeeping

    @property
    def fired(self) -> bool:
        """True once this turn has been barged in on."""
        return self.turn in self._fired

    def step(self, speech: bool, at: int, n: int, speaking: bool) -> int | None:
        """One window of ``n`` samples at ``at``; returns the onset sample when it fires."""
        if not speaking or self.turn < 0 or self.turn in self._fired:
            self._onset, self._speech, self._silent = -1, 0, 0
            return None
        if speech:
            if self._onset < 0:
                self._onset = at
            self._speech += n
            self._silent = 0
        elif self._onset >= 0:
            self._silent += 1
            if self._silent > self.gap:
                self._onset, self._speech, self._silent = -1, 0, 0
        if self._onset >= 0 and self._speech >= self.min_samples:
            self._fired.add(self.turn)
            onset = self._onset
            self._onset, self._speech, self._silent = -1, 0, 0
            return onset
        return None
