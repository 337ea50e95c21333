"""``anima worker``: an engine serving sessions for gateways on a NATS cluster.

The logic lives in :mod:`anima.cluster.commands`; this module only registers it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``worker`` sub-command's arguments (argparse only)."""
    from anima.cluster.commands import add_worker_parser

    add_worker_parser(sub)


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run ``anima worker``."""
    from anima.cluster.commands import run_worker

    return run_worker(args, settings, err)
