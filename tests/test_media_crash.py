"""A fragmented recording killed mid-way (SIGKILL) still decodes up to its last fragment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import av
import pytest

WRITER = """
import sys, numpy as np
from pathlib import Path
from anima.frames import AudioFrame, VideoFrame
from anima.media import Mp4Writer
w = Mp4Writer(Path(sys.argv[1]), 128, 25, fragmented=sys.argv[2] == "1", preset="ultrafast")
k = 0
while True:  # until killed
    img = np.full((128, 128, 3), (k * 7) % 255, np.uint8)
    w.write_video(VideoFrame(turn=0, image=img, index=k))
    w.write_audio(AudioFrame(turn=0, pcm=np.zeros(640, np.int16), sample_rate=16000, pts=k * 640))
    k += 1
    if k == 100:
        print("ready", flush=True)  # four seconds of video written: four fragments closed
"""


def _kill_mid_way(path: Path, fragmented: bool) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), "1" if fragmented else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL


def _decoded_frames(path: Path) -> int:
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(video=0))


def test_fragmented_recording_survives_sigkill(tmp_path):
    path = tmp_path / "cut.mp4"
    _kill_mid_way(path, fragmented=True)
    n = _decoded_frames(path)
    assert n >= 50  # at least the fragments closed before the kill (1 s each)
    with av.open(str(path)) as c:
        assert c.streams.video[0].codec_context.width == 128


def test_plain_mp4_cut_by_sigkill_is_unreadable(tmp_path):
    # Why recordings are fragmented: a plain MP4 has its index (moov) only at the end.
    path = tmp_path / "cut.mp4"
    _kill_mid_way(path, fragmented=False)
    with pytest.raises((av.error.InvalidDataError, av.error.FFmpegError)):
        _decoded_frames(path)
