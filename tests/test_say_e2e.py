"""End to end: text -> MP4 file, checked from the file itself."""

import asyncio

import av
import numpy as np
import pytest

from anima.render.face import mouth_opening, shared_detector
from anima.render_job import say_to_file

pytestmark = pytest.mark.slow

# Measured r = 0.69 on the sample portrait; 0.4 is "clearly positive" with room for noise.
MIN_CORRELATION = 0.4
CLOSED = 0.07  # inner-lip gap / mouth width, re-detected: 0.02-0.055 when shut, >0.2 open


def _decode(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        v_dur = float(v.duration * v.time_base)
        a_dur = float(a.duration * a.time_base)
        codecs = (v.codec_context.name, a.codec_context.name)
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in c.decode(audio=0)])
    return v_dur, a_dur, codecs, frames, pcm, rate


@pytest.fixture(scope="module")
def clip(tmp_path_factory, avatar, voice):
    from anima.config import Settings

    settings = Settings.load(None, render={"seed": 1})
    out = tmp_path_factory.mktemp("say") / "hello.mp4"
    result = asyncio.run(
        say_to_file("Hello there. I am happy to help you today.", avatar, out, voice, settings)
    )
    return result, _decode(out)


def test_file_has_h264_and_aac_of_equal_length(clip):
    result, (v_dur, a_dur, codecs, frames, _, _) = clip
    assert codecs == ("h264", "aac")
    assert 2.5 < v_dur < 5.0
    assert abs(v_dur - a_dur) <= 0.040
    assert len(frames) == result.video_frames
    assert frames[0].shape == (512, 512, 3)


def test_mouth_follows_speech_and_is_closed_in_silence(clip):
    _, (_, _, _, frames, pcm, rate) = clip
    fps = 25
    det = shared_detector()
    opening = []
    for f in frames:
        faces = det.detect(f)
        assert faces, "a rendered frame lost the face"
        opening.append(mouth_opening(faces[0]))
    opening = np.array(opening)
    hop = rate // fps
    loud = np.array(
        [
            np.sqrt(np.mean(pcm[i * hop : (i + 1) * hop].astype(np.float64) ** 2))
            for i in range(len(frames))
        ]
    )
    r = float(np.corrcoef(opening, loud)[0, 1])
    print(f"mouth/loudness correlation r={r:.3f}")
    assert r > MIN_CORRELATION
    silent = loud < 0.02 * loud.max()
    # The clip starts and ends with silence: at least the lead-in frames are silent.
    assert silent[:8].all() and silent[-8:].all()
    # "Outside speech": 120 ms or more from any speech (lips take a moment to close).
    k = 3
    padded = np.pad(silent, k, constant_values=True)
    quiet = np.array([padded[i : i + 2 * k + 1].all() for i in range(len(silent))])
    assert quiet.sum() >= 12
    print(f"max opening in silence: {opening[quiet].max():.3f}")
    assert opening[quiet].max() < CLOSED, opening[quiet]
    assert opening[~silent].max() > 0.15
