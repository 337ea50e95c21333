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
    if args.bench_command == "brain":
        from anima.bench.brain import bench_brain

        return bench_brain(
            args.out, settings, err, prompts=args.prompts, max_tokens=args.max_tokens
        )
    if args.bench_command == "lipsync":
        from anima.bench.lipsync import bench_lipsync

        return bench_lipsync(args.out, settings, err, emotions=not args.no_emotions)
    if args.bench_command == "asr":
        from anima.bench.asr import bench_asr

        return bench_asr(args.out, settings, err, reps=args.reps)
    if args.bench_command == "live":
        from anima.bench.live import bench_live

        return bench_live(
            args.out,
            settings,
            err,
            seconds=args.seconds,
            max_streams=args.max_streams,
            rtmp=args.rtmp,
        )
    if args.bench_command == "rtc":
        from anima.bench.rtc import bench_rtc

        return bench_rtc(
            args.out,
            settings,
            err,
            turns=args.turns,
            max_sessions=args.max_sessions,
            seconds=args.seconds,
            config=args.config,
        )
    if args.bench_command == "sdk":
        from anima.bench.sdk import bench_sdk

        return bench_sdk(
            args.out,
            settings,
            err,
            seconds=args.seconds,
            sessions=args.sessions,
            turns=args.turns,
        )
    if args.bench_command == "e2e":
        from anima.bench.e2e import bench_e2e

        return bench_e2e(
            args.out,
            settings,
            err,
            turns=args.turns,
            backend=args.backend,
            baselines=not args.no_baselines,
            listen=args.listen,
        )
    if args.bench_command == "quality":
        from anima.bench.quality import bench_quality

        return bench_quality(args.out, settings, err)
    if args.bench_command == "wav2lip":
        from anima.bench.wav2lip_cost import bench_wav2lip

        return bench_wav2lip(args.out, settings, err, reps=args.reps, full=not args.no_full)
    if args.bench_command == "memory":
        from anima.bench.memory import bench_memory

        return bench_memory(args.out, settings, err, seconds=args.seconds, soak=args.soak)
    if args.bench_command == "gpu":
        from anima.bench.gpu import bench_gpu

        return bench_gpu(args.out, settings, err, quick=args.quick)
    if args.bench_command == "load":
        from anima.bench.load import bench_load

        return bench_load(
            args.out,
            settings,
            err,
            max_sessions=args.max_sessions,
            seconds=args.seconds,
            extra=args.extra,
        )
    if args.bench_command == "report":
        from anima.bench.report import bench_report

        return bench_report(args.out, err)
    raise ValueError(f"unknown benchmark {args.bench_command!r}")
