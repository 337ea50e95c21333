"""Fixtures: Debian's nginx with libnginx-mod-rtmp on loopback, for the end-to-end tests."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")

CONF = """\
load_module {module};
{user}
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
worker_processes 1;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        chunk_size 4096;
        application live {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique on;
        }}
    }}
}}
"""


def available() -> str | None:
    """Why nginx-rtmp cannot run here, or None when it can."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        return "nginx is not installed (apt-get install nginx libnginx-mod-rtmp)"
    if not MODULE.exists():
        return "libnginx-mod-rtmp is not installed"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RtmpServer:
    """nginx in the foreground in a temporary folder; ``stop``/``start`` simulate an outage."""

    def __init__(self, folder: Path) -> None:
        self.dir = folder
        self.port = free_port()
        (folder / "rec").mkdir(parents=True, exist_ok=True)
        self.conf = folder / "nginx.conf"
        # As root nginx would run its worker as nobody, which cannot write into a private tmp
        # folder; keep the worker as the current user.
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf.write_text(CONF.format(module=MODULE, dir=folder, port=self.port, user=user))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/show"

    def start(self) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.proc = subprocess.Popen(
            [nginx, "-c", str(self.conf), "-p", str(self.dir), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().decode()[-500:]}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("nginx did not start listening")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: nginx stops at once, dropping connections
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def recordings(self) -> list[Path]:
        return sorted((self.dir / "rec").glob("*.flv"), key=lambda p: p.stat().st_mtime)


@pytest.fixture
def unused_port() -> int:
    return free_port()


@pytest.fixture
def nginx_rtmp(tmp_path):
    """A started nginx-rtmp on loopback (skipped where Debian's packages are missing)."""
    why = available()
    if why:
        pytest.skip(why)
    server = RtmpServer(tmp_path / "nginx")
    server.start()
    yield server
    server.stop()
