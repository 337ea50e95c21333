"""The pipeline stage: microphone :class:`AudioFrame` in, transcripts and speech events out."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

from anima.asr.listener import (
    BargeInEvent,
    Final,
    Listener,
    ListenEvent,
    Partial,
    SpeechEnd,
    SpeechStart,
)
from anima.frames import AudioFrame, BargeIn, Frame, UserSpeech
from anima.pipeline import Stage


def to_frame(event: ListenEvent, turn: int) -> Frame:
    """The frame for a listener event, stamped with ``turn``.

    Transcripts take the turn of the audio being processed when they are ready, not of the
    audio they were heard in: after a barge-in bumps the turn, the user's own words must not be
    dropped as stale.
    """
    if isinstance(event, Partial | Final):
        return dataclasses.replace(event.transcript, turn=turn)
    if isinstance(event, SpeechStart):
        return UserSpeech(turn=turn, started=True, at=event.at)
    if isinstance(event, SpeechEnd):
        return UserSpeech(turn=turn, started=False, at=event.at)
    assert isinstance(event, BargeInEvent)
    return BargeIn(turn=event.turn, onset=event.onset, at=event.at)


class ListenStage(Stage):
    """Feeds each audio frame to a :class:`Listener`; yields what it heard as frames.

    :meth:`reset` keeps the listener: an interruption of the avatar's turn must not make it
    forget what the user is saying right now.
    """

    accepts = (AudioFrame,)

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Listen to one frame of microphone audio."""
        assert isinstance(frame, AudioFrame)
        for event in await self.listener.feed(frame.pcm, frame.sample_rate):
            yield to_frame(event, frame.turn)
