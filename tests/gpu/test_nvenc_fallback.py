"""NVENC selection: asked for on a machine without it, libx264 is used and the file plays."""

from __future__ import annotations

import logging

import av
import numpy as np
import pytest

from anima import media
from anima.frames import AudioFrame, VideoFrame
from anima.live.outputs import EncoderConfig, SharedEncoder, _nvenc_options


def test_choice_rules(monkeypatch):
    monkeypatch.setattr(media, "_OPENS", {media.NVENC: ""})  # pretend it opens
    assert media.video_codec("libx264", "cpu") == media.SOFTWARE
    assert media.video_codec("libx264", "cuda:0") == media.NVENC
    assert media.video_codec("auto", "cpu") == media.NVENC
    assert media.video_codec("h264_nvenc", None) == media.NVENC
    monkeypatch.setattr(media, "_OPENS", {media.NVENC: "no device"})
    assert media.video_codec("auto", "cuda") == media.SOFTWARE


def test_fallback_is_logged_and_the_file_plays(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(media, "_OPENS", {})
    why = media.codec_opens(media.NVENC)
    if not why:
        pytest.skip("h264_nvenc opens here: this machine has an NVIDIA encoder")
    with caplog.at_level(logging.WARNING, logger="anima.media"):
        codec = media.video_codec("auto", "cuda")
    assert codec == media.SOFTWARE and "libx264" in caplog.text
    path = tmp_path / "out.mp4"
    with media.Mp4Writer(path, 64, 25, codec=codec, watermark=False) as w:
        for k in range(10):
            w.write_video(VideoFrame(turn=0, image=np.full((64, 64, 3), 20 * k, np.uint8), index=k))
        w.write_audio(AudioFrame(turn=0, pcm=np.zeros(6400, np.int16), sample_rate=16000, pts=0))
    with av.open(str(path)) as f:
        frames = list(f.decode(video=0))
    assert len(frames) == 10 and frames[0].width == 64


def test_live_encoder_takes_the_codec_and_maps_options():
    enc = SharedEncoder(EncoderConfig(64, 64, 25, codec="libx264", watermark=False))
    chunks = enc.encode(np.zeros((64, 64, 3), np.uint8), 0, np.zeros(640, np.int16), 0, 16000)
    chunks += enc.flush()
    assert any(c.kind == "video" for c in chunks)
    enc.close()
    opts = _nvenc_options(EncoderConfig(64, 64, 25, video_bitrate=None, crf=23, codec="h264_nvenc"))
    assert opts["cq"] == "23" and opts["rc"] == "vbr" and "crf" not in opts
