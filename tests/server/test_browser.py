"""One real-browser conversation: Debian's headless Chromium, a fake microphone playing a
question made by our own TTS, the real server on loopback, driven over the DevTools protocol.

It checks what a user would see and hear: the page connects, shows what it heard and the
reply's subtitles, the received video plays and moves while the avatar speaks, audio arrives,
and the voice-to-face latency measured in the page (end of the user's speech on the mic to
the first sound of the reply as received) is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest
import pytest_asyncio
import websockets

from anima.engine import Engine
from anima.server.app import create_app

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
QUESTION = "What are your opening hours?"


class Cdp:
    """A tiny Chrome DevTools Protocol client for one page target."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        msg_id = next(self.ids)
        await self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    async def js(self, expression: str):
        """Evaluate ``expression`` in the page (promises awaited); its JSON value."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def until(self, expression: str, within: float, what: str):
        deadline = time.monotonic() + within
        while True:
            try:
                value = await self.js(expression)
            except RuntimeError:  # the page is still loading
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                state = await self.js(
                    "JSON.stringify({conn: conn.textContent, err: error.textContent, "
                    "v2f: v2f.textContent, events: window.anima && anima.events.slice(-8)})"
                )
                raise AssertionError(f"timed out waiting for {what}; page: {state}")
            await asyncio.sleep(0.1)


def question_wav(voice, path: Path, lead: float = 2.5, tail: float = 30.0) -> float:
    """The question with silence around it (Chromium loops the file; the tail outlasts the
    test). Returns the seconds of speech."""
    speech = np.concatenate([c.pcm for c in voice.synthesize(QUESTION)])
    rate = voice.sample_rate
    pcm = np.concatenate(
        [np.zeros(int(lead * rate), np.int16), speech, np.zeros(int(tail * rate), np.int16)]
    )
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return len(speech) / rate


@contextlib.asynccontextmanager
async def chromium(url: str, wav: Path, profile: Path):
    """Headless Chromium on ``url`` with ``wav`` as its microphone; yields a page client."""
    proc = await asyncio.create_subprocess_exec(
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--disable-background-timer-throttling",
        "--window-size=360,800",  # the phone width the page must work at
        url,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            assert proc.returncode is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        page = next(t for t in targets if t["type"] == "page")
        async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield Cdp(ws)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


# Draw the video into a 32x32 canvas and return its grey levels (to compare frames).
SNAPSHOT = """(() => {
  const v = document.getElementById('video');
  const c = window.__snap || (window.__snap = document.createElement('canvas'));
  c.width = c.height = 32;
  const g = c.getContext('2d', {willReadFrequently: true});
  g.drawImage(v, 0, 0, 32, 32);
  const d = g.getImageData(0, 0, 32, 32).data;
  const out = [];
  for (let i = 0; i < d.length; i += 4) out.push((d[i] + d[i + 1] + d[i + 2]) / 3);
  return out;
})()"""

INBOUND = """(async () => {
  const out = {};
  (await anima.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out[s.kind] = {bytes: s.bytesReceived,
      energy: s.totalAudioEnergy || 0, frames: s.framesDecoded || 0};
  });
  return out;
})()"""


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def engine(tmp_path_factory, make_settings):
    eng = Engine.from_config(make_settings(tmp_path_factory.mktemp("web"), size=256))
    await eng.load()
    await eng.avatar(None)
    yield eng
    await eng.aclose()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
async def test_talking_to_the_avatar_in_chromium(engine, serve, tmp_path, record_property):
    wav = tmp_path / "question.wav"
    question_wav(engine.voice, wav)
    app = create_app(engine.settings, engine, host="127.0.0.1")
    async with (
        serve(app) as base,
        chromium(f"{base}/?autostart=1&greet=0", wav, tmp_path / "p") as page,
    ):
        await page.until("anima.connected", 20, "the peer connection")
        assert await page.js("document.getElementById('ai-label').offsetWidth > 0")
        await page.call(
            "Emulation.setDeviceMetricsOverride",
            width=360,
            height=740,
            deviceScaleFactor=2,
            mobile=True,
        )  # a phone: the page must fit 360 px without sideways scrolling
        widths = await page.js("[innerWidth, document.documentElement.scrollWidth]")
        assert widths[0] == 360 and widths[1] <= 360, widths
        await page.until("video.readyState >= 2 && video.videoWidth === 256", 15, "video frames")
        idle_frames = await page.js("video.getVideoPlaybackQuality().totalVideoFrames")
        # The question plays from the fake microphone; the server transcribes it.
        heard = await page.until(
            "[...document.querySelectorAll('#transcript li.user')].map(l => l.textContent).join(' ')",
            30,
            "the transcript of the question",
        )
        assert "opening hours" in heard.lower()
        await page.until("anima.state === 'speaking'", 15, "the avatar to answer")
        snaps = []
        for _ in range(8):  # while it speaks, the face must move
            snaps.append(np.array(await page.js(SNAPSHOT), np.float32))
            await asyncio.sleep(0.15)
        reply = await page.until(
            "document.querySelector('#transcript li.avatar')?.textContent", 10, "subtitles"
        )
        assert "monday" in reply.lower()
        assert "monday" in (await page.js("subtitle.textContent")).lower() or reply
        latency_ms = await page.until("anima.latencies[0]", 15, "a voice-to-face latency")
        stats = await page.js(INBOUND)
        played = await page.js("video.getVideoPlaybackQuality().totalVideoFrames")
        server = await page.js("anima.server[anima.server.length - 1]")
        shown = await page.js("document.getElementById('v2f').textContent")
    changes = [float(np.abs(a - b).mean()) for a, b in itertools.pairwise(snaps)]
    assert max(changes) > 0.5, f"the video did not change while speaking: {changes}"
    assert played > idle_frames + 20
    assert stats["audio"]["bytes"] > 10_000 and stats["audio"]["energy"] > 0
    assert stats["video"]["frames"] > 50
    assert 0 < latency_ms < 10_000 and str(round(latency_ms)) in shown
    print(f"\nvoice-to-face in Chromium: {latency_ms:.0f} ms; server parts (s): {server}")
    record_property("voice_to_face_ms", round(latency_ms, 1))
    record_property("server_latency_parts", json.dumps(server))
    await asyncio.sleep(0.5)  # the page's hang-up (tab killed) is noticed by the server
