"""Livestream fan-out end to end, with the configs ``anima deploy fanout`` writes: a show pushed
once to an origin nginx-rtmp, relayed to an edge, pulled as RTMP from the edge and as HLS
through the nginx cache tier; both whole, in order, A/V aligned."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from cluster_harness import free_port, stop, wait_port

from anima.cluster.deploy import RTMP_MODULE, Fanout, write_fanout
from anima.live.script import parse_script
from anima.live.wiring import build_show, make_outputs
from anima.render.avatar import prepare_avatar

SIZE, FPS, SECONDS = 128, 25, 12
SCRIPT = """\
Good evening, and welcome to the late news.
[pause 1s]
The river festival starts tomorrow at ten in the morning.
"""


def nginx() -> str | None:
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    return exe if Path(exe).exists() and Path(RTMP_MODULE).exists() else None


def start_nginx(conf: Path, root: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [nginx(), "-c", str(conf), "-p", str(root), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc, 10)
    return proc


def packets(url: str, **open_kw) -> tuple[tuple, list[tuple[str, float]]]:
    """Stream info and (type, pts seconds) of every packet, in arrival order."""
    out, info = [], ()
    try:
        with av.open(url, **open_kw) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            info = (v.codec_context.name, v.width, v.height, a.codec_context.name)
            for p in c.demux():
                if p.pts is not None and p.stream.type in ("video", "audio"):
                    out.append((p.stream.type, float(p.pts * p.time_base)))
    except av.ExitError:
        pass  # the publisher went away: the end of a live pull
    return info, out


def check(pkts: list[tuple[str, float]], frames: int, min_share: float, join: float) -> None:
    """In order (strictly increasing per track, no gap), whole (``min_share`` of the frames),
    A/V aligned: both tracks end together, and start together up to ``join`` s (an RTMP player
    gets video only from the first keyframe it sees; audio flows at once)."""
    vpts = np.array([t for k, t in pkts if k == "video"])
    apts = np.array([t for k, t in pkts if k == "audio"])
    assert len(vpts) >= min_share * frames, f"{len(vpts)} of {frames} frames"
    assert (np.diff(vpts) > 0).all() and (np.diff(apts) > 0).all(), "out of order"
    assert np.diff(vpts).max() < 3 / FPS, "a gap in the video"
    assert abs(vpts[0] - apts[0]) < join and abs(vpts[-1] - apts[-1]) < 0.15, "A/V not aligned"


@pytest.mark.slow
def test_show_fans_out_to_edge_rtmp_and_cached_hls(settings, voice, portrait, tmp_path):
    if nginx() is None:
        pytest.skip("nginx with libnginx-mod-rtmp is not installed")
    root = tmp_path / "fan"
    (root / "hls").mkdir(parents=True)
    fan = Fanout(
        origin=f"127.0.0.1:{free_port()}",
        edges=[f"127.0.0.1:{free_port()}"],
        hls_port=free_port(),
        cache_port=free_port(),
        root=root,
        playlist_seconds=60,
        as_root=os.geteuid() == 0,
    )
    confs = {p.name: p for p in write_fanout(root / "conf", fan)}
    procs = []
    try:
        edge_port = int(fan.edges[0].rsplit(":", 1)[1])
        origin_port = int(fan.origin.rsplit(":", 1)[1])
        procs.append(start_nginx(confs["nginx-edge-1.conf"], root, edge_port))
        procs.append(start_nginx(confs["nginx-origin.conf"], root, origin_port))
        procs.append(start_nginx(confs["nginx-hls-cache.conf"], root, fan.cache_port))

        settings.render.size, settings.render.fps, settings.render.seed = SIZE, FPS, 1
        settings.live.video_bitrate = 300_000
        settings.live.keyframe_interval = 1.0
        avatar = prepare_avatar(portrait, "sample", size=SIZE)
        outputs = make_outputs(settings, rtmp=f"rtmp://{fan.origin}/live/show", live=True)
        show, hub = build_show(settings, avatar, voice, outputs, realtime=True)
        show.controller.load(parse_script(SCRIPT))

        pulled: dict = {}

        def viewer() -> None:  # waits on the edge before the show starts: gets all of it
            pulled["edge"] = packets(f"rtmp://{fan.edges[0]}/live/show live=1", timeout=(15, 15))

        watcher = threading.Thread(target=viewer)
        watcher.start()
        time.sleep(0.5)
        try:
            report = asyncio.run(show.run(max_seconds=SECONDS))
        finally:
            hub.close()
        watcher.join(30)
        frames = report.stats.frames
        assert frames == pytest.approx(SECONDS * FPS, abs=2)

        info, pkts = pulled["edge"]
        assert info == ("h264", SIZE, SIZE, "aac")
        check(pkts, frames, 0.9, join=1.1)  # keyframes every 1 s

        # HLS through the cache tier, as a player reads it: the playlist, then every segment
        # in its order (joined, they are one MPEG-TS stream): the whole show.
        base = f"http://127.0.0.1:{fan.cache_port}/hls"
        playlist = httpx.get(f"{base}/show.m3u8", timeout=5).text
        segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
        joined = tmp_path / "hls.ts"
        with joined.open("wb") as f:
            for seg in segments:
                r = httpx.get(f"{base}/{seg}", timeout=5)
                assert r.status_code == 200 and r.headers["x-cache"] in ("MISS", "HIT")
                f.write(r.content)
        info, pkts = packets(str(joined))
        assert info == ("h264", SIZE, SIZE, "aac")
        check(pkts, frames, 0.95, join=0.1)
        # A second viewer is served from the cache (one origin fetch per segment).
        assert httpx.get(f"{base}/{segments[0]}", timeout=5).headers["x-cache"] == "HIT"
    finally:
        for proc in procs:
            stop(proc, grace=5)
