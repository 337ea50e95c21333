"""Helpers of the cluster tests. A real cluster on loopback: Debian's ``nats-server`` (JetStream, temp store), ``anima
worker`` processes (kb brain, 128 px frames: they load in a few seconds) and ``anima gateway``.

Every process these helpers start is stopped by them (SIGTERM, then SIGKILL after a grace period).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KB = ROOT / "examples" / "kiosk_knowledge"
OPERATOR = "operator-key-for-tests-0123456789"
SECRET = "token-secret-for-tests-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {within} s")


def stop(
    proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace: float = 15.0
) -> int | None:
    """Stop ``proc`` (if running) and reap it; its exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


class Nats:
    """``nats-server -js`` on a free loopback port; ``stop``/``start`` make an outage."""

    def __init__(self, folder: Path) -> None:
        self.store = folder / "js"
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
        self.proc = subprocess.Popen(
            [exe, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(self.port, self.proc, 10)

    def stop(self) -> None:
        stop(self.proc, grace=5)
        self.proc = None


class Proc:
    """An ``anima`` command in a child process; its stderr lines are kept."""

    def __init__(self, args: list[str], ready: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("ANIMA_CONFIG", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anima.cli", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._marker = ready
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if self._marker in line:
                self._ready.set()

    def wait_ready(self, within: float = 60.0) -> None:
        deadline = time.monotonic() + within
        while not self._ready.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("not ready:\n" + "".join(self.lines[-30:]))

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        return stop(self.proc, sig)


def write_config(folder: Path, nats_url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "anima.toml"
    path.write_text(
        f"""
data_dir = "{folder / "data"}"
log_level = "WARNING"
[brain]
backend = "kb"
[knowledge]
dir = "{KB}"
[render]
size = 128
seed = 1
[memory]
enabled = false
audit = false
[server]
drain_seconds = 8
max_sessions_per_client = 50
messages_per_second = 200
message_burst = 400
[webrtc]
require_token = true
token_secret = "{SECRET}"
operator_key = "{OPERATOR}"
[cluster]
nats_url = "{nats_url}"
heartbeat_seconds = 0.25
lost_after = 1.5
request_timeout = 8
"""
    )
    return path


class Cluster:
    """NATS, workers and a gateway; ``url`` is the gateway's base URL."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.nats = Nats(folder)
        self.config: Path | None = None
        self.workers: dict[str, Proc] = {}
        self.gateway: Proc | None = None
        self.port = free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_worker(self, name: str, capacity: int) -> Proc:
        assert self.config is not None
        proc = Proc(
            ["--config", str(self.config), "worker", "--name", name, "--capacity", str(capacity)],
            "ready",
        )
        self.workers[name] = proc
        return proc

    def start(self, workers: dict[str, int]) -> None:
        self.nats.start()
        self.config = write_config(self.folder, self.nats.url)
        for name, capacity in workers.items():
            self.start_worker(name, capacity)
        self.gateway = Proc(
            ["--config", str(self.config), "gateway", "--port", str(self.port)], "gateway on"
        )
        wait_port(self.port, self.gateway.proc)
        for proc in self.workers.values():
            proc.wait_ready()

    def close(self) -> None:
        for proc in self.workers.values():
            proc.stop()
        if self.gateway is not None:
            self.gateway.stop()
        self.nats.stop()
