"""``anima bench rtc``: voice-to-face latency over WebRTC, and how many talking sessions fit.

The server is a real ``anima serve`` child process on loopback, pinned to two CPU cores (the
first two this process may use); the WebRTC clients (aiortc, :mod:`anima.server.client`) run
in this process, on the remaining cores when there are any.

1. **Latency**: one client speaks ``--turns`` questions (made by the project's TTS) into its
   microphone track. Voice-to-face is measured at the client, from the moment the last sample
   of the question is sent to the first received avatar audio with sound in it; the server's
   ``latency`` events give the per-stage breakdown (endpoint, asr, first_phrase,
   tts_first_chunk, first_frame, total). ``total`` ends when the first reply audio left in an
   RTP packet; the output path's parts (``out_queue``, ``out_pacing``, ``out_encode``,
   ``out_send``, their sum ``output``) and the engine's own ``engine_total`` come with it, and
   ``gap`` is what the client heard minus ``total``. Each turn records the load average; with
   ``--stress`` a CPU hog spins on one of the server's two cores all along. After the first sound the client interrupts and
   waits for the avatar to listen again, so every turn starts from the same state.
2. **Concurrent talking sessions**: 1, 2, 3 … clients whose avatars talk all the time
   (``say`` of a long text, repeated). A count is *sustained* when every client received at
   least 96 % of the 25 fps video frames and 96 % of the 20 ms audio frames due over the
   measured window. The sweep stops at the first count that is not sustained.

Results: ``<out>/rtc.json``, ``<out>/rtc.png`` and ``<out>/rtc_load.png`` (per-turn latency
against the load average). ``--max-sessions 0`` skips the sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from anima.bench.common import stats, write_result
from anima.bench.tail import cpu_hog, load1, plot_vs_load, tail_summary
from anima.config import Settings

QUESTIONS = (
    "What are your opening hours?",
    "Where can I park my car?",
    "Do you have a lost and found?",
    "Can I pay by card?",
    "Is there a cafe in the building?",
    "How do I get to the train station?",
    "Who can help me with a return?",
    "Are dogs allowed inside?",
)
TALK = (
    "Welcome to the city museum. The west wing is open until ten tonight, with guided tours "
    "every hour on the hour, and the cafe on the ground floor serves coffee until nine."
)
SUSTAIN = 0.96
PART_ORDER = (
    "endpoint",
    "asr",
    "first_phrase",
    "tts_first_chunk",
    "first_frame",
    "engine_total",
    "out_queue",
    "out_pacing",
    "out_encode",
    "out_send",
    "output",
    "total",
    "gap",
)


def _server_cores() -> set[int]:
    mine = sorted(os.sched_getaffinity(0))
    return set(mine[:2])


@contextlib.asynccontextmanager
async def _server(config: Path | None, max_sessions: int, err: Console):
    """``anima serve`` in a child process pinned to two cores; yields (url, pid)."""
    env = dict(os.environ, ANIMA_SERVER__MAX_SESSIONS=str(max_sessions))
    cmd = [sys.executable, "-m", "anima.cli"]
    if config is not None:
        cmd += ["--config", str(config)]
    cmd += ["serve", "--host", "127.0.0.1", "--port", "0"]
    cores = _server_cores()
    proc = await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, cores),
    )
    drain = None
    try:
        url = await _read_url(proc)
        # Keep reading stderr so the child never blocks on a full pipe.
        drain = asyncio.create_task(_drain(proc))
        err.print(f"server {url} on cores {sorted(cores)}")
        yield url, proc.pid
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if drain is not None:
            drain.cancel()


async def _read_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    lines = []
    while line := (await proc.stderr.readline()).decode(errors="replace"):
        lines.append(line)
        match = re.search(r"(http://\S+:\d+)/", line)
        if match:
            return match.group(1).replace("localhost", "127.0.0.1")
    raise RuntimeError(f"anima serve exited before it printed its URL: {''.join(lines[-5:])}")


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    while await proc.stderr.read(65536):
        pass


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _latency(url: str, turns: int, err: Console) -> dict[str, object]:
    from anima.server.client import RtcClient
    from anima.tts import load_voice

    voice = load_voice()
    speech = []
    for q in QUESTIONS:
        pcm = np.concatenate([c.pcm for c in voice.synthesize(q)])
        speech.append((q, np.concatenate([pcm, np.zeros(voice.sample_rate, np.int16)])))
    client = RtcClient(url, greet=False)
    await client.connect()
    await client.wait_event("state", state="listening", within=60)
    await asyncio.sleep(1.0)
    rows, client_ms = [], []
    for i in range(turns):
        question, pcm = speech[i % len(speech)]
        before = len(client.latencies)
        client.replied.clear()
        client.mic.speak(pcm, voice.sample_rate)
        try:
            event = await client.wait_event("latency", within=60)
            await asyncio.wait_for(client.replied.wait(), 20)
        except TimeoutError:
            err.print(f"turn {i + 1}: no reply to {question!r}")
            continue
        heard = client.latencies[before] if len(client.latencies) > before else None
        parts = dict(event["parts"])
        if heard is not None and "total" in parts:
            parts["gap"] = heard - parts["total"]  # network and client, after the wire
        rows.append({"question": question, "client_s": heard, "parts": parts, "load1": load1()})
        if heard is not None:
            client_ms.append(heard * 1000)
        err.print(
            f"turn {i + 1}/{turns}: voice-to-face {heard * 1000 if heard else float('nan'):.0f} ms"
            f" (server total {parts.get('total', 0) * 1000:.0f} ms, output path "
            f"{parts.get('output', float('nan')) * 1000:.0f} ms, load {rows[-1]['load1']})"
        )
        client.send({"type": "interrupt"})
        with contextlib.suppress(TimeoutError):
            await client.wait_event("state", state="listening", within=20)
        await asyncio.sleep(0.8)
    await client.close()
    queue_ms = await _queue_delay(url)
    parts: dict[str, list[float]] = {}
    for row in rows:
        for k, v in row["parts"].items():
            parts.setdefault(k, []).append(v * 1000)
    return {
        "turns": len(rows),
        "voice_to_face_ms": stats(client_ms) if client_ms else None,
        "tail": tail_summary(
            [r["client_s"] for r in rows if r["client_s"] is not None],
            [r["load1"] for r in rows],
        ),
        "server_parts_ms": {k: stats(parts[k]) for k in PART_ORDER if k in parts},
        "server_track_queue_mean_ms": queue_ms,
        "rows": rows,
    }


async def _queue_delay(url: str) -> dict[str, float]:
    """Mean time frames waited in the server's outgoing track queues (from /metrics)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    sums: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "anima_rtc_track_queue_seconds":
            continue
        for sample in family.samples:
            kind = sample.labels.get("kind", "")
            if sample.name.endswith("_sum"):
                sums.setdefault(kind, {})["sum"] = sample.value
            elif sample.name.endswith("_count"):
                sums.setdefault(kind, {})["count"] = sample.value
    return {k: 1000 * v["sum"] / v["count"] for k, v in sums.items() if v.get("count")}


async def _talking(url: str, n: int, seconds: float, fps: int, pid: int) -> dict[str, object]:
    from anima.server.client import RtcClient

    clients = [RtcClient(url, greet=False) for _ in range(n)]
    for c in clients:
        await c.connect()

    async def keep_talking(c) -> None:
        while True:
            c.send({"type": "say", "text": TALK})
            await asyncio.sleep(4.0)  # keeps the queue non-empty: the avatar never pauses

    talkers = [asyncio.create_task(keep_talking(c)) for c in clients]
    for c in clients:
        await c.wait_event("state", state="speaking", within=60)
    await asyncio.sleep(1.0)  # settle
    v0 = [c.video_frames for c in clients]
    a0 = [c.audio_frames for c in clients]
    cpu0, t0 = _cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - t0
    cpu = _cpu_seconds(pid) - cpu0
    video = [(c.video_frames - v) / elapsed for c, v in zip(clients, v0, strict=True)]
    audio = [(c.audio_frames - a) / elapsed / 50 for c, a in zip(clients, a0, strict=True)]
    for t in talkers:
        t.cancel()
    await asyncio.gather(*talkers, return_exceptions=True)
    for c in clients:
        await c.close()
    ok = min(video) >= SUSTAIN * fps and min(audio) >= SUSTAIN
    return {
        "sessions": n,
        "video_fps_min": min(video),
        "video_fps_mean": float(np.mean(video)),
        "audio_realtime_min": min(audio),
        "server_cpu_cores": cpu / elapsed,
        "sustained": ok,
    }


def bench_rtc(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    turns: int = 20,
    max_sessions: int = 6,
    seconds: float = 12.0,
    config: Path | None = None,
    stress: bool = False,
) -> int:
    """Run both measurements and write ``rtc.json`` and ``rtc.png`` under ``out``."""
    fps = settings.render.fps
    config = config or (
        Path(os.environ["ANIMA_CONFIG"]) if os.environ.get("ANIMA_CONFIG") else None
    )

    async def main() -> dict[str, object]:
        async with _server(config, max(1, max_sessions), err) as (url, pid):
            with cpu_hog(stress, max(_server_cores())) as hog:
                if hog:
                    err.print(f"--stress: a CPU hog (pid {hog}) spins on one server core")
                latency = await _latency(url, turns, err)
            sweep = []
            for n in range(1, max_sessions + 1):
                row = await _talking(url, n, seconds, fps, pid)
                sweep.append(row)
                err.print(
                    f"{n} talking session(s): min {row['video_fps_min']:.1f} fps, audio "
                    f"{row['audio_realtime_min']:.2f}x real time, server "
                    f"{row['server_cpu_cores']:.2f} cores -> "
                    f"{'sustained' if row['sustained'] else 'NOT sustained'}"
                )
                await asyncio.sleep(2.0)
                if not row["sustained"]:
                    break
        return {"latency": latency, "sweep": sweep}

    result = asyncio.run(main())
    sweep = result["sweep"]
    held = max((r["sessions"] for r in sweep if r["sustained"]), default=0)
    summary = {
        "settings": {
            "brain": settings.brain.backend,
            "knowledge": str(settings.knowledge.dir) if settings.knowledge.dir else None,
            "render_size": settings.render.size,
            "fps": fps,
            "server_cores": len(_server_cores()),
            "client_on_other_cores": (os.cpu_count() or 1) > 2,
            "stress": "one CPU hog on one server core during the turns" if stress else None,
        },
        "sessions_sustained_at_fps": held,
        **result,
    }
    path = write_result(out, "rtc", summary)
    _plot(result, out / "rtc.png", fps)
    rows = result["latency"]["rows"]
    plot_vs_load(
        {"heard at the client": [(r["load1"], r["client_s"]) for r in rows if r["client_s"]]},
        out / "rtc_load.png",
        "voice-to-face over WebRTC" + (" (--stress)" if stress else ""),
    )
    v2f = result["latency"]["voice_to_face_ms"]
    if v2f:
        load = result["latency"]["tail"].get("load1", {})
        err.print(
            f"voice-to-face p50 {v2f['p50']:.0f} ms, p95 {v2f['p95']:.0f} ms, max "
            f"{v2f['max']:.0f} ms; load average p50 {load.get('p50', float('nan')):.2f}"
        )
        for part in ("output", "gap"):
            got = result["latency"]["server_parts_ms"].get(part)
            if got:
                err.print(f"{part}: p50 {got['p50']:.0f} ms, p95 {got['p95']:.0f} ms")
    err.print(f"{held} talking session(s) sustained at {fps} fps on two cores; wrote {path}")
    return 0


def _plot(result: dict, path: Path, fps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lat = result["latency"]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    heard = [r["client_s"] * 1000 for r in lat["rows"] if r["client_s"] is not None]
    parts = lat["server_parts_ms"]
    names = [k for k in PART_ORDER if k in parts]
    ax1.barh(names, [parts[k]["p50"] for k in names], color="#2a5bd7", label="server p50")
    if heard:
        ax1.barh(["client (v2f)"], [float(np.median(heard))], color="#d7852a", label="client p50")
    ax1.set_xlabel("ms")
    ax1.set_title(f"voice-to-face over {lat['turns']} turns")
    ax1.legend(loc="lower right", fontsize=8)
    sweep = result["sweep"]
    xs = [r["sessions"] for r in sweep]
    ax2.plot(xs, [r["video_fps_min"] for r in sweep], "o-", label="min fps received")
    ax2.axhline(fps * SUSTAIN, color="grey", ls="--", label=f"{SUSTAIN:.0%} of {fps} fps")
    ax2.set_xlabel("concurrent talking sessions (--max-sessions 0: none run)")
    ax2.set_ylabel("fps")
    ax2.set_title("sessions on two cores")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
