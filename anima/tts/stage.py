"""The pipeline stage that turns text chunks into speech chunks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator

import numpy as np

from anima.frames import Frame, SpeechChunk, TextChunk
from anima.pipeline import Stage, run_voice, run_voice_first
from anima.tts import Voice, speak


class SpeechError(RuntimeError):
    """The voice hung past its timeout or returned something that is not speech."""


def check_chunk(chunk: object) -> SpeechChunk:
    """``chunk`` if it is playable speech (1-D int16 PCM at a sane rate), else SpeechError."""
    if not isinstance(chunk, SpeechChunk):
        raise SpeechError(f"the voice returned {type(chunk).__name__}, not speech")
    pcm = chunk.pcm
    if not isinstance(pcm, np.ndarray) or pcm.ndim != 1 or pcm.dtype != np.int16:
        shape = getattr(pcm, "shape", None)
        dtype = getattr(pcm, "dtype", type(pcm).__name__)
        raise SpeechError(f"the voice returned audio of shape {shape} and type {dtype}")
    if not 8_000 <= int(chunk.sample_rate) <= 192_000:
        raise SpeechError(f"the voice returned audio at {chunk.sample_rate} Hz")
    return chunk


class SpeechStage(Stage):
    """Synthesises each :class:`TextChunk` off the event loop, one sentence at a time.

    ``timeout`` bounds each sentence: a voice that hangs fails the turn (an ``Error`` frame,
    hence an apology) instead of silencing the session for good. Its thread cannot be killed;
    it is left to finish on its own.
    """

    accepts = (TextChunk,)

    def __init__(self, voice: Voice, timeout: float | None = None) -> None:
        self.voice = voice
        self.timeout = timeout
        self._spoken_turn: int | None = None  # the turn whose first sentence is out

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield a :class:`SpeechChunk` per sentence of the text, as each is ready."""
        assert isinstance(frame, TextChunk)
        sentences = iter(speak(self.voice, frame.text, frame.turn, frame.emotion))
        while True:
            # The first sentence of a turn is what the visitor waits for: it goes first.
            run = run_voice_first if frame.turn != self._spoken_turn else run_voice
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation
                # that lands as the synthesis finishes, and the stage then never stops.
                async with asyncio.timeout(self.timeout):
                    chunk = await run(next, sentences, None)
            except TimeoutError:
                raise SpeechError(f"speech synthesis took over {self.timeout:g} s") from None
            if chunk is None:
                return
            self._spoken_turn = frame.turn
            yield check_chunk(chunk)


class Captions(Stage):
    """Notes each sentence's text on its way to lip-sync, for subtitles (audio frames carry none)."""

    accepts = (SpeechChunk,)

    def __init__(self) -> None:
        self.texts: deque[tuple[int, str]] = deque(maxlen=256)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Record the sentence and pass the chunk on."""
        assert isinstance(frame, SpeechChunk)
        self.texts.append((frame.turn, frame.text))
        yield frame

    def reset(self) -> None:
        """Forget sentences of interrupted turns."""
        self.texts.clear()

    def take(self, turn: int) -> str:
        """The text of the next sentence of ``turn`` ("" if unknown)."""
        while self.texts:
            t, text = self.texts.popleft()
            if t == turn:
                return text
        return ""
