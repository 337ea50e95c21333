"""End to end: a real show pushed to Debian's nginx-rtmp on loopback and pulled back with PyAV."""

import asyncio
import threading
import time

import av
import numpy as np
import pytest

from anima.live.outputs import RtmpOutput, mp4_output
from anima.live.script import parse_script
from anima.live.wiring import build_show, make_outputs
from anima.render.avatar import prepare_avatar

SIZE, FPS = 256, 25
SCRIPT = """\
# A short show
[happy] Good evening, and welcome to the late news. [nod]
[pause 2s]
The river festival starts tomorrow at ten in the morning.
[pause 1.5s]
[serious] Please leave your car at home; the bridges will be closed.
"""


@pytest.fixture(scope="module")
def small_avatar(portrait):
    return prepare_avatar(portrait, "sample", size=SIZE)


def live_settings(settings, retry=0.5):
    settings.render.size, settings.render.fps, settings.render.seed = SIZE, FPS, 1
    settings.live.retry_initial = retry
    settings.live.video_bitrate = 600_000
    settings.live.keyframe_interval = 1.0
    return settings


def packets(path_or_url, seconds=None, **open_kw):
    """(type, pts seconds, duration seconds) of every packet, in arrival order."""
    out, info = [], None
    t0 = time.monotonic()
    try:
        with av.open(str(path_or_url), **open_kw) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            info = (
                v.codec_context.name,
                v.width,
                v.height,
                v.average_rate,
                a.codec_context.name,
                a.sample_rate,
            )
            for p in c.demux():
                if p.pts is not None:
                    out.append(
                        (
                            p.stream.type,
                            float(p.pts * p.time_base),
                            float((p.duration or 0) * p.time_base),
                        )
                    )
                if seconds and time.monotonic() - t0 > seconds:
                    break
    except av.ExitError:
        pass  # the publisher went away: the end of a live pull
    return info, out


def check_track(pkts, kind, step, tol):
    pts = [p[1] for p in pkts if p[0] == kind]
    d = np.diff(pts)
    assert len(pts) > 10
    assert (d > 0).all(), f"{kind} timestamps not monotonic"
    assert np.abs(d - step).max() <= tol, f"{kind} gap: {d.max():.3f} s"
    return pts


@pytest.mark.slow
def test_thirty_second_show_over_rtmp(settings, small_avatar, voice, nginx_rtmp, tmp_path):
    settings = live_settings(settings)
    outputs = make_outputs(settings, rtmp=nginx_rtmp.url, live=True)
    show, hub = build_show(settings, small_avatar, voice, outputs, realtime=True)
    show.controller.load(parse_script(SCRIPT))  # not finished: idles until the 30 s are up
    pulled = {}

    def viewer():  # joins a second in, like a viewer opening the stream
        time.sleep(1.5)
        pulled["info"], pulled["pkts"] = packets(nginx_rtmp.url, seconds=5, timeout=(10, 10))

    watcher = threading.Thread(target=viewer)
    watcher.start()
    try:
        report = asyncio.run(show.run(max_seconds=30))
    finally:
        hub.close()
    watcher.join(30)
    rtmp = outputs[0]
    assert isinstance(rtmp, RtmpOutput) and rtmp.connects == 1 and rtmp.failures == 0
    assert report.stats.frames == pytest.approx(30 * FPS, abs=2)

    # A viewer got H.264 + AAC at the configured size and rate, in order.
    assert pulled["info"] == ("h264", SIZE, SIZE, FPS, "aac", 48000)
    check_track(pulled["pkts"], "video", 1 / FPS, 0.002)

    # The whole stream as the server received it (nginx records it).
    (recording,) = nginx_rtmp.recordings()
    info, pkts = packets(recording)
    assert info == ("h264", SIZE, SIZE, FPS, "aac", 48000)
    vpts = check_track(pkts, "video", 1 / FPS, 0.002)  # FLV counts milliseconds
    apts = check_track(pkts, "audio", 1024 / 48000, 0.002)
    assert len(vpts) == report.stats.frames
    v_end = vpts[-1] + 1 / FPS - vpts[0]
    a_end = apts[-1] + 1024 / 48000 - apts[0]
    assert abs(v_end - a_end) < 0.1 and v_end > 29.5

    # Speech is on air exactly where the script has lines, silence in the pauses.
    with av.open(str(recording)) as c:
        audio = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    spans = report.stats.speech
    assert [s[0] for s in spans] == [
        "Good evening, and welcome to the late news.",
        "The river festival starts tomorrow at ten in the morning.",
        "Please leave your car at home; the bridges will be closed.",
    ]

    def rms(t0, t1):
        seg = audio[int(t0 * 48000) : int(t1 * 48000)]
        return float(np.sqrt(np.mean(seg**2)))

    for _, first, end in spans:
        assert rms(first / FPS + 0.1, end / FPS - 0.3) > 0.02
    for (_, _, end), (_, nxt, _) in zip(spans, spans[1:], strict=False):
        assert rms(end / FPS + 0.15, nxt / FPS - 0.1) < 0.003
    assert rms(spans[-1][2] / FPS + 0.3, 29.5) < 0.003  # idle after the script: silence


@pytest.mark.slow
def test_stream_resumes_after_the_server_drops(settings, small_avatar, voice, nginx_rtmp, tmp_path):
    settings = live_settings(settings, retry=0.3)
    outputs = make_outputs(settings, rtmp=nginx_rtmp.url, live=True)
    outputs.append(mp4_output(tmp_path / "rec.mp4", live=True))
    show, hub = build_show(settings, small_avatar, voice, outputs, realtime=True)
    show.controller.load(
        parse_script("One line to start the show. [pause 8s]\nStill here after the outage.")
    )

    def outage():
        time.sleep(3)
        nginx_rtmp.stop()
        time.sleep(3)
        nginx_rtmp.start()

    t = threading.Thread(target=outage)
    t.start()
    try:
        report = asyncio.run(show.run(max_seconds=13))
    finally:
        hub.close()
        t.join()
    rtmp = outputs[0]
    assert rtmp.failures >= 1 and rtmp.connects >= 2
    first, *_, resumed = nginx_rtmp.recordings()
    info, pkts = packets(resumed)
    assert info[0] == "h264" and info[4] == "aac"
    vpts = check_track(pkts, "video", 1 / FPS, 0.002)
    assert len(vpts) / FPS > 3  # several seconds streamed after the server came back
    # Timestamps carry on from the show's clock: the resumed part starts after the outage.
    assert vpts[0] > 5.0
    # Meanwhile the MP4 recording never missed a frame.
    info, pkts = packets(tmp_path / "rec.mp4")
    vrec = check_track(pkts, "video", 1 / FPS, 0.001)
    assert len(vrec) == report.stats.frames
