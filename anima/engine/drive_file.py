"""A recording (or a live PCM stream) through a drive session into an MP4 (``anima drive``).

The audio goes into a drive session (:mod:`anima.engine.drive`) in :data:`BLOCK`-second blocks,
paced as a live microphone would deliver them unless ``realtime`` is off, and the avatar's
output (the same audio, lips moving to it) is written to an MP4 file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import numpy as np

    from anima.config import Settings

BLOCK = 0.02  # seconds per pushed block: what a live microphone delivers at a time
MAX_SECONDS = 3600.0  # longest input
_AHEAD = 1.0  # seconds the input may run ahead of the written output (--fast back-pressure)


class DriveInputError(ValueError):
    """The input cannot drive the avatar (not audio, wrong rate, ragged PCM, too long)."""


async def drive_to_file(
    blocks: Iterator[np.ndarray],
    rate: int,
    avatar: object,
    output: Path,
    settings: Settings,
    *,
    realtime: bool = True,
) -> tuple[int, float]:
    """Push ``blocks`` (int16 mono at ``rate``) into a drive session; (video frames, seconds).

    Live pacing: block ``i`` is pushed when its audio would have been captured. The pushes
    never run more than :data:`_AHEAD` of what is written, so ``--fast`` output never overflows
    the session's bounded queue.
    """
    from anima.engine import Engine
    from anima.frames import AudioFrame, VideoFrame
    from anima.media import Mp4Writer
    from anima.pipeline import run_blocking

    engine = Engine.from_config(settings)
    try:
        session = engine.session(avatar, media="video", realtime=realtime, drive=True)  # type: ignore[arg-type]
        async with session:
            written = asyncio.Event()
            done = {"frames": 0, "samples": 0}

            async def push() -> None:
                loop = asyncio.get_running_loop()
                t0 = loop.time()
                pushed = 0
                source = iter(blocks)
                try:
                    # The next block comes from a thread: reading stdin waits for the producer,
                    # and the on-air loop and the writer must go on meanwhile.
                    while (block := await run_blocking(next, source, None)) is not None:
                        if realtime:
                            await asyncio.sleep(max(0.0, t0 + pushed / rate - loop.time()))
                        while (pushed / rate - _AHEAD) * session.fps > done["frames"]:
                            written.clear()
                            await written.wait()
                        session.push_audio(block, rate)
                        pushed += len(block)
                        await asyncio.sleep(0)  # let the on-air loop take what is ready
                finally:
                    with contextlib.suppress(RuntimeError):  # closed already: nothing to end
                        session.end_audio()  # also on bad input: the output ends, then the error

            pusher = asyncio.create_task(push(), name="drive-push")
            try:
                with Mp4Writer(output, settings.render.size, session.fps) as writer:
                    async for item in session.frames():
                        if isinstance(item, AudioFrame):
                            await run_blocking(writer.write_audio, item)
                            done["samples"] += len(item.pcm)
                        elif isinstance(item, VideoFrame):
                            await run_blocking(writer.write_video, item)
                            done["frames"] += 1
                            written.set()
            finally:
                if not pusher.done():
                    pusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pusher
            if not pusher.cancelled() and (failure := pusher.exception()) is not None:
                raise failure
            return done["frames"], done["samples"] / session.sample_rate
    finally:
        await engine.aclose()


def read_audio(path: Path, max_seconds: float = MAX_SECONDS) -> tuple[np.ndarray, int]:
    """The first audio stream of ``path`` as mono int16 at its own rate (no resampling)."""
    import av
    import numpy as np

    if not path.is_file():
        raise DriveInputError(f"no such audio file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise DriveInputError(f"cannot read {path}: not an audio file FFmpeg understands") from exc
    with container:
        if not container.streams.audio:
            raise DriveInputError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate if stream.codec_context else 0
        check_rate(rate, f"{path} has")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        blocks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray().reshape(-1))
                    total += len(blocks[-1])
                if total > max_seconds * rate:
                    raise DriveInputError(f"{path} is longer than {max_seconds:.0f} s")
            for out in resampler.resample(None):
                blocks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise DriveInputError(f"{path} is damaged: {' '.join(str(exc).split())}") from exc
    pcm = np.concatenate(blocks).astype(np.int16) if blocks else np.zeros(0, np.int16)
    if not len(pcm):
        raise DriveInputError(f"{path} holds no audio")
    return pcm, rate


def stdin_blocks(stream: BinaryIO, rate: int) -> Iterator[np.ndarray]:
    """Raw s16le mono PCM from ``stream`` in :data:`BLOCK`-second blocks, as it arrives."""
    import numpy as np

    size = max(2, int(rate * BLOCK) * 2)
    total = 0
    carry = b""
    while chunk := stream.read(size):
        data = carry + chunk
        whole = len(data) // 2 * 2
        carry = data[whole:]
        total += whole // 2
        if total > MAX_SECONDS * rate:
            raise DriveInputError(f"stdin is longer than {MAX_SECONDS:.0f} s")
        if whole:
            yield np.frombuffer(data[:whole], "<i2").astype(np.int16)
    if carry:
        raise DriveInputError(
            "stdin ended inside a sample: expected raw s16le mono PCM (2 bytes a sample)"
        )
    if total == 0:
        raise DriveInputError("stdin held no audio (expected raw s16le mono PCM)")


def split_blocks(pcm: np.ndarray, rate: int) -> Iterator[np.ndarray]:
    """``pcm`` in :data:`BLOCK`-second blocks, as a live microphone would deliver it."""
    step = max(1, int(rate * BLOCK))
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]


def check_rate(rate: int, what: str = "--rate is") -> None:
    """Raise :class:`DriveInputError` unless ``rate`` is one a drive input may have."""
    from anima.asr.audio import MAX_RATE, MIN_RATE

    if not MIN_RATE <= rate <= MAX_RATE:
        raise DriveInputError(f"{what} {rate} Hz; a drive input must be {MIN_RATE}–{MAX_RATE} Hz")
