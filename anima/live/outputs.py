"""Broadcast outputs through PyAV: one H.264 + AAC encode shared by RTMP, HLS and MP4.

:class:`SharedEncoder` encodes each frame once (libx264 and AAC with global headers, so the
packets suit every container); each output muxes copies of the same packets. Timestamps are
the frame index and the audio sample count, never the wall clock.

:class:`RtmpOutput` writes on its own thread behind a bounded queue, so a slow or dead server
never blocks the show. When the connection fails it logs one clear line, retries with
exponential backoff and resumes at the next keyframe with timestamps that carry on, while the
file outputs keep recording.
"""

from __future__ import annotations

import io
import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from prometheus_client import Counter, Histogram

from anima import watermark
from anima.media import AUDIO_RATE, NVENC

log = logging.getLogger(__name__)

ENCODE_SECONDS = Histogram(
    "anima_live_encode_seconds",
    "Time to encode one video frame and its audio, shared by all outputs.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16),
)
RTMP_RECONNECTS = Counter("anima_live_rtmp_reconnects_total", "RTMP connections re-established.")
RTMP_DROPPED = Counter("anima_live_rtmp_dropped_packets_total", "Packets not sent over RTMP.")


@dataclass(frozen=True)
class EncoderConfig:
    """How the shared encode is set up."""

    width: int
    height: int
    fps: int
    video_bitrate: int | None = 1_500_000  # None: constant quality (``crf``), for files only
    crf: int = 20
    keyframe_interval: float = 2.0  # seconds between keyframes (HLS segments cut on them)
    preset: str = "veryfast"
    audio_bitrate: int = 128_000
    zerolatency: bool = True
    threads: int = 0  # x264 threads; 0 lets x264 choose
    watermark: bool = True  # invisible AI-disclosure mark in every frame + metadata tags
    codec: str = "libx264"  # or h264_nvenc (anima.media.video_codec picks it when it opens)

    @property
    def gop(self) -> int:
        """Frames between keyframes."""
        return max(1, round(self.keyframe_interval * self.fps))


@dataclass
class Chunk:
    """One encoded packet, copied out of PyAV so any thread or container can mux it."""

    kind: str  # "video" or "audio"
    data: bytes
    pts: int
    dts: int
    duration: int
    time_base: Fraction
    key: bool

    @classmethod
    def of(cls, kind: str, packet: av.Packet) -> Chunk:
        """Copy a packet the encoder produced."""
        return cls(
            kind,
            bytes(packet),
            int(packet.pts),
            int(packet.dts if packet.dts is not None else packet.pts),
            int(packet.duration or 0),
            packet.time_base,
            bool(packet.is_keyframe),
        )

    def packet(self, stream: av.stream.Stream) -> av.Packet:
        """A fresh packet for ``stream`` (muxing rebases times in place, so never share one)."""
        p = av.Packet(self.data)
        p.pts, p.dts, p.time_base = self.pts, self.dts, self.time_base
        if self.duration:
            p.duration = self.duration
        p.is_keyframe = self.key
        p.stream = stream
        return p


class SharedEncoder:
    """H.264 + AAC encoders whose packets every output muxes."""

    def __init__(self, cfg: EncoderConfig) -> None:
        self.cfg = cfg
        # A container that writes nowhere holds the encoders: opening it fills the codec
        # parameters (SPS/PPS, AudioSpecificConfig) that output streams copy as templates.
        self._holder = av.open(io.BytesIO(), "w", format="null")
        v = self._holder.add_stream(cfg.codec, rate=cfg.fps)
        v.width, v.height = cfg.width, cfg.height
        v.pix_fmt = "yuv420p"
        v.time_base = Fraction(1, cfg.fps)
        v.options = _nvenc_options(cfg) if cfg.codec == NVENC else _x264_options(cfg)
        v.codec_context.flags |= av.codec.context.Flags.global_header
        a = self._holder.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        a.time_base = Fraction(1, AUDIO_RATE)
        a.bit_rate = cfg.audio_bitrate
        a.codec_context.flags |= av.codec.context.Flags.global_header
        self._holder.start_encoding()
        self.video, self.audio = v, a
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self.frames = 0
        self.samples = 0
        self.seconds = 0.0  # time spent encoding, for the benchmark

    def encode(
        self, image: np.ndarray, index: int, pcm: np.ndarray, pts: int, rate: int
    ) -> list[Chunk]:
        """Encode video frame ``index`` and its audio block (first sample ``pts`` at ``rate``)."""
        t0 = time.perf_counter()
        out: list[Chunk] = []
        if self.cfg.watermark:
            # Marked once here, so RTMP, HLS and MP4 outputs all carry it.
            image = watermark.embed(image)
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf.pts, vf.time_base = index, Fraction(1, self.cfg.fps)
        out += [Chunk.of("video", p) for p in self.video.encode(vf)]
        if len(pcm):
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm, np.int16).reshape(1, -1), format="s16", layout="mono"
            )
            af.sample_rate, af.pts, af.time_base = rate, pts, Fraction(1, rate)
            for res in self._resampler.resample(af):
                out += [Chunk.of("audio", p) for p in self.audio.encode(res)]
        self.frames += 1
        self.samples += len(pcm)
        elapsed = time.perf_counter() - t0
        self.seconds += elapsed
        ENCODE_SECONDS.observe(elapsed)
        return out

    def flush(self) -> list[Chunk]:
        """The packets still inside the encoders."""
        out: list[Chunk] = []
        for res in self._resampler.resample(None):
            out += [Chunk.of("audio", p) for p in self.audio.encode(res)]
        out += [Chunk.of("audio", p) for p in self.audio.encode(None)]
        out += [Chunk.of("video", p) for p in self.video.encode(None)]
        return out

    def close(self) -> None:
        """Release the encoders."""
        self._holder.close()


class Output:
    """A destination for the shared packets."""

    name = "output"

    def start(self, encoder: SharedEncoder) -> None:
        """Prepare to receive packets of ``encoder``."""

    def send(self, chunks: list[Chunk]) -> None:
        """Mux packets (must not block for long)."""

    def close(self) -> None:
        """Finish the output."""


def _open(target: str, fmt: str, encoder: SharedEncoder, options: dict[str, str], **kw: object):
    container = av.open(target, "w", format=fmt, options=options, **kw)
    if encoder.cfg.watermark:
        container.metadata.update(watermark.METADATA)  # machine-readable AI disclosure
    streams = {
        "video": container.add_stream_from_template(encoder.video),
        "audio": container.add_stream_from_template(encoder.audio),
    }
    return container, streams


class FileOutput(Output):
    """MP4 recording or an HLS folder (segments + playlist), written on the caller's thread."""

    def __init__(self, path: Path, fmt: str, options: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.name = fmt
        self.options = options or {}
        self._container = None
        self._streams: dict[str, av.stream.Stream] = {}
        self.failed: str | None = None

    def start(self, encoder: SharedEncoder) -> None:
        """Open the file (the parent folder is created)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container, self._streams = _open(str(self.path), self.fmt, encoder, self.options)

    def send(self, chunks: list[Chunk]) -> None:
        """Mux the packets; a failing file (disk full) is logged once and then skipped."""
        if self.failed or self._container is None:
            return
        try:
            for c in chunks:
                self._container.mux(c.packet(self._streams[c.kind]))
        except (OSError, av.FFmpegError) as exc:
            self.failed = str(exc)
            log.error(
                "%s output %s failed, the show goes on without it: %s", self.fmt, self.path, exc
            )

    def close(self) -> None:
        """Write the trailer (the MP4 index, the final playlist)."""
        if self._container is not None:
            try:
                self._container.close()
            except (OSError, av.FFmpegError) as exc:
                log.error("closing %s failed: %s", self.path, exc)
            self._container = None


def mp4_output(path: Path, *, live: bool) -> FileOutput:
    """An MP4 recording; fragmented while live so a crash still leaves a playable file."""
    if not live:
        return FileOutput(path, "mp4", {"movflags": "+faststart"})
    # Fragments have no edit list to hide AAC's priming (first audio pts < 0): shift both
    # tracks together instead, or the first video frame would stand apart from the rest.
    return FileOutput(
        path,
        "mp4",
        {
            "movflags": "+frag_keyframe+empty_moov+default_base_moof",
            "avoid_negative_ts": "make_non_negative",
        },
    )


def hls_output(
    folder: Path, *, segment: float = 2.0, list_size: int = 6, live: bool = True
) -> FileOutput:
    """An HLS folder: ``index.m3u8`` and ``seg_00000.ts`` …; a rolling window while live."""
    folder = Path(folder)
    opts = {
        "hls_time": f"{segment:g}",
        "hls_segment_filename": str(folder / "seg_%05d.ts"),
    }
    if live:
        opts.update(hls_list_size=str(list_size), hls_flags="delete_segments+independent_segments")
    else:
        opts.update(hls_list_size="0", hls_playlist_type="vod", hls_flags="independent_segments")
    return FileOutput(folder / "index.m3u8", "hls", opts)


class RtmpOutput(Output):
    """An RTMP push (FLV) on its own thread, reconnecting with backoff when the server drops."""

    name = "rtmp"

    def __init__(
        self,
        url: str,
        *,
        retry_initial: float = 1.0,
        retry_max: float = 30.0,
        timeout: float = 5.0,
        max_queue: int = 500,
    ) -> None:
        if not url.startswith(("rtmp://", "rtmps://")):
            raise ValueError(f"not an RTMP URL: {url!r} (expected rtmp://host/app/key)")
        self.url = url
        self.retry_initial, self.retry_max, self.timeout = retry_initial, retry_max, timeout
        self._queue: queue.Queue[list[Chunk] | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self._encoder: SharedEncoder | None = None
        self.connects = 0  # successful connections (the first one included)
        self.failures = 0
        self.sent_video = 0
        self.last_error: str | None = None
        self.connected = threading.Event()

    def start(self, encoder: SharedEncoder) -> None:
        """Start the sending thread; connecting happens there."""
        self._encoder = encoder
        self._thread = threading.Thread(target=self._run, name="rtmp-out", daemon=True)
        self._thread.start()

    def send(self, chunks: list[Chunk]) -> None:
        """Hand packets to the sender; if it is stuck, drop them (it resumes at a keyframe)."""
        try:
            self._queue.put_nowait(chunks)
        except queue.Full:
            RTMP_DROPPED.inc(len(chunks))

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (within ``timeout``) and close the connection."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        self._thread = None

    # -- the sender thread -----------------------------------------------------------------

    def _safe_url(self) -> str:
        # Stream keys are secrets: log the server and app, not the key.
        head, _, _ = self.url.rpartition("/")
        return head + "/…"

    def _run(self) -> None:
        delay = self.retry_initial
        container = None
        streams: dict[str, av.stream.Stream] = {}
        need_key = True
        retry_at = 0.0
        while True:
            chunks = self._queue.get()
            if chunks is None:
                break
            if container is None:
                if time.monotonic() < retry_at:
                    RTMP_DROPPED.inc(len(chunks))
                    continue  # the show goes on; packets of the outage are not sent here
                try:
                    assert self._encoder is not None
                    container, streams = _open(
                        self.url, "flv", self._encoder, {}, timeout=self.timeout
                    )
                    need_key = True
                except (OSError, av.FFmpegError) as exc:
                    container = None
                    retry_at = self._failed(exc, delay, "connect")
                    delay = min(delay * 2, self.retry_max)
                    continue
            try:
                for c in chunks:
                    if need_key:
                        if not (c.kind == "video" and c.key):
                            continue
                        need_key = False
                    container.mux(c.packet(streams[c.kind]))
                    if c.kind == "video":
                        self.sent_video += 1
                        if not self.connected.is_set():
                            self.connected.set()
                            self.connects += 1
                            if self.connects > 1:
                                RTMP_RECONNECTS.inc()
                                log.warning("RTMP stream to %s resumed", self._safe_url())
                            delay = self.retry_initial
            except (OSError, av.FFmpegError) as exc:
                # PyAV connects on the first packet, so a failure before any went is a connect.
                what = "send" if self.connected.is_set() else "connect"
                self._drop(container)
                container = None
                self.connected.clear()
                retry_at = self._failed(exc, delay, what)
                delay = min(delay * 2, self.retry_max)
        if container is not None:
            try:
                container.close()
            except (OSError, av.FFmpegError) as exc:
                log.warning("closing the RTMP stream failed: %s", exc)

    def _failed(self, exc: Exception, delay: float, what: str) -> float:
        self.failures += 1
        self.last_error = f"{what} to {self._safe_url()} failed: {exc}"
        log.error("RTMP %s; retrying in %.1f s (other outputs continue)", self.last_error, delay)
        return time.monotonic() + delay

    @staticmethod
    def _drop(container) -> None:
        try:
            container.close()
        except (OSError, av.FFmpegError):
            pass


class OutputHub:
    """Encodes each frame once and hands the packets to every output."""

    def __init__(self, cfg: EncoderConfig, outputs: list[Output]) -> None:
        if not outputs:
            raise ValueError("no output: give an RTMP URL, an HLS folder or an MP4 file")
        self.encoder = SharedEncoder(cfg)
        self.outputs = outputs
        for out in outputs:
            out.start(self.encoder)
        self._closed = False

    def write(self, image: np.ndarray, index: int, pcm: np.ndarray, pts: int, rate: int) -> None:
        """Encode one frame with its audio and send the packets everywhere (blocking)."""
        chunks = self.encoder.encode(image, index, pcm, pts, rate)
        if chunks:
            for out in self.outputs:
                out.send(chunks)

    def close(self) -> None:
        """Flush the encoders and finish every output."""
        if self._closed:
            return
        self._closed = True
        try:
            chunks = self.encoder.flush()
            for out in self.outputs:
                out.send(chunks)
        finally:
            for out in self.outputs:
                out.close()
            self.encoder.close()


def _x264_options(cfg: EncoderConfig) -> dict[str, str]:
    opts = {
        "preset": cfg.preset,
        "g": str(cfg.gop),
        "keyint_min": str(cfg.gop),
        "sc_threshold": "0",  # keyframes on a fixed grid: HLS segments and RTMP joins
    }
    if cfg.zerolatency:
        opts["tune"] = "zerolatency"
    if cfg.video_bitrate:
        rate = str(cfg.video_bitrate)
        opts.update(b=rate, maxrate=rate, bufsize=str(2 * cfg.video_bitrate))
    else:
        opts["crf"] = str(cfg.crf)
    if cfg.threads:
        opts["threads"] = str(cfg.threads)
    return opts


def _nvenc_options(cfg: EncoderConfig) -> dict[str, str]:
    """NVENC's equivalents: fixed GOP without scene cuts, no B-frames, low-latency tuning."""
    opts = {"preset": "p4", "g": str(cfg.gop), "no-scenecut": "1", "bf": "0", "forced-idr": "1"}
    if cfg.zerolatency:
        opts["tune"] = "ll"
    if cfg.video_bitrate:
        rate = str(cfg.video_bitrate)
        opts.update(rc="cbr", b=rate, maxrate=rate, bufsize=str(2 * cfg.video_bitrate))
    else:
        opts.update(rc="vbr", cq=str(cfg.crf), b="0")
    return opts
