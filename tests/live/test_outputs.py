"""One shared encode to MP4 and HLS, read back with PyAV; a dead RTMP server stops nothing."""

import asyncio

import av
import numpy as np

from anima.live.outputs import EncoderConfig, OutputHub, RtmpOutput, hls_output, mp4_output
from anima.live.script import parse_script
from anima.live.show import LiveShow

SR, FPS = 22050, 25


def frames(n, size=64):
    for k in range(n):
        img = np.full((size, size, 3), (k * 7) % 255, np.uint8)
        a, b = k * SR // FPS, (k + 1) * SR // FPS
        t = np.arange(a, b) / SR
        yield img, k, (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), a


def probe(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info = (v.codec_context.name, v.width, v.height, v.average_rate, a.codec_context.name)
        vpts, apts = [], []
        adur = 0.0
        for p in c.demux():
            if p.pts is None:
                continue
            if p.stream.type == "video":
                vpts.append(float(p.pts * p.time_base))
            else:
                apts.append(float(p.pts * p.time_base))
                adur = max(adur, float((p.pts + p.duration) * p.time_base))
    return info, sorted(vpts), apts, adur


def test_one_encode_feeds_mp4_and_hls(tmp_path):
    cfg = EncoderConfig(64, 64, FPS, keyframe_interval=1.0)
    hub = OutputHub(
        cfg,
        [
            mp4_output(tmp_path / "a.mp4", live=False),
            hls_output(tmp_path / "hls", segment=1.0, live=False),
        ],
    )
    for args in frames(100):
        hub.write(*args, SR)
    hub.close()
    assert hub.encoder.frames == 100  # encoded once, muxed twice
    for path in (tmp_path / "a.mp4", tmp_path / "hls" / "index.m3u8"):
        info, vpts, apts, adur = probe(path)
        assert info == ("h264", 64, 64, FPS, "aac")
        assert len(vpts) == 100
        steps = np.diff(vpts)
        assert np.allclose(steps, 1 / FPS, atol=1e-3)  # constant frame rate, no gap
        assert all(np.diff(apts) > 0)
        assert abs((vpts[-1] + 1 / FPS - vpts[0]) - (adur - apts[0])) < 0.1
    segments = sorted((tmp_path / "hls").glob("seg_*.ts"))
    assert len(segments) >= 3 and "#EXT-X-ENDLIST" in (tmp_path / "hls" / "index.m3u8").read_text()


def test_unreachable_rtmp_is_logged_and_the_show_goes_on(voice, tmp_path, caplog, unused_port):
    url = f"rtmp://127.0.0.1:{unused_port}/live/key"  # nothing listens there
    rtmp = RtmpOutput(url, retry_initial=0.2, timeout=2)
    hub = OutputHub(EncoderConfig(64, 64, FPS), [rtmp, mp4_output(tmp_path / "rec.mp4", live=True)])

    def face(index, shape, speaking):
        return np.full((64, 64, 3), 90, np.uint8)

    show = LiveShow(voice, face, hub, realtime=False)
    show.controller.load(parse_script("The server is down, but the show goes on."))
    show.controller.finish()
    report = asyncio.run(asyncio.wait_for(show.run(), 60))
    hub.close()
    assert rtmp.connects == 0 and rtmp.failures >= 1
    assert "127.0.0.1" in rtmp.last_error and "key" not in rtmp.last_error  # the key stays secret
    assert any(
        "RTMP connect" in r.message and "other outputs continue" in r.message
        for r in caplog.records
    )
    info, vpts, _, _ = probe(tmp_path / "rec.mp4")
    assert info[0] == "h264" and len(vpts) == report.stats.frames > 50
