"""Filling an :class:`~anima.air.program.Utterance` from the speaking pipeline's frames.

Shared by the live show and the engine session: both synthesise one utterance at a time while
the on-air loop plays it from the front. The caller starts the turn (and the task that feeds
its text into the pipeline); :func:`fill_utterance` consumes the pipeline's output for that
turn, always ends the feeder and closes the utterance, and hands back the errors so each caller
reports them its own way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from anima.air.program import Program, Utterance
from anima.frames import AudioFrame, Error, Frame, Interrupt, MouthFrame, TurnEnd


async def fill_utterance(
    frames: AsyncIterator[Frame],
    utt: Utterance,
    turn: int,
    *,
    feeder: asyncio.Task[Any],
    program: Program,
    caption: Callable[[int], str],
    on_audio: Callable[[AudioFrame], None] | None = None,
) -> list[Error]:
    """Add ``turn``'s audio and mouth shapes from ``frames`` to ``utt`` until the turn ends.

    Frames of other turns are skipped; an :class:`~anima.frames.Interrupt` of a later turn, an
    :class:`~anima.frames.Error` or the :class:`~anima.frames.TurnEnd` ends it. Each audio
    frame's sentence text comes from ``caption(turn)``; ``on_audio`` sees every audio frame of
    the turn before it is added. ``program`` is notified after each frame, so the player sees
    new content at once. Whatever happens (including cancellation), ``feeder`` is cancelled and
    awaited, ``utt`` is closed and ``program`` notified. Returns the error frames (at most one).
    """
    errors: list[Error] = []
    try:
        async with contextlib.aclosing(frames) as stream:
            async for frame in stream:
                if isinstance(frame, Interrupt) and frame.turn > turn:
                    break
                if frame.turn != turn:
                    continue
                if isinstance(frame, AudioFrame):
                    if on_audio is not None:
                        on_audio(frame)
                    utt.add_audio(frame.pcm, caption(turn))
                elif isinstance(frame, MouthFrame):
                    utt.add_mouth(frame.shape, frame.speaking)
                elif isinstance(frame, Error):
                    errors.append(frame)
                    break
                elif isinstance(frame, TurnEnd):
                    break
                program.notify()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        utt.closed = True
        program.notify()
    return errors


__all__ = ["fill_utterance"]
