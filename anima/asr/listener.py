"""The streaming listener: PCM in; speech start/end, partial and final transcripts out.

Per 32 ms window: Silero VAD (inline, ~0.15 ms), the echo guard against the avatar's playback,
the barge-in trigger and the :class:`~anima.asr.segmenter.Segmenter`. Whisper decodes run one
at a time in the executor, owned by the listener (not by the caller), in priority order:
finals, then the speculative final started at the first silent window, then partials. A
partial is skipped rather than queued behind another decode, so partials cannot starve a
final, and a partial finishing after its utterance's final is dropped, so partials always
come first.

The speculative decode is what makes finals fast: the endpoint window (≤ 250 ms of silence)
and the decode overlap; if the person does not resume, the final is that decode, already done
or nearly so. Endpoint delay, final latency and real-time factor go to Prometheus and onto the
:class:`Final` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from prometheus_client import Counter, Histogram

from anima.asr.audio import RATE, Resampler, resample
from anima.asr.bargein import BargeInTrigger, EchoGuard
from anima.asr.segmenter import (
    Ended,
    PartialDue,
    Paused,
    Resumed,
    Segmenter,
    SegmenterConfig,
    Started,
)
from anima.asr.vad import WINDOW, SileroModel, VadStream
from anima.asr.whisper import Recognition
from anima.frames import Transcript
from anima.pipeline import Clock, MonotonicClock, run_voice, run_voice_first

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5)
ENDPOINT_DELAY = Histogram(
    "anima_asr_endpoint_delay_seconds",
    "Silence waited between the end of speech and the end of the utterance.",
    buckets=_LATENCY_BUCKETS,
)
FINAL_LATENCY = Histogram(
    "anima_asr_final_latency_seconds",
    "From the end of the utterance to its final transcript.",
    buckets=_LATENCY_BUCKETS,
)
DECODE_RTF = Histogram(
    "anima_asr_rtf",
    "Whisper compute time divided by the audio length, per decode.",
    ["kind"],
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2),
)
BARGE_INS = Counter("anima_asr_barge_ins_total", "Barge-ins detected while the avatar spoke.")
UTTERANCES = Counter("anima_asr_utterances_total", "Utterances ended, by reason.", ["reason"])

_MAX_PENDING_FINALS = 2  # beyond this, feed() waits: memory stays bounded when ASR lags


class Recognizer(Protocol):
    """What the listener needs from a speech recogniser."""

    def transcribe(self, audio: np.ndarray, prompt: str = "") -> Recognition:
        """Text of one 16 kHz float32 utterance."""
        ...


@dataclass(frozen=True)
class ListenerConfig:
    """Listener options; :func:`anima.asr.listener_config` builds one from the settings."""

    segmenter: SegmenterConfig = SegmenterConfig()
    speculative: bool = True
    duplex: str = "echo_guard"  # echo_guard | full | half
    barge_in: float = 0.12
    echo_threshold: float = 0.7
    echo_max_lag: float = 0.25
    decode_timeout: float | None = None  # seconds one decode may take; None: no limit


@dataclass(frozen=True)
class UtteranceMetrics:
    """Timings of one utterance (seconds)."""

    endpoint_delay: float
    """Audio time from the end of speech to the end of the utterance."""
    asr_latency: float
    """Clock time from the end of the utterance to its final transcript."""
    decode_seconds: float
    audio_seconds: float
    rtf: float
    speculative: bool
    """The final is the speculative decode started at the first silent window."""
    partials: int


@dataclass(frozen=True)
class SpeechStart:
    """The user started speaking at ``at`` seconds (listener input clock)."""

    at: float


@dataclass(frozen=True)
class SpeechEnd:
    """The utterance that began at ``start`` ended at ``at``; ``reason``: silence|max_length|flush."""

    at: float
    start: float
    reason: str


@dataclass(frozen=True)
class Partial:
    """A hypothesis of the utterance in progress."""

    transcript: Transcript


@dataclass(frozen=True)
class Final:
    """The transcript of a finished utterance, with its timings."""

    transcript: Transcript
    metrics: UtteranceMetrics


@dataclass(frozen=True)
class BargeInEvent:
    """User speech over the avatar's ``turn`` that began at ``onset`` and fired at ``at``."""

    turn: int
    onset: float
    at: float


@dataclass(frozen=True)
class DecodeFailed:
    """The recogniser raised, hung past ``decode_timeout`` or returned garbage on a final.

    The utterance's :class:`Final` still follows (with empty text), so the turn is closed.
    """

    message: str


ListenEvent = SpeechStart | SpeechEnd | Partial | Final | BargeInEvent | DecodeFailed


@dataclass
class _Job:
    kind: str  # final | speculative | partial
    uid: int
    audio: np.ndarray
    pause: int = -1
    ended: Ended | None = None
    ended_at: float = 0.0  # clock time the utterance ended (finals)
    end: int = 0  # stream sample where the job's audio ends
    result: Recognition | None = None


class Listener:
    """One audio stream being listened to. Call :meth:`feed` from one task."""

    def __init__(
        self,
        recognizer: Recognizer,
        config: ListenerConfig | None = None,
        *,
        clock: Clock | None = None,
        vad: SileroModel | None = None,
    ) -> None:
        self.recognizer = recognizer
        self.config = c = config or ListenerConfig()
        self.clock: Clock = clock or MonotonicClock()
        self.segmenter = Segmenter(c.segmenter)
        self._vad = VadStream(vad)
        self._vad_residual = VadStream(vad)  # on the mic minus the predicted echo
        self._was_speaking = False
        self._resample = Resampler()
        self._pending = np.zeros(0, np.float32)
        # (stream sample a chunk brought the input up to, clock time it arrived): the end of an
        # utterance is timed from when its audio came in, not from when it was processed.
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=512)
        self._received = 0.0
        self._echo = EchoGuard(c.echo_max_lag, c.echo_threshold)
        self._trigger = BargeInTrigger(c.barge_in)
        self._ready: list[ListenEvent] = []
        self._finals: deque[_Job] = deque()
        self._speculative: _Job | None = None
        self._partial: _Job | None = None
        self._running: _Job | None = None
        self._task: asyncio.Task[None] | None = None
        self._done_finals: set[int] = set()  # uids whose final was emitted (bounded below)
        self._partials: dict[int, int] = {}  # uid -> partials emitted
        self._onsets: dict[int, int] = {}  # uid -> sample where its speech began
        self._spec_results: dict[tuple[int, int], Recognition] = {}
        self.echo_windows = 0  # windows the echo guard took for the avatar's voice
        self._partial_cost = 0.0  # compute seconds of the last partial decode
        self._last_partial_at = 0  # stream sample where the last partial was taken

    # -- input -----------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """Seconds of audio processed so far."""
        return self.segmenter.position / RATE

    @property
    def held_samples(self) -> int:
        """Samples of audio held in memory by this listener (bounded)."""
        queued = sum(len(j.audio) for j in self._finals)
        return self.segmenter.held_samples + len(self._pending) + queued

    @property
    def deciding(self) -> bool:
        """True while the end of the utterance waits for the decode of the speech so far."""
        return self.segmenter.awaiting

    def play(self, pcm: np.ndarray, sample_rate: int, turn: int) -> None:
        """The avatar is playing ``pcm`` of ``turn`` now (the echo reference; arms barge-in)."""
        audio = resample(pcm, sample_rate)
        self._echo.play(audio, self.segmenter.position + len(self._pending))
        self._trigger.arm(turn)

    def stop_playback(self) -> None:
        """The avatar's playback was cut; forget the queued reference."""
        self._echo.clear()

    async def feed(
        self, pcm: np.ndarray, sample_rate: int, channels: int = 1, at: float | None = None
    ) -> list[ListenEvent]:
        """Process PCM (any rate, int16 or float32); return the events that are ready now.

        ``at`` is the clock time the chunk arrived (default: now). A caller that queues audio
        passes it, so the time a turn reports counts the queue too.

        Raises :class:`~anima.asr.audio.AudioError` on unusable input; the stream stays usable.
        """
        audio = self._resample(pcm, sample_rate, channels)
        if sample_rate > 0 and channels > 0:
            self._received += np.asarray(pcm).size // channels * RATE / sample_rate
            self._arrivals.append((self._received, self.clock.now() if at is None else at))
        self._process(audio)
        # Back-pressure: when decoding falls behind, wait instead of queueing more audio.
        while len(self._finals) > _MAX_PENDING_FINALS and self._task is not None:
            await asyncio.shield(self._task)
        return self._take()

    async def flush(self) -> list[ListenEvent]:
        """End of stream: close the open utterance and wait for every pending final."""
        tail = self._resample.flush()
        if len(tail):
            self._process(tail)
        if len(self._pending):
            pad = np.zeros(WINDOW - len(self._pending), np.float32)
            self._process(pad)
        self._handle(self.segmenter.flush())
        while self._task is not None or self._finals:
            if self._task is not None:
                await asyncio.shield(self._task)
            else:
                self._pump()
        return self._take()

    async def drain(self) -> list[ListenEvent]:
        """Wait until no decode is running or queued; return the events that are then ready.

        For callers that feed faster than real time but want every partial (tests, tools).
        """
        while self._task is not None:
            await asyncio.shield(self._task)
        return self._take()

    async def aclose(self) -> None:
        """Cancel a decode in flight (its result is dropped)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    # -- windows ---------------------------------------------------------------------------

    def _process(self, audio: np.ndarray) -> None:
        if not len(audio):
            return
        data = np.concatenate([self._pending, audio]) if len(self._pending) else audio
        whole = len(data) // WINDOW * WINDOW
        self._pending = data[whole:].copy()
        if not whole:
            return
        probs = self._vad(data[:whole])
        for i, prob in enumerate(probs):
            window = data[i * WINDOW : (i + 1) * WINDOW]
            self._window(window, float(prob))
        self._pump()

    def _window(self, window: np.ndarray, prob: float) -> None:
        at = self.segmenter.position
        c = self.config
        speaking = self._echo.speaking(at)
        if speaking and not self._was_speaking:
            self._vad_residual.reset()
        self._was_speaking = speaking
        if speaking and c.duplex == "half":
            prob = 0.0  # half-duplex: the microphone is deaf while the avatar talks
        elif speaking and c.duplex == "echo_guard":
            # User speech = speech left after removing the echo, in a window that is not
            # itself mostly echo. Both checks: the learnt echo path is never exact.
            echo = self._echo.is_echo(window, at)
            residual = float(self._vad_residual(self._echo.residual(window, at))[0])
            if prob >= c.segmenter.threshold and (echo or residual < c.segmenter.threshold):
                self.echo_windows += 1
            prob = 0.0 if echo else min(prob, residual)
        speech = prob >= c.segmenter.threshold
        if c.duplex != "half":
            onset = self._trigger.step(speech, at, WINDOW, speaking)
            if onset is not None:
                BARGE_INS.inc()
                self._ready.append(
                    BargeInEvent(self._trigger.turn, onset / RATE, (at + WINDOW) / RATE)
                )
        if speaking and not self._trigger.fired and not self.segmenter.in_utterance:
            # Over the avatar's voice, only speech long enough to barge in opens an utterance
            # (its start is still in the pre-roll): a cough is not a question.
            prob = 0.0
        self._handle(self.segmenter.step(window, prob))

    def _arrived(self, sample: int) -> float:
        """Clock time the input holding stream ``sample`` arrived (now, if it is not known)."""
        for end, at in self._arrivals:
            if end >= sample:
                return at
        return self.clock.now()

    def _handle(self, events: list) -> None:
        for ev in events:
            if isinstance(ev, Started):
                self._partials[ev.uid] = 0
                self._onsets[ev.uid] = ev.onset
                self._ready.append(SpeechStart(ev.onset / RATE))
            elif isinstance(ev, PartialDue):
                # Partials of a long utterance cost more; space them so they keep at most about
                # a third of the CPU, and a pause rarely finds one still running.
                spacing = 3.0 * self._partial_cost * RATE
                if self.segmenter.position - self._last_partial_at >= spacing:
                    end = self.segmenter.position
                    self._partial = _Job("partial", ev.uid, ev.audio, end=end)
                    self._last_partial_at = end
            elif isinstance(ev, Paused) and self.config.speculative:
                end = self.segmenter.position
                self._speculative = _Job("speculative", ev.uid, ev.audio, pause=ev.pause, end=end)
                self._partial = None
                self.segmenter.awaiting = True
            elif isinstance(ev, Resumed):
                self.segmenter.awaiting = False
                if self._speculative is not None and self._speculative.pause == ev.pause:
                    self._speculative = None
            elif isinstance(ev, Ended):
                self._ended(ev)

    def _ended(self, ev: Ended) -> None:
        UTTERANCES.labels(ev.reason).inc()
        self._ready.append(SpeechEnd(ev.end / RATE, ev.start / RATE, ev.reason))
        if self._partial is not None and self._partial.uid == ev.uid:
            self._partial = None
        job = _Job("final", ev.uid, ev.audio, ev.pause, ev, self._arrived(ev.end))
        spec = self._speculative
        if spec is not None and spec.uid == ev.uid and spec.pause == ev.pause >= 0:
            job.audio = spec.audio  # the speculation has not started: decode it as the final
            self._speculative = None
        self._finals.append(job)

    # -- decoding --------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start the next decode if none is running: finals, then speculation, then partials."""
        if self._task is not None:
            return
        job: _Job | None = None
        while self._finals:
            head = self._finals[0]
            reuse = self._spec_results.pop((head.uid, head.pause), None)
            if reuse is None:
                break
            self._finals.popleft()
            head.result = reuse
            self._emit_final(head, speculative=True)
        if self._finals:
            job = self._finals.popleft()
        elif self._speculative is not None:
            job, self._speculative = self._speculative, None
        elif self._partial is not None:
            job, self._partial = self._partial, None
        if job is None:
            return
        self._running = job
        self._task = asyncio.get_running_loop().create_task(self._decode(job))

    async def _decode(self, job: _Job) -> None:
        failed = ""
        try:
            # The timeout frees the listener, not the executor thread: a recogniser that hangs
            # for good keeps its thread, but the conversation goes on without it.
            # (asyncio.timeout: 3.11's wait_for can swallow a cancellation.)
            async with asyncio.timeout(self.config.decode_timeout):
                # A final (or the speculative one) is what the visitor waits on; partials
                # are not, and must not slow the listening face down.
                run = run_voice if job.kind == "partial" else run_voice_first
                result = await run(self.recognizer.transcribe, job.audio)
            if not isinstance(result, Recognition) or not isinstance(result.text, str):
                raise TypeError(f"the recogniser returned {type(result).__name__}, not text")
            job.result = result
        except TimeoutError:
            failed = f"speech recognition took over {self.config.decode_timeout:g} s"
        except Exception as exc:  # a failed decode must not stop listening
            failed = f"speech recognition failed: {exc}"
        finally:
            self._task = None
            self._running = None
        if failed:
            log.warning("ASR %s decode: %s", job.kind, failed)
            job.result = Recognition("", "", len(job.audio) / RATE, 0.0)
            if job.kind != "final":
                self._pump()  # a lost partial or speculation is only a missed shortcut
                return
            self._ready.append(DecodeFailed(failed))
        self._finished(job)
        self._pump()

    def _finished(self, job: _Job) -> None:
        rec = job.result
        assert rec is not None
        if rec.audio_seconds > 0:
            DECODE_RTF.labels(job.kind).observe(rec.compute_seconds / rec.audio_seconds)
        if job.kind == "partial":
            self._partial_cost = rec.compute_seconds
            if job.uid in self._done_finals or not rec.text:
                return
            self._partials[job.uid] = self._partials.get(job.uid, 0) + 1
            if job.uid == self._current_uid():
                self.segmenter.hypothesis = rec.text
                self.segmenter.hypothesis_end = job.end
            start = self._onsets.get(job.uid, 0) / RATE
            self._ready.append(
                Partial(Transcript(0, rec.text, False, start, self.position, rec.language))
            )
        elif job.kind == "speculative":
            if self.segmenter.in_utterance and job.uid == self._current_uid():
                # Lets the policy end a whole sentence at once, or wait after "because".
                self.segmenter.hypothesis = rec.text
                self.segmenter.hypothesis_end = job.end
                self.segmenter.awaiting = False
            self._spec_results[(job.uid, job.pause)] = rec
            while len(self._spec_results) > 4:  # only the newest can still be reused
                self._spec_results.pop(next(iter(self._spec_results)))
        else:
            self._emit_final(job, speculative=False)

    def _current_uid(self) -> int:
        return self.segmenter._uid  # noqa: SLF001 - the segmenter is ours

    def _emit_final(self, job: _Job, speculative: bool) -> None:
        rec, ev = job.result, job.ended
        assert rec is not None and ev is not None
        latency = max(0.0, self.clock.now() - job.ended_at)
        delay = (ev.end - ev.speech_end) / RATE
        ENDPOINT_DELAY.observe(delay)
        FINAL_LATENCY.observe(latency)
        self._done_finals.add(job.uid)
        if len(self._done_finals) > 64:
            self._done_finals = {u for u in self._done_finals if u > job.uid - 32}
        metrics = UtteranceMetrics(
            endpoint_delay=delay,
            asr_latency=latency,
            decode_seconds=rec.compute_seconds,
            audio_seconds=rec.audio_seconds,
            rtf=rec.compute_seconds / rec.audio_seconds if rec.audio_seconds else 0.0,
            speculative=speculative,
            partials=self._partials.pop(job.uid, 0),
        )
        start = self._onsets.pop(job.uid, ev.start) / RATE
        end = max(ev.speech_end / RATE, start)
        self._ready.append(Final(Transcript(0, rec.text, True, start, end, rec.language), metrics))

    def _take(self) -> list[ListenEvent]:
        out, self._ready = self._ready, []
        return out
