"""The cluster's pure parts: wire messages, the gateway's worker directory, deploy configs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from anima.cli import main
from anima.cluster import wire
from anima.cluster.deploy import RTMP_MODULE, Fanout, nats_config, write_fanout
from anima.cluster.directory import Directory


@pytest.mark.parametrize(
    "body, what",
    [
        (b"\x00\xff", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"sdp": "v=0"}', "lacks session_id"),
        (b'{"sdp": 5, "session_id": "x"}', "lacks sdp"),
    ],
)
def test_garbage_replies_are_bad_replies(body, what):
    with pytest.raises(wire.BadReply, match=what):
        wire.decode(body, "sdp", "session_id")


def test_error_replies_keep_status_code_and_message():
    with pytest.raises(wire.WorkerError) as info:
        wire.decode(wire.error(503, "busy", "full"))
    assert (info.value.status, info.value.code, info.value.message) == (503, "busy", "full")
    with pytest.raises(wire.WorkerError) as info:  # a nonsense status becomes 502
        wire.decode(b'{"error": "x", "status": 200}')
    assert info.value.status == 502


def test_heartbeat_round_trip_and_malformed():
    beat = wire.Heartbeat("w1", "n", "cpu", 4, 3, sessions=["a", "b"])
    assert wire.Heartbeat.parse(beat.to_bytes()) == beat
    with pytest.raises(wire.BadReply):
        wire.Heartbeat.parse(b'{"worker": "w1", "capacity": "many", "free": 1}')


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_directory_orders_by_free_slots_and_forgets_silent_workers():
    clock = Clock()
    d = Directory(lost_after=2.0, clock=clock)
    d.saw(wire.Heartbeat("a", "n", "cpu", 4, 1, sessions=["s1", "s2", "s3"]))
    d.saw(wire.Heartbeat("b", "n", "cpu", 4, 3))
    d.saw(wire.Heartbeat("c", "n", "cpu", 4, 0))
    d.saw(wire.Heartbeat("dr", "n", "cpu", 4, 4, draining=True))
    assert d.candidates(set()) == ["b", "a"]  # most free first; full and draining left out
    assert d.candidates({"b"}) == ["a"]
    d.taken("b")
    d.taken("b")
    d.taken("b")  # three sent to b before its next heartbeat: a is as free now
    assert d.candidates(set()) == ["a"]
    clock.t = 1.5
    d.saw(wire.Heartbeat("b", "n", "cpu", 4, 3))
    clock.t = 3.0
    stale = d.stale()
    assert sorted(b.worker for b in stale) == ["a", "c", "dr"]
    assert next(b for b in stale if b.worker == "a").sessions == ["s1", "s2", "s3"]
    assert d.stale() == [] and d.alive("b") and not d.alive("a")


def test_directory_pauses_during_our_own_outage_and_drops_gone_workers():
    clock = Clock()
    d = Directory(lost_after=1.0, clock=clock)
    d.saw(wire.Heartbeat("a", "n", "cpu", 1, 1))
    d.pause()
    clock.t = 10.0
    assert d.stale() == [] and d.alive("a")  # silence while we are cut off proves nothing
    d.resume()
    assert d.stale() == [] and d.alive("a")  # a fresh grace period after reconnecting
    d.saw(wire.Heartbeat("a", "n", "cpu", 1, 0, gone=True))
    assert d.workers == {} and d.stale() == []


def test_nats_config_has_jetstream_and_routes(tmp_path):
    text = nats_config("anima", tmp_path / "js", ["10.0.0.2:6222", "nats-route://10.0.0.3:6222"])
    assert "jetstream" in text and str(tmp_path / "js") in text
    assert "nats-route://10.0.0.2:6222" in text and "nats-route://10.0.0.3:6222" in text
    assert "cluster {" not in nats_config("anima", tmp_path, [])
    exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if Path(exe).exists():  # the server itself accepts the file
        conf = tmp_path / "nats.conf"
        conf.write_text(text)
        check = subprocess.run([exe, "-c", str(conf), "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_fanout_configs_are_valid_nginx(tmp_path):
    fan = Fanout(edges=["127.0.0.1:1936", "127.0.0.1:1937"], root=tmp_path, as_root=True)
    paths = write_fanout(tmp_path / "conf", fan)
    names = sorted(p.name for p in paths)
    assert names == [
        "nginx-edge-1.conf",
        "nginx-edge-2.conf",
        "nginx-hls-cache.conf",
        "nginx-origin.conf",
    ]
    origin = (tmp_path / "conf" / "nginx-origin.conf").read_text()
    assert "push rtmp://127.0.0.1:1936/live;" in origin and "hls on;" in origin
    cache = (tmp_path / "conf" / "nginx-hls-cache.conf").read_text()
    assert "proxy_cache_lock on;" in cache and "proxy_ignore_headers Cache-Control" in cache
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not (Path(exe).exists() and Path(RTMP_MODULE).exists()):
        pytest.skip("nginx with libnginx-mod-rtmp is not installed")
    for path in paths:
        check = subprocess.run(
            [exe, "-t", "-c", str(path), "-p", str(tmp_path)], capture_output=True, text=True
        )
        assert check.returncode == 0, f"{path.name}: {check.stderr}"


def test_deploy_command_writes_everything(tmp_path, capsys):
    assert main(["deploy", "all", "--out", str(tmp_path), "--routes", "10.0.0.2:6222"]) == 0
    assert {p.name for p in tmp_path.iterdir()} >= {"nats-server.conf", "nginx-origin.conf"}
    assert "wrote" in capsys.readouterr().err


def test_gateway_without_nats_answers_503_at_once_and_checks_bodies():
    from fastapi.testclient import TestClient

    from anima.cluster.gateway import create_gateway
    from anima.config import Settings

    settings = Settings.load(None, cluster={"nats_url": "nats://127.0.0.1:1", "retry_after": 3})
    with TestClient(create_gateway(settings, host="127.0.0.1")) as client:
        assert client.get("/api/health").json()["status"] == "unavailable"
        r = client.post("/api/sessions/abcdefgh/say", json={"text": "hello"})
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert r.headers["retry-after"] == "3"
        r = client.post("/api/sessions/abcdefgh/say", json={"text": "   "})
        assert r.status_code == 400 and "empty" in r.json()["message"]
        r = client.post("/api/offer", json={"sdp": "hello"})
        assert r.status_code == 400 and r.json()["error"] == "bad_sdp"
        r = client.get("/api/nowhere")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
