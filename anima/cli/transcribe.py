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
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load PyAV or the recogniser.
if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console

    from anima.asr import Final, Listener
    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``transcribe`` sub-command's arguments."""
    tr = sub.add_parser("transcribe", help="run the live listener over audio files")
    tr.add_argument("files", nargs="+", help="audio (or video) files in any format FFmpeg reads")
    tr.add_argument("--json", action="store_true", help="one JSON object per utterance")
    tr.add_argument("--model", help="tiny.en, base or a CTranslate2 Whisper folder")
    tr.add_argument("--language", help="language code (multilingual models)")


def decode_file(path: Path) -> Iterator[np.ndarray]:
    """16 kHz mono int16 blocks of the first audio stream of ``path``."""
    import av

    from anima.asr.audio import RATE, AudioError

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
    import numpy as np

    from anima.asr import Final
    from anima.asr.audio import RATE

    chunk = RATE // 50  # 20 ms, the usual size of a live audio frame
    finals: list[Final] = []
    pending = np.zeros(0, np.int16)
    for block in decode_file(path):
        pending = np.concatenate([pending, block])
        n = len(pending) // chunk * chunk
        for i in range(0, n, chunk):
            events = await listener.feed(pending[i : i + chunk], RATE)
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


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Transcribe each file; a file that fails is reported and the others still run."""
    from anima.asr import Listener, listener_config, load_recognizer
    from anima.asr.audio import AudioError

    if args.model:
        settings.listen.model = args.model
    if args.language:
        settings.listen.language = args.language
    with err.status("loading the speech recogniser…"):
        recognizer = load_recognizer(settings.listen, settings.data_dir)
    config = listener_config(settings.listen)
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
