"""The offline render job of ``anima say``: a text (or a speech file) into an MP4, no streaming.

It builds the speaking chain (text -> TTS -> lip-sync -> render) and drives it into an MP4
file as fast as the CPU allows. The conversation (a session) is :mod:`anima.engine`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anima.asr.listener import Listener
from anima.config import Settings
from anima.frames import (
    AudioFrame,
    BargeIn,
    Error,
    Frame,
    MediaClock,
    PhonemeTiming,
    SpeechChunk,
    TextChunk,
    TurnEnd,
    VideoFrame,
)
from anima.lipsync.stage import LipSyncStage
from anima.media import Mp4Writer, video_codec
from anima.pipeline import Pipeline
from anima.render.animator import FaceAnimator
from anima.render.avatar import Avatar
from anima.render.stage import RenderStage
from anima.render.video_avatar import animator_for
from anima.tts import Voice
from anima.tts.stage import SpeechStage

if TYPE_CHECKING:
    from anima.lipsync.neural import NeuralLipSync

log = logging.getLogger(__name__)

# Rough speaking rate used only to size the progress bar before the audio exists.
_SECONDS_PER_CHAR = 0.07


class SayError(RuntimeError):
    """The speaking chain failed; the message names the stage."""


@dataclass
class SayResult:
    """What ``say_to_file`` produced."""

    path: Path
    audio_seconds: float
    video_frames: int
    elapsed: float


def speaking_pipeline(voice: Voice, animator: FaceAnimator, clock: MediaClock) -> Pipeline:
    """text -> speech -> mouth frames (+ audio on the clock) -> video frames."""
    lipsync = LipSyncStage(clock, lipsync_for(voice))
    return Pipeline([SpeechStage(voice), lipsync, RenderStage(animator)], maxsize=16)


def lipsync_for(voice: Voice) -> NeuralLipSync | None:
    """The audio network for voices without phoneme timings (XTTS); None: phoneme lip-sync."""
    if getattr(voice, "phoneme_timings", True):
        return None
    from anima.lipsync.neural import NeuralLipSync

    return NeuralLipSync()


def silence(turn: int, seconds: float, sample_rate: int, samples: int | None = None) -> SpeechChunk:
    """A chunk of silence (idle face, closed mouth)."""
    n = samples if samples is not None else int(seconds * sample_rate)
    return SpeechChunk(
        turn=turn,
        pcm=np.zeros(n, np.int16),
        sample_rate=sample_rate,
        text="",
        phonemes=(PhonemeTiming("_", 0.0, n / sample_rate),),
    )


def check_text(text: str, settings: Settings) -> str:
    """The text to say, stripped; empty or over-long text is refused with a clear message."""
    text = " ".join(text.split())
    if not text:
        raise ValueError("the text is empty; give something to say")
    limit = settings.limits.max_text_chars
    if len(text) > limit:
        raise ValueError(f"the text is {len(text)} characters; the limit is {limit}")
    return text


async def say_to_file(
    text: str,
    avatar: Avatar,
    out: Path,
    voice: Voice,
    settings: Settings,
    *,
    lead_in: float = 0.4,
    lead_out: float = 0.5,
    on_progress: Callable[[float, float], None] | None = None,
) -> SayResult:
    """Render ``avatar`` speaking ``text`` into an MP4 at ``out``.

    The clip starts with ``lead_in`` seconds of idle face and ends with ``lead_out`` seconds, so
    it neither starts nor ends mid-word. ``on_progress(done_s, total_s)`` is called as frames
    are written (total is an estimate until the speech is known).
    """
    started = time.perf_counter()
    text = check_text(text, settings)
    r = settings.render
    sr = voice.sample_rate
    clock = MediaClock(sr, r.fps)
    animator = animator_for(avatar, r)
    estimate = lead_in + lead_out + len(text) * _SECONDS_PER_CHAR
    tmp = out.with_name(out.name + ".part.mp4")
    writer = Mp4Writer(
        tmp, r.size, r.fps, crf=r.crf, watermark=r.watermark, codec=video_codec(r.encoder, r.device)
    )
    try:
        async with speaking_pipeline(voice, animator, clock) as pipe:
            turn = pipe.next_turn()
            await pipe.push(silence(turn, lead_in, sr))
            await pipe.push(TextChunk(turn=turn, text=text))
            await pipe.push(TurnEnd(turn=turn))
            speech_samples = 0
            async for frame in pipe.frames():
                if isinstance(frame, AudioFrame):
                    writer.write_audio(frame)
                    speech_samples += len(frame.pcm)
                elif isinstance(frame, VideoFrame):
                    writer.write_video(frame)
                    if on_progress:
                        done = clock.frame_time(frame.index + 1)
                        on_progress(done, max(estimate, done))
                elif isinstance(frame, Error):
                    raise SayError(f"{frame.stage} failed: {frame.message}")
                elif isinstance(frame, TurnEnd) and frame.turn == turn:
                    if speech_samples > clock.sample_rate * lead_in + 1:
                        break
                    raise SayError("the voice produced no audio for this text")
            # Lead-out padded to a whole number of video frames, so audio and video end together.
            per_frame = sr // r.fps if sr % r.fps == 0 else None
            n = int(lead_out * sr)
            if per_frame:
                n += (-(speech_samples + n)) % per_frame
            await pipe.push(silence(turn, 0, sr, samples=n))
            await pipe.push(TurnEnd(turn=turn))
            async for frame in pipe.frames():
                if isinstance(frame, AudioFrame):
                    writer.write_audio(frame)
                elif isinstance(frame, VideoFrame):
                    writer.write_video(frame)
                elif isinstance(frame, TurnEnd):
                    break
        writer.close()
        tmp.replace(out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    total = writer.audio_samples / sr
    if on_progress:
        on_progress(total, total)
    return SayResult(out, total, writer.video_frames, time.perf_counter() - started)


async def say_audio_to_file(
    audio: Path,
    avatar: Avatar,
    out: Path,
    settings: Settings,
    *,
    lead_in: float = 0.4,
    lead_out: float = 0.5,
    on_progress: Callable[[float, float], None] | None = None,
) -> SayResult:
    """Render ``avatar`` lip-syncing the speech in the file ``audio`` into an MP4 at ``out``.

    There are no phoneme timings: the audio-to-mouth network (:mod:`anima.lipsync.neural`)
    drives the lips. The file is decoded to 16 kHz mono; silence pads both ends.
    """
    from anima.lipsync.audio_stage import AudioLimits, load_speech, speech_chunks
    from anima.lipsync.neural import SAMPLE_RATE, NeuralLipSync

    started = time.perf_counter()
    lim = settings.limits
    pcm = load_speech(
        audio,
        limits=AudioLimits(
            lim.max_audio_seconds,
            lim.max_audio_bytes,
            lim.max_audio_rate,
            lim.max_audio_channels,
            lim.decode_timeout,
        ),
    )
    r = settings.render
    sr = SAMPLE_RATE
    clock = MediaClock(sr, r.fps)
    pad_out = int(lead_out * sr)
    pad_out += (-(int(lead_in * sr) + len(pcm) + pad_out)) % max(1, sr // r.fps)
    pcm = np.concatenate([np.zeros(int(lead_in * sr), np.int16), pcm, np.zeros(pad_out, np.int16)])
    total = len(pcm) / sr
    animator = animator_for(avatar, r)
    tmp = out.with_name(out.name + ".part.mp4")
    writer = Mp4Writer(
        tmp, r.size, r.fps, crf=r.crf, watermark=r.watermark, codec=video_codec(r.encoder, r.device)
    )
    stages = [LipSyncStage(clock, NeuralLipSync()), RenderStage(animator)]
    try:
        async with Pipeline(stages, maxsize=16) as pipe:
            turn = pipe.next_turn()

            async def feed() -> None:
                # Pushing waits on the bounded queues, so it runs beside the reader below.
                for chunk in speech_chunks(pcm, turn, sr):
                    await pipe.push(chunk)
                await pipe.push(TurnEnd(turn=turn))

            feeder = asyncio.create_task(feed())
            try:
                async for frame in pipe.frames():
                    if isinstance(frame, AudioFrame):
                        writer.write_audio(frame)
                    elif isinstance(frame, VideoFrame):
                        writer.write_video(frame)
                        if on_progress:
                            on_progress(clock.frame_time(frame.index + 1), total)
                    elif isinstance(frame, Error):
                        raise SayError(f"{frame.stage} failed: {frame.message}")
                    elif isinstance(frame, TurnEnd) and frame.turn == turn:
                        break
            finally:
                feeder.cancel()
                await asyncio.gather(feeder, return_exceptions=True)
        writer.close()
        tmp.replace(out)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return SayResult(
        out, writer.audio_samples / sr, writer.video_frames, time.perf_counter() - started
    )


# --- listening: barge-in ----------------------------------------------------------------------


def avatar_played(listener: Listener, frame: AudioFrame) -> None:
    """Tell the listener the avatar is playing ``frame`` now.

    It becomes the echo guard's reference and arms barge-in for the frame's turn. Call it where
    audio leaves for the speaker or the client.
    """
    listener.play(frame.pcm, frame.sample_rate, frame.turn)


async def barge_in(speaking: Pipeline, frame: Frame, listener: Listener | None = None) -> bool:
    """Interrupt ``speaking`` if ``frame`` is a :class:`BargeIn` on its current turn.

    Returns True when it interrupted. A second barge-in on the same turn, or one on a turn that
    has already ended or been cut, is a no-op: one interruption per turn, however long the user
    talks over it. The listener forgets the playback reference that will now never play.
    """
    if not isinstance(frame, BargeIn) or frame.turn != speaking.turn:
        return False
    await speaking.interrupt("barge-in")
    if listener is not None:
        listener.stop_playback()
    return True
