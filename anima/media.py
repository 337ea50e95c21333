"""Writing audio and video frames to files through PyAV (FFmpeg): MP4 with H.264 + AAC.

Timestamps come from the frames themselves (video frame index, audio sample index), never from
a wall clock, so the file's tracks stay in sync however long encoding takes.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from anima import watermark as _watermark
from anima.frames import AudioFrame, VideoFrame

AUDIO_RATE = 48_000  # AAC frames are 1024 samples: 21 ms at 48 kHz, the usual MP4 rate
SOFTWARE, NVENC = "libx264", "h264_nvenc"

log = logging.getLogger(__name__)
_OPENS: dict[str, str] = {}  # codec -> "" if it opened here, else why not (tried once)


def codec_opens(name: str) -> str:
    """Why encoder ``name`` does not open on this machine (a tiny test open); "" if it does.

    NVENC is in most FFmpeg builds (PyAV's wheels included) but opens only with an NVIDIA GPU
    and driver, so being listed proves nothing: we try it, once per process.
    """
    if name not in _OPENS:
        try:
            ctx = av.CodecContext.create(name, "w")
            ctx.width = ctx.height = 256
            ctx.pix_fmt = "yuv420p"
            ctx.time_base = Fraction(1, 25)
            ctx.open()
            _OPENS[name] = ""
        except Exception as exc:  # UnknownCodecError, or FFmpeg's error for "no device"
            _OPENS[name] = str(exc) or type(exc).__name__
    return _OPENS[name]


def video_codec(encoder: str = SOFTWARE, device: str | None = "cpu") -> str:
    """The H.264 encoder to use: NVENC when asked for and it opens, else libx264 (logged).

    Asked for means ``encoder`` "h264_nvenc", or "auto" with any device, or a CUDA ``device``
    (``cuda``, ``cuda:N``, ``auto``) with the default encoder.
    """
    wants = (
        encoder == NVENC
        or encoder == "auto"
        or (encoder == SOFTWARE and device is not None and device.startswith(("cuda", "auto")))
    )
    if not wants:
        return SOFTWARE
    why = codec_opens(NVENC)
    if not why:
        return NVENC
    if encoder != SOFTWARE or not (device or "").startswith("auto"):
        log.warning("h264_nvenc does not open here (%s); encoding with libx264", why)
    return SOFTWARE


def video_options(codec: str, *, crf: int, preset: str) -> dict[str, str]:
    """Encoder options for constant-quality files: x264's crf/preset, or NVENC's cq/p4."""
    if codec == NVENC:
        return {"rc": "vbr", "cq": str(crf), "b": "0", "preset": "p4"}
    return {"crf": str(crf), "preset": preset}


class Mp4Writer:
    """An MP4 file being written: H.264 (yuv420p) video and mono AAC audio.

    ``fragmented`` writes a fragmented MP4 that stays playable if the writer is killed
    mid-way (for recordings that cannot be written to a temporary name and renamed).

    Unless ``watermark`` is False every frame carries the invisible AI-disclosure mark and the
    file is tagged :data:`anima.watermark.LABEL` (``comment``/``description``); the one place
    where offline renders are written, so ``anima verify`` finds both in every such file.
    """

    def __init__(
        self,
        path: Path,
        size: int,
        fps: int,
        *,
        crf: int = 20,
        preset: str = "veryfast",
        watermark: bool = True,
        fragmented: bool = False,
        codec: str = SOFTWARE,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Fragmented: moov up front and a self-contained fragment per keyframe (one a second),
        # so a file cut by a crash or kill still plays up to its last whole fragment.
        options = (
            {
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "flush_packets": "1",
                # Fragments have no edit list to hide AAC priming (as in anima/live/outputs.py).
                "avoid_negative_ts": "make_non_negative",
            }
            if fragmented
            else {}
        )
        self._container = av.open(str(self.path), mode="w", options=options)
        self._mark = watermark
        if watermark:
            self._container.metadata.update(_watermark.METADATA)
        self.codec = codec  # libx264, or h264_nvenc from video_codec()
        self._video = self._container.add_stream(codec, rate=fps)
        self._video.width = self._video.height = size
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, fps)
        self._video.options = video_options(codec, crf=crf, preset=preset)
        if fragmented:
            self._video.options["g"] = str(fps)  # a keyframe, hence a fragment, every second
        self._audio = self._container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        self._audio.time_base = Fraction(1, AUDIO_RATE)
        self._resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE)
        self._fps = fps
        self.video_frames = 0
        self.audio_samples = 0
        self._closed = False

    def write_video(self, frame: VideoFrame) -> None:
        """Encode one RGB frame at its own index."""
        image = _watermark.embed(frame.image) if self._mark else frame.image
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf.pts = frame.index
        vf.time_base = Fraction(1, self._fps)
        self._mux(self._video.encode(vf))
        self.video_frames += 1

    def write_audio(self, frame: AudioFrame) -> None:
        """Encode one block of int16 mono PCM; its ``pts`` is its first sample index."""
        pcm = np.ascontiguousarray(frame.pcm, dtype=np.int16).reshape(1, -1)
        af = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        af.sample_rate = frame.sample_rate
        af.pts = frame.pts
        af.time_base = Fraction(1, frame.sample_rate)
        for out in self._resampler.resample(af):
            self._mux(self._audio.encode(out))
        self.audio_samples += pcm.shape[1]

    def _mux(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoders and finish the file."""
        if self._closed:
            return
        self._closed = True
        try:
            for out in self._resampler.resample(None):
                self._mux(self._audio.encode(out))
            self._mux(self._audio.encode(None))
            self._mux(self._video.encode(None))
        finally:
            self._container.close()

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
