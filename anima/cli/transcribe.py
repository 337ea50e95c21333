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
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load PyAV or the recogniser.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``transcribe`` sub-command's arguments."""
    tr = sub.add_parser("transcribe", help="run the live listener over audio files")
    tr.add_argument("files", nargs="+", help="audio (or video) files in any format FFmpeg reads")
    tr.add_argument("--json", action="store_true", help="one JSON object per utterance")
    tr.add_argument("--model", help="tiny.en, base or a CTranslate2 Whisper folder")
    tr.add_argument("--language", help="language code (multilingual models)")


def _clock(seconds: float) -> str:
    minutes, sec = divmod(seconds, 60)
    return f"{int(minutes)}:{sec:05.2f}"


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Transcribe each file; a file that fails is reported and the others still run."""
    from anima.asr import Listener, listener_config, load_recognizer
    from anima.asr.audio import AudioError
    from anima.asr.recording import transcribe_file

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
