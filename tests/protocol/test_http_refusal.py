"""The kiosk WebSocket port answers plain HTTP with the server's one JSON error body."""

from __future__ import annotations

import httpx
from engine_helpers import make_engine

from anima.protocol import ProtocolServer


async def test_plain_http_gets_a_json_426_with_upgrade(tmp_path):
    # The handshake is refused before any session: the engine need not load its models.
    async with ProtocolServer(make_engine(tmp_path), "127.0.0.1", 0) as srv:
        async with httpx.AsyncClient() as http:
            r = await http.get(f"http://127.0.0.1:{srv.port}/")
            assert r.status_code == 426
            assert r.headers["upgrade"] == "websocket"
            assert r.headers["content-type"] == "application/json"
            body = r.json()
            assert body["error"] == "upgrade_required"
            assert body["message"].startswith("Failed to open a WebSocket connection")
            assert "\n" not in body["message"]
            r = await http.get(
                f"http://127.0.0.1:{srv.port}/",
                headers={"connection": "upgrade", "upgrade": "websocket"},  # no key
            )
            assert r.status_code == 400 and r.json()["error"] == "bad_request"
