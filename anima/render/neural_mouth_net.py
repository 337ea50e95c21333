"""The Wav2Lip-class generator in torch (the ``gpu`` extra), its checkpoint and its batch runner.

The architecture is the published Wav2Lip generator (Prajwal et al., 2020), built from the same
block tables (:mod:`anima.render.wav2lip_blocks`) as the cost benchmark and with the published
module names (``face_encoder_blocks``, ``audio_encoder``, ``face_decoder_blocks``,
``output_block``; each conv a ``conv_block`` of Conv2d + BatchNorm2d), so a user's Wav2Lip
checkpoint (``{"state_dict": ...}``, ``module.`` prefixes from DataParallel allowed) loads
as it is. Inputs: ``face`` (B, 6, 96, 96), the masked target and the reference face in 0..1
(BGR, as Wav2Lip was trained); ``mel`` (B, 1, 80, 16). Output: (B, 3, 96, 96) in 0..1.

This module imports torch at load: import it only when the neural renderer is selected.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anima.render.wav2lip_blocks import AUDIO_ENCODER, DECODER, FACE_ENCODER

log = logging.getLogger(__name__)

FACE = 96  # the published face-crop size
MEL_BINS, MEL_STEPS = 80, 16


class CheckpointError(ValueError):
    """The mouth generator's weights are missing, unreadable or for another network."""


class _Conv(nn.Module):
    """Conv + BatchNorm (+ residual) + ReLU: Wav2Lip's ``Conv2d``."""

    def __init__(self, cin: int, cout: int, k: int, stride: object, pad: int, res: bool) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = res

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class _ConvT(nn.Module):
    """Transposed conv + BatchNorm + ReLU: Wav2Lip's ``Conv2dTranspose``."""

    def __init__(self, cin: int, cout: int, k: int, s: int, pad: int, opad: int) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, k, s, pad, opad), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """One block."""
        return self.act(self.conv_block(x))


class Wav2LipGenerator(nn.Module):
    """Face encoder (masked + reference face), audio encoder (mel window), skip decoder."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList(
            nn.Sequential(*(_Conv(*spec) for spec in block)) for block in FACE_ENCODER
        )
        self.audio_encoder = nn.Sequential(*(_Conv(*spec) for spec in AUDIO_ENCODER))
        blocks = []
        for tconv, nres in DECODER:
            if tconv is None:
                blocks.append(nn.Sequential(_Conv(512, 512, 1, 1, 0, False)))
                continue
            cout = tconv[1]
            layers: list[nn.Module] = [_ConvT(*tconv)]
            layers += [_Conv(cout, cout, 3, 1, 1, True) for _ in range(nres)]
            blocks.append(nn.Sequential(*layers))
        self.face_decoder_blocks = nn.ModuleList(blocks)
        self.output_block = nn.Sequential(
            _Conv(80, 32, 3, 1, 1, False), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, 16) mel and (B, 6, 96, 96) faces -> (B, 3, 96, 96) lower-face pictures."""
        if face.shape[1:] != (6, FACE, FACE):
            raise ValueError(f"faces must be (B, 6, {FACE}, {FACE}), not {tuple(face.shape)}")
        if mel.shape[1:] != (1, MEL_BINS, MEL_STEPS):
            raise ValueError(f"mel must be (B, 1, 80, 16), not {tuple(mel.shape)}")
        x = self.audio_encoder(mel)
        feats = []
        f = face
        for block in self.face_encoder_blocks:
            f = block(f)
            feats.append(f)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, feats.pop()), dim=1)
        return self.output_block(x)


def load_generator(
    checkpoint: Path | None, device: str = "cpu", *, random_init: bool = False
) -> Wav2LipGenerator:
    """The generator with the user's weights from ``checkpoint``, in eval mode on ``device``.

    ``random_init`` (benchmarks only: compute cost, no meaningful picture) skips the
    checkpoint. Every problem with the file is a :class:`CheckpointError` with one line.
    """
    net = Wav2LipGenerator()
    if checkpoint is None:
        if not random_init:
            raise CheckpointError(
                "render.backend = 'wav2lip' needs render.checkpoint: a Wav2Lip-class generator "
                "checkpoint (.pth); random weights are for benchmarks only"
            )
        torch.manual_seed(0)
    else:
        net.load_state_dict(checkpoint_state(Path(checkpoint), net))
    return net.to(device).eval()


def checkpoint_state(path: Path, net: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` checked against ``net``: every key, every shape."""
    path = path.expanduser()
    if not path.is_file():
        raise CheckpointError(f"mouth generator checkpoint not found: {path}")
    try:
        # weights_only: a checkpoint is data; never run pickled code from a user's file.
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read the checkpoint {path}: {exc}") from exc
    state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise CheckpointError(f"{path} holds no state dict of tensors")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    want = net.state_dict()
    missing = sorted(set(want) - set(state))
    extra = sorted(set(state) - set(want))
    if missing or extra:
        raise CheckpointError(
            f"{path} is not a Wav2Lip-class generator: {len(missing)} keys missing "
            f"({', '.join(missing[:3]) or '-'}), {len(extra)} unexpected "
            f"({', '.join(extra[:3]) or '-'})"
        )
    for key, tensor in want.items():
        if state[key].shape != tensor.shape:
            raise CheckpointError(
                f"{path}: {key} is {tuple(state[key].shape)}, the generator needs "
                f"{tuple(tensor.shape)}"
            )
    return state


class MouthBatcher:
    """The batch function: stacks requests, runs the generator once, returns uint8 faces.

    A request is ``(face6, mel)``: float32 (96, 96, 6) masked target + reference in 0..1, and
    (80, 16) mel. The result of each is a (96, 96, 3) uint8 picture (the network's channel
    order). ``half`` runs in float16 on CUDA.
    """

    def __init__(self, net: Wav2LipGenerator, device: str = "cpu", half: bool = False) -> None:
        self.device = torch.device(device)
        self.half = half and self.device.type == "cuda"
        self.net = net.half() if self.half else net

    @torch.inference_mode()
    def __call__(self, requests: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
        """One forward pass over all ``requests``."""
        faces = np.stack([f for f, _ in requests]).transpose(0, 3, 1, 2)
        mels = np.stack([m for _, m in requests])[:, None]
        dtype = torch.float16 if self.half else torch.float32
        face_t = torch.from_numpy(np.ascontiguousarray(faces)).to(self.device, dtype)
        mel_t = torch.from_numpy(np.ascontiguousarray(mels, np.float32)).to(self.device, dtype)
        out = self.net(mel_t, face_t).float().clamp_(0, 1).mul_(255).round_()
        pics = out.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        return list(pics)
