"""A real ``anima serve`` on loopback (uvicorn in the test's loop) with the kb brain."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
import uvicorn

from anima.config import Settings

KIOSK = Path(__file__).resolve().parents[2] / "examples" / "kiosk_knowledge"


def server_settings(tmp_path: Path, size: int = 128, **sections) -> Settings:
    """Fast settings: knowledge-base brain (no model), small frames, nothing written."""
    base = {
        "data_dir": tmp_path / "data",
        "brain": {"backend": "kb"},
        "knowledge": {"dir": KIOSK},
        "render": {"size": size, "seed": 1},
        "memory": {"enabled": False, "audit": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value}
    return Settings.load(None, **base)


@contextlib.asynccontextmanager
async def serving(app, host: str = "127.0.0.1"):
    """Run ``app`` on a free loopback port; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="session")
def make_settings():
    """``make_settings(tmp_path, size=128, **sections)``: fast server settings."""
    return server_settings


@pytest.fixture(scope="session")
def serve():
    """``async with serve(app) as url``: the app on a free loopback port."""
    return serving
