"""``anima gateway``: the stateless page, API and signalling in front of workers.

The logic lives in :mod:`anima.cluster.commands`; this module only registers it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``gateway`` sub-command's arguments (argparse only)."""
    from anima.cluster.commands import add_gateway_parser

    add_gateway_parser(sub)


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run ``anima gateway``."""
    from anima.cluster.commands import run_gateway

    return run_gateway(args, settings, err)
