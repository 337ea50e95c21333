"""The pipeline stage that turns text chunks into speech chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from anima.frames import Frame, SpeechChunk, TextChunk
from anima.pipeline import Stage, run_blocking
from anima.tts import Voice, speak


class SpeechStage(Stage):
    """Synthesises each :class:`TextChunk` off the event loop, one sentence at a time."""

    accepts = (TextChunk,)

    def __init__(self, voice: Voice) -> None:
        self.voice = voice

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield a :class:`SpeechChunk` per sentence of the text, as each is ready."""
        assert isinstance(frame, TextChunk)
        sentences = iter(speak(self.voice, frame.text, frame.turn, frame.emotion))
        while True:
            chunk: SpeechChunk | None = await run_blocking(next, sentences, None)
            if chunk is None:
                return
            yield chunk
