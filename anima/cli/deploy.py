"""``anima deploy``: NATS and nginx-rtmp fan-out configs.

The logic lives in :mod:`anima.cluster.commands`; this module only registers it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``deploy`` sub-command's arguments (argparse only)."""
    from anima.cluster.commands import add_deploy_parser

    add_deploy_parser(sub)


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run ``anima deploy``."""
    from anima.cluster.commands import run_deploy

    return run_deploy(args, settings, err)
