"""``anima verify FILE``: is this video marked as made by anima?

Exit 0 when the invisible watermark is found, 1 when it is not, 2 when the file cannot be read.
The metadata tag is reported too, but only the watermark decides: tags are trivially removed
or copied, the mark in the pixels is not.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load PyAV.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``verify`` sub-command's arguments."""
    ver = sub.add_parser("verify", help="look for anima's AI-disclosure watermark in a video")
    ver.add_argument("file", type=Path, help="a video file (MP4, WebM, …)")
    ver.add_argument("--json", action="store_true", help="print the verdict as JSON")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Print the verdict for ``args.file``; the exit code says found (0) or not found (1)."""
    from anima.watermark import THRESHOLD, detect

    verdict = detect(args.file)
    if args.json:
        print(json.dumps({"file": str(args.file), "threshold": THRESHOLD, **asdict(verdict)}))
    else:
        state = "found" if verdict.found else "not found"
        print(
            f"{args.file}: anima watermark {state} "
            f"(score {verdict.score:.1f}, threshold {THRESHOLD:g}, {verdict.frames} frames); "
            f"metadata label: {verdict.label or 'none'}"
        )
    return 0 if verdict.found else 1
