"""The Wav2Lip-class generator in torch (random weights), its checkpoints and the compositing."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from anima.config import RenderSettings  # noqa: E402
from anima.device import DeviceError  # noqa: E402
from anima.render import neural_mouth as NM  # noqa: E402
from anima.render.neural_mouth_net import (  # noqa: E402
    CheckpointError,
    MouthBatcher,
    Wav2LipGenerator,
    load_generator,
)


@pytest.fixture(scope="module")
def net():
    return load_generator(None, "cpu", random_init=True)


def test_generator_shapes_and_range(net):
    with torch.inference_mode():
        out = net(torch.randn(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match="faces must be"):
        net(torch.randn(1, 1, 80, 16), torch.rand(1, 6, 64, 64))


def test_module_names_match_published_wav2lip(net):
    keys = net.state_dict().keys()
    assert "face_encoder_blocks.0.0.conv_block.0.weight" in keys
    assert "audio_encoder.12.conv_block.1.running_var" in keys
    assert "face_decoder_blocks.6.0.conv_block.0.weight" in keys  # the 96 px transposed conv
    assert "output_block.1.weight" in keys


def test_batcher_returns_one_uint8_face_per_request(net):
    rng = np.random.default_rng(0)
    reqs = [
        (
            rng.random((96, 96, 6), dtype=np.float32),
            rng.standard_normal((80, 16)).astype(np.float32),
        )
        for _ in range(3)
    ]
    faces = MouthBatcher(net, "cpu")(reqs)
    assert len(faces) == 3 and all(f.shape == (96, 96, 3) and f.dtype == np.uint8 for f in faces)
    alone = MouthBatcher(net, "cpu")(reqs[1:2])[0]  # batching does not mix requests up
    assert np.abs(alone.astype(int) - faces[1].astype(int)).max() <= 1


def test_checkpoint_round_trip_with_dataparallel_prefix(tmp_path, net):
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    loaded = load_generator(path, "cpu")
    x = (torch.randn(1, 1, 80, 16), torch.rand(1, 6, 96, 96))
    with torch.inference_mode():
        assert torch.allclose(loaded(*x), net(*x))


def test_checkpoint_errors(tmp_path, net):
    with pytest.raises(CheckpointError, match="needs render.checkpoint"):
        load_generator(None, "cpu")
    with pytest.raises(CheckpointError, match="not found"):
        load_generator(tmp_path / "none.pth", "cpu")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator(junk, "cpu")
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(CheckpointError, match="not a Wav2Lip-class generator"):
        load_generator(other, "cpu")
    state = dict(net.state_dict())
    state["output_block.1.weight"] = torch.zeros(3, 16, 1, 1)
    wrong = tmp_path / "wrong.pth"
    torch.save(state, wrong)
    with pytest.raises(CheckpointError, match=r"output_block.1.weight is \(3, 16, 1, 1\)"):
        load_generator(wrong, "cpu")


def test_mel_window_matches_wav2lip_scale():
    assert NM.mel_window(np.zeros(100, np.float32)).shape == (80, 16)
    assert np.allclose(NM.mel_window(np.zeros(3800, np.float32)), -4.0)  # silence is the floor
    t = np.arange(NM.WINDOW_SAMPLES) / 16000
    tone = NM.mel_window(0.5 * np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    peak = int(tone.mean(axis=1).argmax())
    centres = NM._mel_to_hz(np.linspace(NM._hz_to_mel(55.0), NM._hz_to_mel(7600.0), 82))[1:-1]
    assert abs(centres[peak] - 1000) < 120  # the 1 kHz tone lands in the 1 kHz band
    assert tone.max() <= 4.0 and tone.max() > 0


def test_neural_face_pastes_only_the_lower_face(avatar, net):
    from anima.frames import MouthShape
    from anima.render.animator import FaceAnimator

    anim = FaceAnimator(avatar, size=256, fps=25, seed=1, head_motion=0.0)
    batcher = MouthBatcher(net, "cpu")
    seen = []

    def generate(req):
        seen.append(req)
        return batcher([req])[0]

    face = NM.NeuralFace(anim, generate, lambda: np.zeros(4000, np.float32))
    plain = FaceAnimator(avatar, size=256, fps=25, seed=1, head_motion=0.0)
    speaking = face.render(0, MouthShape(0.5), speaking=True)
    ref = plain.render(0, MouthShape(0.5), speaking=True)
    assert speaking.shape == (256, 256, 3) and speaking.dtype == np.uint8
    x0, y0, x1, y1 = face.box
    mid = y0 + (y1 - y0) // 2
    diff = np.abs(speaking.astype(int) - ref.astype(int)).sum(axis=2)
    assert diff[:mid].max() == 0  # eyes, brows and background above the box centre: ours
    assert diff[mid:y1, x0:x1].mean() > 1  # the generated mouth replaced the rig's
    face_in, mel = seen[0]
    assert face_in.shape == (96, 96, 6) and mel.shape == (80, 16)
    assert not face_in[48:, :, :3].any() and face_in[48:, :, 3:].any()  # masked target, reference
    silent = face.render(1, MouthShape(), speaking=False)
    assert len(seen) == 1 and silent.shape == (256, 256, 3)  # silence costs no generator call


def test_utterance_audio_reads_ahead_of_the_air_loop():
    from anima.air.program import Program, Utterance

    prog = Program()
    utt = Utterance("hi")
    utt.add_audio(np.full(16000, 1000, np.int16))
    utt.add_mouth(None, True)
    prog.add(utt)
    prog.arm()
    utt.started_frame = 0
    audio = NM.UtteranceAudio(lambda: prog, 16000, 25)
    utt.take(640)  # the air loop took frame 0's audio, then renders frame 0
    window = audio()
    assert len(window) == 400 + 640 + NM.WINDOW_SAMPLES + 640
    assert not window[:400].any() and np.allclose(window[1040:2000], 1000 / 32768)


async def test_session_face_falls_back_to_default_on_cpu(avatar, caplog, monkeypatch):
    from anima.render.animator import FaceAnimator

    monkeypatch.setattr(NM, "_fallback_logged", False)
    anim = FaceAnimator(avatar, size=128)
    s = RenderSettings(backend="wav2lip", device="auto")
    with caplog.at_level(logging.WARNING, logger="anima.render.neural_mouth"):
        assert await NM.session_face(anim, s, lambda: None, 22050) is anim
        assert await NM.session_face(anim, s, lambda: None, 22050) is anim
    assert sum("default renderer" in r.message for r in caplog.records) == 1
    with pytest.raises(DeviceError, match="neural mouth renderer"):
        await NM.session_face(
            anim, RenderSettings(backend="wav2lip", device="cuda"), lambda: None, 1
        )
    default = RenderSettings()
    assert await NM.session_face(anim, default, lambda: None, 22050) is anim


async def test_runtime_batches_sessions_through_one_scheduler(avatar, monkeypatch, net):
    # The GPU path's wiring, run on the CPU: two faces share one runtime and its scheduler.
    from anima.frames import MouthShape
    from anima.render.animator import FaceAnimator

    monkeypatch.setattr(NM, "neural_device", lambda settings: "cpu")
    monkeypatch.setattr("anima.render.neural_mouth_net.load_generator", lambda c, d: net)
    s = RenderSettings(backend="wav2lip", max_batch=2, batch_wait_ms=100)
    faces = [
        await NM.session_face(FaceAnimator(avatar, size=128), s, lambda: None, 16000)
        for _ in range(2)
    ]
    assert all(isinstance(f, NM.NeuralFace) for f in faces)
    frames = await asyncio.gather(
        *(asyncio.to_thread(f.render, 0, MouthShape(0.4), True) for f in faces)
    )
    assert all(f.shape == (128, 128, 3) for f in frames)
    runtime = next(iter(NM._RUNTIMES.values()))
    assert runtime.scheduler.stats.batches == 1 and runtime.scheduler.stats.items == 2
    await runtime.scheduler.aclose()
    NM._RUNTIMES.clear()


def test_generator_class_is_a_torch_module():
    assert isinstance(Wav2LipGenerator(), torch.nn.Module)
