"""``anima transcribe FILE…``: the live listener run over recordings, to check recognition.

Each file is decoded with PyAV (anything FFmpeg reads: WAV, MP3, M4A, OGG, video with sound…)
and fed to the same streaming :class:`~anima.asr.Listener` a live session uses, in 20 ms
chunks as fast as the CPU allows, so what it prints is what a session would have heard:
one line per final utterance with its start and end, or JSON Lines with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from rich.console import Console

from anima.asr import Final, Listener, listener_config, load_recognizer
from anima.asr.audio import RATE, AudioError
from anima.config import Settings

CHUNK = RATE // 50  # 20 ms, the usual size of a live audio frame


def decode_file(path: Path) -> Iterator[np.ndarray]:
    """16 kHz mono int16 blocks of the first audio stream of ``path``."""
    if not path.is_file():
        raise AudioError(f"no such file: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise AudioError(f"cannot read {path}: not an audio file FFmpeg understands") from exc
    with container:
        if not container.streams.audio:
            raise AudioError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.error.FFmpegError as exc:
            raise AudioError(f"{path} is damaged: {exc}") from exc


async def transcribe_file(path: Path, listener: Listener) -> list[Final]:
    """Every final utterance of ``path``, in order."""
    finals: list[Final] = []
    pending = np.zeros(0, np.int16)
    for block in decode_file(path):
        pending = np.concatenate([pending, block])
        n = len(pending) // CHUNK * CHUNK
        for i in range(0, n, CHUNK):
            events = await listener.feed(pending[i : i + CHUNK], RATE)
            if listener.deciding:
                # Faster than real time, the pause would be over before its decode is: wait
                # for it, so endpoints fall as on a live stream (and do not depend on CPU speed).
                events += await listener.drain()
            finals.extend(e for e in events if isinstance(e, Final))
        pending = pending[n:]
    if len(pending):
        events = await listener.feed(pending, RATE)
        finals.extend(e for e in events if isinstance(e, Final))
    finals.extend(e for e in await listener.flush() if isinstance(e, Final))
    return finals


def _clock(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)}:{sec:05.2f}"


def run_transcribe(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Transcribe each file; a file that fails is reported and the others still run."""
    if args.model:
        settings.listen.model = args.model
    if args.language:
        settings.listen.language = args.language
    with err.status("loading the speech recogniser…"):
        recognizer = load_recognizer(settings.listen, settings.data_dir)
    config = listener_config(settings.listen, settings.lang.code)
    failed = 0
    for name in args.files:
        path = Path(name).expanduser()
        started = time.perf_counter()
        try:
            finals = asyncio.run(transcribe_file(path, Listener(recognizer, config)))
        except AudioError as exc:
            print(f"anima: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        for f in finals:
            t = f.transcript
            if not t.text:
                continue
            if args.json:
                line = {"file": str(path), "start": round(t.start, 3), "end": round(t.end, 3)}
                line |= {"text": t.text, "language": t.language}
                print(json.dumps(line, ensure_ascii=False), flush=True)
            else:
                print(f"[{_clock(t.start)} → {_clock(t.end)}] {t.text}", flush=True)
        err.print(
            f"{path}: {sum(1 for f in finals if f.transcript.text)} utterances "
            f"in {time.perf_counter() - started:.1f} s"
        )
    return 2 if failed else 0
