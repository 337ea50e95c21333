"""``anima bench``: benchmarks that write JSON results (and plots) under ``bench/results/``."""

from __future__ import annotations

import argparse

from rich.console import Console

from anima.config import Settings


def run_bench(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run the benchmark named on the command line."""
    if args.bench_command == "render":
        from anima.bench.render import bench_render

        return bench_render(args.out, settings, err, frames=args.frames)
    raise ValueError(f"unknown benchmark {args.bench_command!r}")
