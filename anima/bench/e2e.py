"""``anima bench e2e``: voice-to-face latency of a spoken conversation, part by part.

A scripted conversation (``--turns``, default 20 questions) is spoken by the project's own voice
into the engine through its real transport: the kiosk WebSocket protocol (``docs/protocol.md``)
over loopback, served by :class:`~anima.protocol.server.ProtocolServer` in this process. The
client streams the microphone in 20 ms messages paced on the wall clock (a message leaves when
its 20 ms have been "recorded"), keeps streaming silence, and timestamps what it receives.

Per turn:

- ``endpoint``, ``asr``, ``first_phrase``, ``tts_first_chunk``, ``first_frame`` and ``total``:
  the server's ``latency`` event (:class:`~anima.events.TurnLatency`), measured by the session;
- ``first_token``: the language model's time to its first token, read from the Prometheus
  histogram ``anima_brain_first_token_seconds`` around the turn (the session does not expose it
  per turn; the kb brain has no language model, so it is absent there);
- ``client_audio`` / ``client_video``: end of the user's speech (the last sample above 2 % of
  the peak, on the client's send clock) to the first speaking audio / video message received;
- ``transport``: ``client_audio - total``, what the socket, the sender task and the JPEG
  encoder add after the session emits the first audio.

So ``client_audio = endpoint + asr + first_phrase + tts_first_chunk + first_frame + transport``
(parts measured on different clocks add up to within a few ms). After the first speaking frame
arrives the client lets the reply play for ``--listen`` seconds and then sends ``interrupt``, so
20 turns fit in a few minutes; every measured part is over by then.

Baselines, in the same run with the same engine components (voice, recogniser, brain, face
animator), in process, one turn at a time on the same recorded questions, with an idle video
session streaming alongside (see :mod:`anima.bench.baselines`); the transport figure measured
above (its median) is added so they are comparable to ``client_audio``:

(a) **sequential cascade**: fixed 500 ms VAD silence, no speculative decode; the whole
    transcript, then the whole reply (every phrase), then TTS of the whole reply, then lip-sync
    and rendering of every frame of the reply, then the first audio goes out;
(b) **fixed 500 ms VAD + whole-sentence chunking**: the same endpointing, then the reply up to
    its first complete sentence (phrases joined until one ends in ``. ! ? …``), its whole TTS,
    its lip-sync and the first rendered frame.

Each turn records the one-minute load average (``load1``); the summary ``tail`` gives p50 /
p95 / max of ``client_audio`` beside the load, and ``--stress`` keeps one core busy with a CPU
hog during the conversation (issue 22: the tail when the cores are busy).

Results go to ``<out>/e2e.json`` (or ``e2e_<backend>.json`` for a non-default backend), the
per-turn latency against the load to ``e2e_load.png``, and the breakdown table is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from anima.bench.baselines import run_baselines, summarise
from anima.bench.common import write_result
from anima.bench.tail import cpu_hog, load1, plot_vs_load, tail_summary
from anima.config import Settings

# The first question is the one the one-turn smoke test asks: plain words that tiny.en hears
# reliably however the endpoint cuts the audio ("wifi" came back as "white fight" once).
QUESTIONS = [
    "Where can I park my car?",
    "Is there free wifi?",
    "Where are the toilets?",
    "Can I bring my dog?",
    "Is the building accessible for wheelchair users?",
    "When are you open?",
    "Are you open on Sundays?",
    "What is your phone number?",
    "What is the address?",
    "Which buses stop outside?",
    "Is there a lost and found?",
    "Can children use the library on their own?",
    "Do you close early on Christmas Eve?",
    "What is the email address?",
    "Where is the children's corner?",
    "Can I borrow a wheelchair?",
    "What is the wifi network called?",
    "Are you open on public holidays?",
    "How long do you keep lost property?",
    "Is there an accessible toilet?",
]
PARTS = ("endpoint", "asr", "first_token", "first_phrase", "tts_first_chunk", "first_frame")
_KB = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"
_CHUNK_S = 0.02  # one microphone message
_TURN_TIMEOUT = 40.0


def bench_e2e(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    turns: int = 20,
    backend: str = "kb",
    baselines: bool = True,
    listen: float = 0.4,
    stress: bool = False,
) -> int:
    """Run the end-to-end benchmark, print the breakdown and write the JSON."""
    with cpu_hog(stress) as hog:
        if hog:
            err.log(f"--stress: a CPU hog (pid {hog}) keeps one core busy")
        result = asyncio.run(_bench(settings, err, turns, backend, baselines, listen))
    result["config"]["stress"] = "one CPU hog during the run" if stress else None
    name = "e2e" if backend == "kb" else f"e2e_{backend}"
    path = write_result(out, name, result)
    rows = result["turns"]
    plot_vs_load(
        {"client_audio": [(t["load1"], t["client_audio"]) for t in rows if "client_audio" in t]},
        out / f"{name}_load.png",
        "end of speech to first audio (WebSocket)" + (" (--stress)" if stress else ""),
    )
    tail = result["tail"]
    if tail.get("n") != 0:
        lat, load = tail["latency_ms"], tail.get("load1", {})
        err.print(
            f"client_audio p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max "
            f"{lat['max']:.0f} ms; load average p50 {load.get('p50', float('nan')):.2f}"
        )
    err.print(breakdown_table(result))
    err.print(f"wrote {path}")
    return 0


def engine_overrides(settings: Settings, backend: str) -> dict[str, Any]:
    """Settings for the bench engine: the brain backend, and kiosk knowledge when none is set."""
    overrides: dict[str, Any] = {"brain": {"backend": backend}, "server": {"max_sessions": 4}}
    if settings.knowledge.dir is None and _KB.is_dir():
        overrides["knowledge"] = {"dir": _KB}  # the questions are about the kiosk example
    return overrides


async def _bench(
    settings: Settings, err: Console, turns: int, backend: str, baselines: bool, listen: float
) -> dict[str, Any]:
    from anima.engine import Engine

    engine = Engine.from_config(settings, **engine_overrides(settings, backend))
    try:
        t0 = time.perf_counter()
        await engine.load(lambda step: err.log(f"loading {step}"))
        await engine.avatar(None)
        await engine.animator(None)  # prototype built once, as a warm server has it
        load_s = time.perf_counter() - t0
        warmed = await engine.phrases_ready()  # a kiosk that has been up for a few seconds
        err.log(f"{warmed} known phrases synthesised ahead")
        voice = engine.voice
        hits0, misses0 = getattr(voice, "hits", 0), getattr(voice, "misses", 0)
        questions = [QUESTIONS[i % len(QUESTIONS)] for i in range(turns)]
        spoken = [_speak(voice, q) for q in questions]
        err.log(
            f"spoke {turns} questions ({sum(len(p) for p, _ in spoken) / voice.sample_rate:.1f} s)"
        )
        load_avg0 = os.getloadavg()
        ours = await _conversation(engine, spoken, questions, err, listen)
        cache = {
            "phrases_warmed": warmed,
            "hits": getattr(voice, "hits", 0) - hits0,
            "misses": getattr(voice, "misses", 0) - misses0,
        }
        transport = [t["transport"] for t in ours if "transport" in t]
        transport_p50 = float(np.median(transport)) if transport else 0.0
        result: dict[str, Any] = {
            "benchmark": "e2e",
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "config": {
                "turns": turns,
                "backend": backend,
                "transport": "websocket (kiosk protocol v1, loopback), media=video (JPEG)",
                "mic_chunk_s": _CHUNK_S,
                "listen_after_first_frame_s": listen,
                "render_size": engine.settings.render.size,
                "fps": engine.settings.render.fps,
                "listen": engine.settings.listen.model_dump(
                    include={"silence", "silence_complete", "silence_incomplete", "speculative"}
                ),
            },
            "load_seconds": load_s,
            "phrase_cache": cache,
            "load_average_start": load_avg0,
            "turns": ours,
            "ours": summarise(ours),
            "tail": tail_summary(
                [t["client_audio"] for t in ours if "client_audio" in t],
                [t["load1"] for t in ours],
            ),
            "notes": [
                "first_token: from the anima_brain_first_token_seconds histogram per turn; the "
                "kb backend has no language model, so it is absent there.",
                "transport = client_audio - server total (socket, sender task, JPEG encode).",
                "baselines run in process on the same components; the median measured "
                "transport is added to their totals.",
                "ours speaks phrases known in advance (greeting, fixed lines, verbatim "
                "knowledge answers) from speech synthesised after loading (voice.prewarm; "
                "phrase_cache counts them); the baselines synthesise every reply, as the stacks "
                "they stand for do.",
            ],
        }
        if baselines:
            base = await run_baselines(engine, spoken, err, transport_p50)
            result["baselines"] = base
            result["ratios"] = ratios(result["ours"], base)
        result["load_average_end"] = os.getloadavg()
    finally:
        await engine.aclose()
    return result


def _speak(voice: Any, text: str) -> tuple[np.ndarray, int]:
    """The question as PCM (with 0.2 s lead-in) and the sample where its speech ends."""
    pcm = np.concatenate([c.pcm for c in voice.synthesize(text)]).astype(np.int16)
    lead = np.zeros(int(0.2 * voice.sample_rate), np.int16)
    pcm = np.concatenate([lead, pcm])
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > 0.02 * max(1, int(np.abs(pcm).max())))
    return pcm, int(loud[-1]) + 1 if loud.size else len(pcm)


# -- our engine, through the WebSocket transport ---------------------------------------------


class _Client:
    """What the bench client has received, with arrival times (perf_counter)."""

    def __init__(self) -> None:
        self.audio: dict[int, float] = {}  # turn -> first speaking audio arrival
        self.video: dict[int, float] = {}  # turn -> first speaking video arrival
        self.latency: list[dict[str, float]] = []
        self.states: list[str] = []
        self.finals: list[str] = []
        self.errors: list[dict[str, Any]] = []
        self.changed = asyncio.Event()


async def _receive(ws: Any, client: _Client) -> None:
    from anima.protocol.messages import FLAG_SPEAKING, KIND_AUDIO, KIND_VIDEO, unpack_media

    async for data in ws:
        now = time.perf_counter()
        if isinstance(data, bytes):
            kind, flags, turn, _pts, payload = unpack_media(data)
            if not turn or not flags & FLAG_SPEAKING and kind == KIND_AUDIO:
                continue
            if kind == KIND_AUDIO and turn not in client.audio:
                if np.any(np.frombuffer(payload, "<i2")):
                    client.audio[turn] = now
                    client.changed.set()
            elif kind == KIND_VIDEO and turn not in client.video:
                client.video[turn] = now
                client.changed.set()
            continue
        msg = json.loads(data)
        kind = msg.get("type")
        if kind == "latency":
            client.latency.append(msg["parts"])
        elif kind == "state":
            client.states.append(msg["state"])
        elif kind == "transcript" and msg.get("final"):
            client.finals.append(msg["text"])
        elif kind == "error":
            client.errors.append(msg)
        else:
            continue
        client.changed.set()


def _first_token_total() -> tuple[float, float]:
    """(sum, count) of the first-token histogram over every backend label."""
    from prometheus_client import REGISTRY

    total, count = 0.0, 0.0
    for metric in REGISTRY.collect():
        if metric.name != "anima_brain_first_token_seconds":
            continue
        for s in metric.samples:
            if s.name.endswith("_sum"):
                total += s.value
            elif s.name.endswith("_count"):
                count += s.value
    return total, count


async def _conversation(
    engine: Any,
    spoken: list[tuple[np.ndarray, int]],
    questions: list[str],
    err: Console,
    listen: float,
) -> list[dict[str, Any]]:
    from websockets.asyncio.client import connect

    from anima.protocol.server import ProtocolServer

    rate = engine.voice.sample_rate
    chunk = int(rate * _CHUNK_S)
    silence = np.zeros(chunk, "<i2").tobytes()
    server = ProtocolServer(engine, "127.0.0.1", 0)
    port = await server.start()
    turns: list[dict[str, Any]] = []
    try:
        async with connect(f"ws://127.0.0.1:{port}", max_size=None, compression=None) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "hello",
                        "version": 1,
                        "media": "video",
                        "audio": {"format": "s16le", "rate": rate, "channels": 1},
                        "greet": False,
                    }
                )
            )
            welcome = json.loads(await ws.recv())
            if welcome.get("type") != "welcome":
                raise RuntimeError(f"the server refused the bench client: {welcome}")
            client = _Client()
            receiver = asyncio.create_task(_receive(ws, client))
            clock = time.perf_counter()

            async def mic(pcm: bytes | None = None) -> None:
                """Send one 20 ms message when its 20 ms have been 'recorded'."""
                nonlocal clock
                clock += _CHUNK_S
                await asyncio.sleep(max(0.0, clock - time.perf_counter()))
                await ws.send(pcm if pcm is not None else silence)

            for _ in range(25):  # half a second of room tone first
                await mic()
            try:
                for i, (pcm, speech_end) in enumerate(spoken):
                    turns.append(
                        await _one_turn(client, mic, pcm, speech_end, rate, chunk, listen, ws)
                    )
                    t = turns[-1]
                    shown = {k: round(v * 1000) for k, v in t.items() if isinstance(v, float)}
                    err.log(f"turn {i + 1} {questions[i]!r}: {shown}")
            finally:
                with contextlib.suppress(Exception):
                    await ws.send(json.dumps({"type": "bye"}))
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receiver
    finally:
        await server.aclose()
    return turns


async def _one_turn(
    client: _Client,
    mic: Any,
    pcm: np.ndarray,
    speech_end: int,
    rate: int,
    chunk: int,
    listen: float,
    ws: Any,
) -> dict[str, Any]:
    known_audio = set(client.audio)
    n_latency, n_finals, n_errors = len(client.latency), len(client.finals), len(client.errors)
    tok0 = _first_token_total()
    t_start = time.perf_counter()
    data = pcm.astype("<i2").tobytes()
    end_wall = t_start + speech_end / rate
    for k in range(0, len(pcm), chunk):
        await mic(data[2 * k : 2 * (k + chunk)])
        if k <= speech_end < k + chunk:
            # The speech-end sample is "recorded" at the end of this message's 20 ms.
            end_wall = time.perf_counter() - (k + chunk - speech_end) / rate
    deadline = time.perf_counter() + _TURN_TIMEOUT
    first_audio: float | None = None
    turn_id: int | None = None
    stop_at: float | None = None
    while time.perf_counter() < deadline:
        await mic()
        new_audio = set(client.audio) - known_audio
        if turn_id is None and new_audio:
            turn_id = min(new_audio)
            first_audio = client.audio[turn_id]
        have_all = (
            turn_id is not None and turn_id in client.video and len(client.latency) > n_latency
        )
        if have_all and stop_at is None:
            stop_at = time.perf_counter() + listen
        if stop_at is not None and time.perf_counter() >= stop_at:
            await ws.send(json.dumps({"type": "interrupt", "reason": "bench"}))
            # Silence until the session is listening again (its reply cut off).
            for _ in range(15):
                await mic()
            break
    out: dict[str, Any] = {}
    if len(client.finals) > n_finals:
        out["transcript"] = client.finals[n_finals]
    if len(client.errors) > n_errors:
        out["errors"] = client.errors[n_errors:]
    if len(client.latency) > n_latency:
        out.update({k: float(v) for k, v in client.latency[n_latency].items()})
    tok1 = _first_token_total()
    if tok1[1] > tok0[1]:
        out["first_token"] = (tok1[0] - tok0[0]) / (tok1[1] - tok0[1])
    if first_audio is not None:
        out["client_audio"] = first_audio - end_wall
        if "total" in out:
            out["transport"] = out["client_audio"] - out["total"]
    if turn_id is not None and turn_id in client.video:
        out["client_video"] = client.video[turn_id] - end_wall
    out["load1"] = load1()
    return out


def ratios(ours: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
    """Our client-side first-audio latency divided by each baseline's total (p50 and p95)."""
    out: dict[str, float] = {}
    mine = ours.get("client_audio")
    if not mine:
        return out
    for name in ("cascade", "fixed500_sentence"):
        theirs = base[name]["summary"].get("total")
        if theirs:
            out[f"{name}_p50"] = mine["p50"] / theirs["p50"]
            out[f"{name}_p95"] = mine["p95"] / theirs["p95"]
    return out


def breakdown_table(result: dict[str, Any]) -> Table:
    """The per-part p50/p95 table (ms) of our engine and the baselines."""
    table = Table(title=f"voice-to-face latency, {result['config']['turns']} turns (ms)")
    table.add_column("part")
    table.add_column("ours p50", justify="right")
    table.add_column("ours p95", justify="right")
    base = result.get("baselines", {})
    for name in ("cascade", "fixed500_sentence"):
        if name in base:
            table.add_column(f"{name} p50", justify="right")
    rows = [*PARTS, "total", "transport", "client_audio", "client_video"]
    brows = {"first_token": None, "first_phrase": ("reply", "first_sentence")}
    brows |= {"tts_first_chunk": ("tts", "tts"), "first_frame": ("render", "render")}
    ours = result["ours"]

    def ms(d: dict[str, Any] | None) -> str:
        return f"{d['p50'] * 1000:.0f}" if d else "-"

    for part in rows:
        cells = [
            part,
            ms(ours.get(part)),
            f"{ours[part]['p95'] * 1000:.0f}" if part in ours else "-",
        ]
        for j, name in enumerate(("cascade", "fixed500_sentence")):
            if name not in base:
                continue
            summ = base[name]["summary"]
            key = part
            if part in brows:
                alt = brows[part]
                key = alt[j] if alt else ""
            elif part == "client_audio":
                key = "total"
            elif part in ("total", "client_video"):
                key = ""
            cells.append(ms(summ.get(key)) if key else "-")
        table.add_row(*cells)
    r = result.get("ratios", {})
    if r:
        table.caption = "ours / baseline (client first audio, p50): " + ", ".join(
            f"{k.removesuffix('_p50')} {v:.2f}" for k, v in r.items() if k.endswith("_p50")
        )
    return table
