"""``anima bench``: the benchmarks' arguments; :mod:`anima.bench` runs them."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

# Only argparse at import time: ``anima --help`` must not load a benchmark.
if TYPE_CHECKING:
    from rich.console import Console

    from anima.config import Settings


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``bench`` sub-command and one sub-command per benchmark."""
    bench = sub.add_parser("bench", help="measure the engine")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    br = bsub.add_parser("render", help="renderer fps, TTS speed and memory of `anima say`")
    br.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    br.add_argument("--frames", type=int, default=250, help="frames to render for the fps figure")
    bf = bsub.add_parser(
        "face", help="viseme sheets, 10 s clip, cost and lip-sync: main's renderer vs this one"
    )
    bf.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON, PNGs and MP4s"
    )
    bb = bsub.add_parser("brain", help="embedded GGUF: time to first phrase and tokens/s")
    bb.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bb.add_argument("--prompts", type=int, default=10, help="questions per pass (cold, warm)")
    bb.add_argument("--max-tokens", type=int, default=128, help="cap on each reply")
    bl = bsub.add_parser("live", help="simultaneous 25 fps livestreams two cores sustain")
    bl.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    bl.add_argument("--seconds", type=float, default=20.0, help="length of each stream run")
    bl.add_argument("--max-streams", type=int, default=6, help="stop the sweep here")
    bl.add_argument("--rtmp", help="push to this RTMP app URL (…/app) instead of HLS folders")
    bls = bsub.add_parser(
        "lipsync", help="audio-to-mouth network vs loudness on held-out voices; emotion PNGs"
    )
    bls.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    bls.add_argument("--no-emotions", action="store_true", help="skip the emotion examples")
    bls.add_argument(
        "--lang",
        default=argparse.SUPPRESS,
        help="the network on a language pack's voices (zh: Mandarin) vs English",
    )
    ba = bsub.add_parser("asr", help="end-of-speech to final transcript latency and RTF")
    ba.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    ba.add_argument("--reps", type=int, default=5, help="utterances per length (2, 5, 10 s)")
    ba.add_argument(  # SUPPRESS: not given here, the top-level --lang stays
        "--lang",
        default=argparse.SUPPRESS,
        help="measure a language pack instead (zh: CER on two Mandarin voices)",
    )
    btt = bsub.add_parser("tts", help="first-chunk time and real-time factor of a pack's voices")
    btt.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    btt.add_argument(
        "--lang", default=argparse.SUPPRESS, help="language pack whose voices to measure"
    )
    btt.add_argument("--reps", type=int, default=1, help="passes over the pack's sentences")
    bk = bsub.add_parser("sdk", help="SDK sessions per core (params vs video) and reply latency")
    bk.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bk.add_argument("--seconds", type=float, default=8.0, help="length of each load run")
    bk.add_argument("--sessions", type=int, default=2, help="simultaneous sessions per run")
    bk.add_argument("--turns", type=int, default=5, help="question turns for the latency figures")
    bw = bsub.add_parser("rtc", help="voice-to-face latency over WebRTC; sessions two cores hold")
    bw.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    bw.add_argument("--turns", type=int, default=20, help="spoken questions for the latency")
    bw.add_argument("--max-sessions", type=int, default=6, help="stop the session sweep here")
    bw.add_argument("--seconds", type=float, default=12.0, help="length of each sweep step")
    be = bsub.add_parser("e2e", help="spoken conversation over the WebSocket: latency by part")
    be.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    be.add_argument("--turns", type=int, default=20, help="spoken questions (the script loops)")
    be.add_argument("--backend", default="kb", help="brain: kb (knowledge base) or gguf (LLM)")
    be.add_argument("--no-baselines", action="store_true", help="skip the two baselines")
    be.add_argument("--listen", type=float, default=0.4, help="reply heard before interrupting")
    bq = bsub.add_parser("quality", help="lip-sync A/V offset and correlation from output video")
    bq.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON/PNG")
    bwl = bsub.add_parser("wav2lip", help="renderer cost vs a Wav2Lip-class generator (ONNX)")
    bwl.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bwl.add_argument("--reps", type=int, default=20, help="generator runs at 96 px")
    bwl.add_argument("--no-full", action="store_true", help="skip the output-size generator")
    bm = bsub.add_parser("memory", help="peak RSS for 1, 2, 4 sessions; growth over a soak")
    bm.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bm.add_argument("--seconds", type=float, default=8.0, help="length of each sessions run")
    bm.add_argument("--soak", type=float, default=600.0, help="soak length in seconds (0: none)")
    bl = bsub.add_parser("load", help="talking sessions 2 cores hold; 'busy' past max_sessions")
    bl.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    bl.add_argument("--max-sessions", type=int, default=6, help="stop the sweep here")
    bl.add_argument("--seconds", type=float, default=20.0, help="measured length of each step")
    bl.add_argument("--extra", type=int, default=3, help="clients that try to join when full")
    bg = bsub.add_parser("gpu", help="ASR, batched neural mouth and NVENC on the set device")
    bg.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bg.add_argument("--quick", action="store_true", help="few repetitions, small sizes")
    bcl = bsub.add_parser("cluster", help="1..3 workers on NATS: sessions, latency, overhead")
    bcl.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for JSON")
    bcl.add_argument("--workers", type=int, default=3, help="measure 1..this many workers")
    bcl.add_argument("--turns", type=int, default=8, help="spoken questions per worker count")
    bcl.add_argument("--max-sessions", type=int, default=4, help="slots per worker")
    bcl.add_argument("--seconds", type=float, default=8.0, help="length of each sweep step")
    brp = bsub.add_parser("report", help="Markdown table and PNG plots of bench/results/*.json")
    brp.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")


def run(args: argparse.Namespace, settings: Settings, err: Console) -> int:
    """Run the benchmark named on the command line."""
    from anima.bench import run_bench

    return run_bench(args, settings, err)
