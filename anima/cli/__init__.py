"""The ``anima`` command: one dispatch over one module per sub-command.

Each sub-command lives in ``anima/cli/<command>.py`` with two functions: ``add_parser(sub)``
(argparse only, so ``anima --help`` loads no model, OpenCV or PyAV) and
``run(args, settings, err) -> int``. :func:`main` parses, loads the settings and runs the one
that was asked for.

Every user error (bad photo, no face, empty text, missing avatar) ends with one line on stderr
and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from anima.config import Settings

EXIT_USER_ERROR = 2

# The sub-commands, in the order ``anima --help`` lists them; each is anima.cli.<name>.
COMMANDS = (
    "say",
    "avatar",
    "verify",
    "transcribe",
    "chat",
    "live",
    "kiosk",
    "drive",
    "serve",
    "worker",
    "gateway",
    "deploy",
    "bench",
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anima", description="A real-time digital human, offline on a CPU."
    )
    p.add_argument("--config", type=Path, help="TOML settings file (also $ANIMA_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="where avatars are stored (also $ANIMA_DATA_DIR)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("--lang", help="language pack: en, zh (Mandarin) or auto; sets persona.language")
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return p


def _command(name: str):  # noqa: ANN202 - a module
    return importlib.import_module(f"anima.cli.{name}")


# OpenMP threads (Whisper's CTranslate2) sleep at a barrier instead of spinning: measured on 2
# cores with one busy, a final decode of a 1.7 s question took 118 ms p50 instead of 161 ms.
# Read once, when the OpenMP runtime loads, so it is set before any model is.
WAIT_POLICY = "PASSIVE"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anima`` console script."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    try:
        overrides: dict[str, object] = {"data_dir": args.data_dir} if args.data_dir else {}
        if args.lang:
            overrides["persona"] = {"language": args.lang}
        settings = Settings.load(args.config, **overrides)
    except ValueError as exc:
        return _fail(f"bad settings: {_one_line(exc)}")
    logging.basicConfig(
        level="INFO" if args.verbose else settings.log_level,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        return _run(args, settings)
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """Run the parsed command; user errors become one line on stderr and exit code 2."""
    # Heavy imports only once the arguments are valid.
    from rich.console import Console

    from anima.cli.common import USER_ERRORS

    err = Console(stderr=True)
    try:
        return _command(args.command).run(args, settings, err)
    except USER_ERRORS as exc:
        return _fail(str(exc))


def _one_line(exc: ValueError) -> str:
    """A settings error in one line (pydantic's own message spans several)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(
            ".".join(map(str, e.get("loc", ())))
            + (": " if e.get("loc") else "")
            + str(e.get("msg", "")).removeprefix("Value error, ")
            for e in errors()
        )
    return str(exc)


def _fail(message: str) -> int:
    print(f"anima: error: {message}", file=sys.stderr)
    return EXIT_USER_ERROR


__all__ = ["EXIT_USER_ERROR", "main"]
