"""The pipeline stage that places speech on the audio clock and emits mouth frames."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import numpy as np

from anima.frames import AudioFrame, Frame, MediaClock, MouthFrame, SpeechChunk
from anima.lipsync import LipSync, PhonemeLipSync
from anima.lipsync.pitch import pitch_cues
from anima.pipeline import Stage


class LipSyncStage(Stage):
    """For each :class:`SpeechChunk`: its audio as an :class:`AudioFrame`, then its mouth frames.

    The stage owns the session's audio sample counter: audio pts are sample indices, and video
    frame indices follow from them through the :class:`MediaClock`, so the two never drift.
    The counter keeps running across interruptions (it is the session's clock, and pts must
    only grow); what the listener actually heard is the transport's to report.
    """

    accepts = (SpeechChunk,)

    def __init__(self, clock: MediaClock, lipsync: LipSync | None = None) -> None:
        self.clock = clock
        self.lipsync = lipsync or PhonemeLipSync()
        self.samples = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Emit the chunk's audio at the current sample position and the matching mouth frames."""
        assert isinstance(frame, SpeechChunk)
        start = self.samples
        self.samples += len(frame.pcm)
        yield AudioFrame(turn=frame.turn, pcm=frame.pcm, sample_rate=frame.sample_rate, pts=start)
        shapes = self.lipsync.shapes(frame, start, self.clock)
        if not shapes:
            return
        # The voice's pitch and a question's rising end go with the mouth to the face.
        sr, fps = self.clock.sample_rate, self.clock.fps
        times = (np.array([i for i, _, _ in shapes]) * sr / fps - start) / sr
        pitch, question = pitch_cues(frame.pcm, frame.sample_rate, times, frame.text)
        for (index, shape, speaking), p, q in zip(shapes, pitch, question, strict=True):
            shape = replace(shape, pitch=float(p), question=float(q))
            yield MouthFrame(
                turn=frame.turn, index=index, shape=shape, speaking=speaking, emotion=frame.emotion
            )
