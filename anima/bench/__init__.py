"""``anima bench``: benchmarks that write JSON results (and plots) under ``bench/results/``."""

from __future__ import annotations

import argparse
import importlib

from rich.console import Console

from anima.config import Settings

# name -> (module under anima.bench, its function, keyword -> the argument it comes from; a
# leading "!" negates a --no-... flag). Each function is ``f(out, settings, err, **keywords)``;
# modules are imported only when their benchmark runs.
_BENCHES: dict[str, tuple[str, str, dict[str, str]]] = {
    "render": ("render", "bench_render", {"frames": "frames"}),
    "brain": ("brain", "bench_brain", {"prompts": "prompts", "max_tokens": "max_tokens"}),
    "lipsync": ("lipsync", "bench_lipsync", {"emotions": "!no_emotions", "lang": "lang"}),
    "asr": ("asr", "bench_asr", {"reps": "reps", "lang": "lang"}),
    "tts": ("lang", "bench_tts_lang", {"lang": "lang", "reps": "reps"}),
    "live": (
        "live",
        "bench_live",
        {"seconds": "seconds", "max_streams": "max_streams", "rtmp": "rtmp"},
    ),
    "rtc": (
        "rtc",
        "bench_rtc",
        {
            "turns": "turns",
            "max_sessions": "max_sessions",
            "seconds": "seconds",
            "config": "config",
        },
    ),
    "sdk": ("sdk", "bench_sdk", {"seconds": "seconds", "sessions": "sessions", "turns": "turns"}),
    "e2e": (
        "e2e",
        "bench_e2e",
        {"turns": "turns", "backend": "backend", "baselines": "!no_baselines", "listen": "listen"},
    ),
    "quality": ("quality", "bench_quality", {}),
    "face": ("face", "bench_face", {}),
    "wav2lip": ("wav2lip_cost", "bench_wav2lip", {"reps": "reps", "full": "!no_full"}),
    "memory": ("memory", "bench_memory", {"seconds": "seconds", "soak": "soak"}),
    "gpu": ("gpu", "bench_gpu", {"quick": "quick"}),
    "cluster": (
        "cluster",
        "bench_cluster",
        {
            "workers": "workers",
            "turns": "turns",
            "max_sessions": "max_sessions",
            "seconds": "seconds",
        },
    ),
    "load": (
        "load",
        "bench_load",
        {"max_sessions": "max_sessions", "seconds": "seconds", "extra": "extra"},
    ),
}


def run_bench(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run the benchmark named on the command line."""
    name = args.bench_command
    if name == "report":
        from anima.bench.report import bench_report

        return bench_report(args.out, err)
    if name not in _BENCHES:
        raise ValueError(f"unknown benchmark {name!r}")
    module, function, params = _BENCHES[name]
    run = getattr(importlib.import_module(f"anima.bench.{module}"), function)
    keywords = {
        key: (not getattr(args, arg[1:])) if arg.startswith("!") else getattr(args, arg)
        for key, arg in params.items()
    }
    return run(args.out, settings, err, **keywords)
