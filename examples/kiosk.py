"""A window-free kiosk client: talks to ``anima kiosk`` over the WebSocket protocol, saves it all.

    anima kiosk &                                   # the server (ws://127.0.0.1:8765)
    python examples/kiosk.py --ask "Is there free wifi?" --out kiosk_out
    python examples/kiosk.py --mic question.wav --media params

It says hello, optionally streams a WAV file as the microphone (at real-time pace, then
silence), sends a typed question and/or a line to say, and records for ``--seconds``:

- ``<out>/avatar.wav``: the avatar's audio (gap-free: silence included);
- ``<out>/frame_00000.jpg`` …: every ``--every``-th video frame (video mode);
- ``<out>/events.jsonl``: every JSON message received, one per line, with receive time.

Only the standard library plus ``websockets`` and ``numpy``; the protocol is in
``docs/protocol.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time
import wave
from pathlib import Path

import numpy as np
from websockets.asyncio.client import connect

HEADER = struct.Struct("<BBHIQ")  # kind, flags, reserved, turn, pts (docs/protocol.md)
AUDIO, VIDEO = 1, 2


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    """16-bit PCM samples, rate and channels of a WAV file."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise SystemExit(f"{path}: only 16-bit PCM WAV files are supported")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return pcm, w.getframerate(), w.getnchannels()


async def stream_mic(ws, pcm: np.ndarray, rate: int, channels: int, tail: float = 2.0) -> None:
    """Send the WAV as 20 ms microphone messages at real-time pace, then ``tail`` s of silence."""
    step = rate // 50 * channels
    silence = np.zeros(int(tail * rate) * channels, "<i2")
    data = np.concatenate([pcm, silence])
    t0 = time.perf_counter()
    for i in range(0, len(data), step):
        await ws.send(data[i : i + step].tobytes())
        await asyncio.sleep(max(0.0, t0 + (i + step) / channels / rate - time.perf_counter()))


async def run(args: argparse.Namespace) -> None:
    """Connect, send, record, say bye."""
    out: Path = args.out
    mic = read_wav(args.mic) if args.mic else None
    hello = {
        "type": "hello",
        "version": 1,
        "media": args.media,
        "greet": not args.no_greet,
        "audio": {
            "format": "s16le",
            "rate": mic[1] if mic else 16000,
            "channels": mic[2] if mic else 1,
        },
    }
    if args.avatar:
        hello["avatar"] = args.avatar
    if args.token:
        hello["token"] = args.token
    async with connect(args.url, max_size=2**24) as ws:
        await ws.send(json.dumps(hello))
        welcome = json.loads(await ws.recv())
        if welcome["type"] != "welcome":
            raise SystemExit(f"refused: {welcome}")
        print(f"session {welcome['session']} ({welcome['media']}), output {welcome['output']}")
        rate = (welcome["output"]["audio"] or {}).get("rate", 22050)
        senders = []
        if mic is not None:
            senders.append(asyncio.create_task(stream_mic(ws, *mic)))
        if args.ask:
            await ws.send(json.dumps({"type": "ask", "text": args.ask}))
        if args.say:
            await ws.send(json.dumps({"type": "say", "text": args.say}))
        audio: list[bytes] = []
        frames = 0
        with (out / "events.jsonl").open("w", encoding="utf-8") as log:
            log.write(json.dumps({"t": 0.0, **welcome}) + "\n")
            t0 = time.perf_counter()
            while (left := args.seconds - (time.perf_counter() - t0)) > 0:
                try:
                    msg = await asyncio.wait_for(ws.recv(), left)
                except TimeoutError:
                    break
                if isinstance(msg, bytes):
                    kind, flags, _, turn, pts = HEADER.unpack_from(msg)
                    payload = msg[HEADER.size :]
                    if kind == AUDIO:
                        audio.append(payload)
                    elif kind == VIDEO:
                        if pts % args.every == 0:
                            (out / f"frame_{pts:05d}.jpg").write_bytes(payload)
                        frames += 1
                    continue
                event = json.loads(msg)
                if event["type"] != "face":  # per-frame parameters would swamp the log
                    log.write(json.dumps({"t": round(time.perf_counter() - t0, 3), **event}) + "\n")
                    if event["type"] in ("subtitle", "transcript", "state", "latency", "error"):
                        print(event)
        for task in senders:
            task.cancel()
        await ws.send(json.dumps({"type": "bye"}))
    with wave.open(str(out / "avatar.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(audio))
    seconds = sum(len(a) for a in audio) / 2 / rate
    print(f"saved {seconds:.1f} s of audio, {frames} frames and events in {out}/")


def main() -> None:
    """Command line."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--url", default="ws://127.0.0.1:8765")
    p.add_argument("--media", choices=["video", "params", "events"], default="video")
    p.add_argument("--mic", type=Path, help="a 16-bit WAV to stream as the microphone")
    p.add_argument("--ask", help="a typed question")
    p.add_argument("--say", help="a line for the avatar to say")
    p.add_argument("--avatar", help="a stored avatar name (default: the sample portrait)")
    p.add_argument("--token", help="the server's token, if it requires one")
    p.add_argument("--no-greet", action="store_true", help="skip the greeting")
    p.add_argument("--seconds", type=float, default=12.0, help="how long to record")
    p.add_argument("--every", type=int, default=25, help="save every n-th video frame")
    p.add_argument("--out", type=Path, default=Path("kiosk_out"))
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
