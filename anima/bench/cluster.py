"""``anima bench cluster``: the cluster with 1, 2 and 3 workers on this machine.

A real ``nats-server`` (JetStream, temporary store), ``anima worker`` child processes and an
``anima gateway`` child process on loopback; WebRTC clients (aiortc) in this process. For each
worker count:

- **talking sessions at 25 fps**: 1, 2, … clients through the gateway whose avatars talk all
  the time (as ``anima bench rtc``); a count is sustained when every client receives 96 % of
  the frames due. The workers share this machine's cores, so the figure that carries to more
  machines is sessions per core: ``sustained / min(workers, cores)``;
- **voice-to-face** p50/p95 at the client over spoken turns (as ``anima bench rtc``);
- **gateway signalling overhead**: an offer through the gateway (HTTP → NATS → worker) minus
  the same offer sent straight to a worker's NATS subject;
- **NATS message latency**: request/reply round trips to a worker's status endpoint.

Results: ``<out>/cluster.json`` and ``<out>/cluster.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from anima.bench.common import stats, write_result
from anima.bench.rtc import _cpu_seconds, _latency, _talking
from anima.config import Settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_KB = ROOT / "examples" / "kiosk_knowledge"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _listening(port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


async def _spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, env=env
    )


async def _wait_line(
    proc: asyncio.subprocess.Process, marker: str, within: float = 90
) -> asyncio.Task[None]:
    """Wait for ``marker`` on stderr; the task that keeps reading (so a full pipe never blocks)."""
    assert proc.stderr is not None
    async with asyncio.timeout(within):
        while True:
            line = (await proc.stderr.readline()).decode(errors="replace")
            if not line:
                raise RuntimeError(f"the process exited before '{marker}'")
            if marker in line:
                break
    return asyncio.get_running_loop().create_task(_discard(proc))


async def _discard(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    while await proc.stderr.readline():
        pass


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            async with asyncio.timeout(15):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()


def _config(folder: Path, settings: Settings, nats_url: str, capacity: int) -> Path:
    kb = settings.knowledge.dir or EXAMPLE_KB
    path = folder / "anima.toml"
    path.write_text(
        f'data_dir = "{folder / "data"}"\n'
        f'[brain]\nbackend = "kb"\n[knowledge]\ndir = "{kb}"\n'
        f"[render]\nsize = {settings.render.size}\nfps = {settings.render.fps}\n"
        "[memory]\nenabled = false\naudit = false\n"
        f"[server]\nmax_sessions = {capacity}\nmax_sessions_per_client = 100\n"
        "messages_per_second = 500\nmessage_burst = 1000\n"
        f'[cluster]\nnats_url = "{nats_url}"\n'
    )
    return path


async def _nats_latency(nats_url: str, worker: str, n: int = 200) -> dict[str, float]:
    import nats

    from anima.cluster import wire

    nc = await nats.connect(nats_url)
    try:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            await nc.request(wire.direct(worker, "status"), b"", timeout=5)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        await nc.close()
    return stats(times)


async def _signalling(url: str, nats_url: str, worker: str, n: int = 8) -> dict[str, object]:
    """Offer→answer through the gateway vs straight to the worker over NATS (ms)."""
    import httpx
    import nats

    from anima.cluster import wire
    from anima.server.registry import new_session_id

    async def sdp() -> tuple[object, str]:
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        pc.createDataChannel("events")
        await pc.setLocalDescription(await pc.createOffer())
        return pc, pc.localDescription.sdp

    via, direct = [], []
    nc = await nats.connect(nats_url)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(n):
                pc, offer = await sdp()
                t0 = time.perf_counter()
                r = await http.post(f"{url}/api/offer", json={"sdp": offer, "greet": False})
                via.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                await nc.request(
                    wire.control(r.json()["session_id"]), wire.encode({"op": "close"}), timeout=10
                )
                await pc.close()  # type: ignore[attr-defined]
                pc, offer = await sdp()
                sid = new_session_id()
                body = wire.encode({"sid": sid, "sdp": offer, "greet": False, "local": True})
                t0 = time.perf_counter()
                msg = await nc.request(wire.direct(worker, "offer"), body, timeout=30)
                direct.append((time.perf_counter() - t0) * 1000)
                wire.decode(msg.data, "sdp")
                await nc.request(wire.control(sid), wire.encode({"op": "close"}), timeout=10)
                await pc.close()  # type: ignore[attr-defined]
                await asyncio.sleep(0.3)
    finally:
        await nc.close()
    over = [a - b for a, b in zip(via, direct, strict=True)]
    return {
        "via_gateway_ms": stats(via),
        "direct_nats_ms": stats(direct),
        "overhead_ms": stats(over),
    }


def bench_cluster(
    out: Path,
    settings: Settings,
    err: Console,
    *,
    workers: int = 3,
    turns: int = 8,
    max_sessions: int = 4,
    seconds: float = 8.0,
) -> int:
    """Measure 1..``workers`` workers; write ``cluster.json`` and ``cluster.png``."""
    exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not Path(exe).exists():
        raise ValueError("nats-server is not installed (apt-get install nats-server)")
    fps = settings.render.fps
    cores = len(os.sched_getaffinity(0))

    async def one(k: int, folder: Path) -> dict[str, object]:
        nats_port, gw_port = _port(), _port()
        nats_url = f"nats://127.0.0.1:{nats_port}"
        nats_proc = await _spawn(
            exe, "-a", "127.0.0.1", "-p", str(nats_port), "-js", "-sd", str(folder / "js")
        )
        procs: list[asyncio.subprocess.Process] = []
        readers: list[asyncio.Task[None]] = []
        try:
            await _listening(nats_port)
            conf = _config(folder, settings, nats_url, max_sessions)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            cli = [sys.executable, "-m", "anima.cli", "--config", str(conf)]
            for i in range(k):
                procs.append(await _spawn(*cli, "worker", "--name", f"w{i + 1}", env=env))
            gateway = await _spawn(*cli, "gateway", "--port", str(gw_port), env=env)
            readers = [await _wait_line(p, "ready") for p in procs]
            await _listening(gw_port)
            url = f"http://127.0.0.1:{gw_port}"
            await asyncio.sleep(1.0)  # heartbeats reach the gateway
            nats_ms = await _nats_latency(nats_url, "w1")
            signalling = await _signalling(url, nats_url, "w1")
            latency = await _latency(url, turns, err)
            latency.pop("server_track_queue_mean_ms", None)  # the gateway has no media queues
            sweep = []
            for n in range(1, k * max_sessions + 1):
                pids = [p.pid for p in procs]
                cpu0, t0 = sum(_cpu_seconds(p) for p in pids), time.monotonic()
                row = await _talking(url, n, seconds, fps, pids[0])
                row["workers_cpu_cores"] = (sum(_cpu_seconds(p) for p in pids) - cpu0) / (
                    time.monotonic() - t0
                )
                row.pop("server_cpu_cores", None)
                sweep.append(row)
                err.print(
                    f"{k} worker(s), {n} talking: min {row['video_fps_min']:.1f} fps -> "
                    f"{'sustained' if row['sustained'] else 'NOT sustained'}"
                )
                await asyncio.sleep(2.0)
                if not row["sustained"]:
                    break
            held = max((r["sessions"] for r in sweep if r["sustained"]), default=0)
            v2f = latency["voice_to_face_ms"]
            err.print(
                f"{k} worker(s): {held} sessions at {fps} fps; voice-to-face p50 "
                f"{v2f['p50'] if v2f else float('nan'):.0f} ms; NATS rtt p50 {nats_ms['p50']:.2f} ms; "
                f"gateway overhead p50 {signalling['overhead_ms']['p50']:.1f} ms"  # type: ignore[index]
            )
            return {
                "workers": k,
                "load_average_1min": os.getloadavg()[0],  # other jobs on the machine move it all
                "sessions_sustained": held,
                "sessions_per_core": held / min(k, cores),
                "latency": latency,
                "signalling": signalling,
                "nats_request_ms": nats_ms,
                "sweep": sweep,
            }
        finally:
            for p in procs:
                await _stop(p)
            with contextlib.suppress(UnboundLocalError):
                await _stop(gateway)
            await _stop(nats_proc)
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def main() -> list[dict[str, object]]:
        rows = []
        for k in range(1, workers + 1):
            with tempfile.TemporaryDirectory(prefix="anima-cluster-") as tmp:
                rows.append(await one(k, Path(tmp)))
        return rows

    rows = asyncio.run(main())
    summary = {
        "settings": {
            "render_size": settings.render.size,
            "fps": fps,
            "cores": cores,
            "capacity_per_worker": max_sessions,
        },
        "runs": rows,
    }
    path = write_result(out, "cluster", summary)
    _plot(rows, out / "cluster.png", fps)
    err.print(f"wrote {path}")
    return 0


def _plot(rows: list[dict], path: Path, fps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    ks = [r["workers"] for r in rows]
    ax1.bar([k - 0.2 for k in ks], [r["sessions_sustained"] for r in rows], 0.4, label="sessions")
    ax1.bar([k + 0.2 for k in ks], [r["sessions_per_core"] for r in rows], 0.4, label="per core")
    ax1.set_xlabel("workers")
    ax1.set_title(f"talking sessions sustained at {fps} fps")
    ax1.legend(fontsize=8)
    for key, label in (("p50", "v2f p50"), ("p95", "v2f p95")):
        ax2.plot(
            ks,
            [(r["latency"]["voice_to_face_ms"] or {}).get(key, float("nan")) for r in rows],
            "o-",
            label=label,
        )
    ax2.plot(ks, [r["signalling"]["overhead_ms"]["p50"] for r in rows], "s--", label="gateway p50")
    ax2.set_xlabel("workers")
    ax2.set_ylabel("ms")
    ax2.set_title("voice-to-face and gateway overhead")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
