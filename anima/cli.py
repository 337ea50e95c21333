"""The ``anima`` command: ``say``, ``avatar add|list|remove``, ``transcribe`` and ``bench``.

Every user error (bad photo, no face, empty text, missing avatar) ends with one line on stderr
and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from anima.config import Settings

EXIT_USER_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anima", description="A real-time digital human, offline on a CPU."
    )
    p.add_argument("--config", type=Path, help="TOML settings file (also $ANIMA_CONFIG)")
    p.add_argument("--data-dir", type=Path, help="where avatars are stored (also $ANIMA_DATA_DIR)")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    p.add_argument("--lang", help="language pack: en, zh (Mandarin) or auto; sets persona.language")
    sub = p.add_subparsers(dest="command", required=True)

    say = sub.add_parser("say", help="render the avatar speaking a text into an MP4")
    say.add_argument("text", nargs="?", help="what to say (or give --audio)")
    say.add_argument(
        "--audio",
        type=Path,
        help="lip-sync this speech file (any format FFmpeg reads) instead of speaking text",
    )
    say.add_argument(
        "--avatar",
        default="sample",
        help="a stored avatar name, a photo path, or 'sample' (built-in portrait)",
    )
    say.add_argument(
        "-o", "--output", type=Path, default=Path("anima.mp4"), help="MP4 file to write"
    )
    say.add_argument("--seed", type=int, help="seed for blinks and head motion (repeatable output)")

    avatar = sub.add_parser("avatar", help="manage prepared avatars")
    asub = avatar.add_subparsers(dest="avatar_command", required=True)
    add = asub.add_parser("add", help="prepare an avatar from a portrait photo")
    add.add_argument("photo", type=Path)
    add.add_argument("--name", required=True)
    add.add_argument("--replace", action="store_true", help="overwrite an avatar of the same name")
    add.add_argument(
        "--consent-by",
        metavar="NAME",
        help="who attests that the pictured person consented to this avatar (recorded with it)",
    )
    asub.add_parser("list", help="list prepared avatars")
    rm = asub.add_parser("remove", help="delete a prepared avatar")
    rm.add_argument("name")

    ver = sub.add_parser("verify", help="look for anima's AI-disclosure watermark in a video")
    ver.add_argument("file", type=Path, help="a video file (MP4, WebM, …)")
    ver.add_argument("--json", action="store_true", help="print the verdict as JSON")

    tr = sub.add_parser("transcribe", help="run the live listener over audio files")
    tr.add_argument("files", nargs="+", help="audio (or video) files in any format FFmpeg reads")
    tr.add_argument("--json", action="store_true", help="one JSON object per utterance")
    tr.add_argument("--model", help="tiny.en, base or a CTranslate2 Whisper folder")
    tr.add_argument("--language", help="language code (multilingual models)")

    chat = sub.add_parser("chat", help="talk to the brain and persona in the terminal")
    chat.add_argument("--once", metavar="QUESTION", help="answer one question and exit")
    chat.add_argument("--kb", type=Path, help="knowledge folder (also knowledge.dir)")
    chat.add_argument("--persona", type=Path, help="persona YAML file (also persona.file)")
    chat.add_argument("--backend", help="gguf, openai or kb (no model); also brain.backend")
    chat.add_argument("--user", help="user id, for opt-in long-term memory across sessions")

    from anima.live_cmd import add_parser as add_live_parser  # argparse only, no media imports

    add_live_parser(sub)

    from anima.kiosk_cmd import add_parser as add_kiosk_parser  # argparse only

    add_kiosk_parser(sub)

    from anima.drive_cmd import add_parser as add_drive_parser  # argparse only

    add_drive_parser(sub)

    from anima.serve_cmd import add_parser as add_serve_parser  # argparse only

    add_serve_parser(sub)

    bench = sub.add_parser("bench", help="measure the engine")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    br = bsub.add_parser("render", help="renderer fps, TTS speed and memory of `anima say`")
    br.add_argument(
        "--out", type=Path, default=Path("bench/results"), help="folder for JSON and PNGs"
    )
    br.add_argument("--frames", type=int, default=250, help="frames to render for the fps figure")
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
    brp = bsub.add_parser("report", help="Markdown table and PNG plots of bench/results/*.json")
    brp.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``anima`` console script."""
    args = _parser().parse_args(argv)
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
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
    from anima.commands import run  # heavy imports only once arguments are valid

    try:
        return run(args, settings)
    except KeyboardInterrupt:
        return 130


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


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
