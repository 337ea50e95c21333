"""Train the audio -> mouth network on the cache from ``make_data.py`` and export it to ONNX.

The network sees, for each 40 ms video frame, a window of 16 log-mel frames (130 ms before the
frame time to 20 ms after it, see :mod:`anima.lipsync.neural`): three 1-D convolutions over
time summarise the window, a GRU carries context from earlier frames (causal), and a linear
head with a sigmoid gives (jaw_open, lip_width, lip_round, lip_closure). Mel normalisation
(mean, std from the training set) is inside the graph, so run time feeds raw log-mel.

    .venv/bin/python training/train_lipsync.py --data training/cache/train.npz \
        --out anima/lipsync/models/audio2mouth.onnx
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from anima.lipsync import neural as N

SEED = 7
LR = 2e-3
HIDDEN = 128


class Audio2Mouth(nn.Module):
    """Window encoder (conv) + GRU + sigmoid head."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        c = 96
        self.conv = nn.Sequential(
            nn.Conv1d(N.N_MELS, c, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(c, c, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        self.proj = nn.Sequential(
            nn.Linear(c * (N.CONTEXT // 4), hidden), nn.ReLU(), nn.Dropout(0.1)
        )
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 4)

    def forward(self, feats: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feats (B, T, CONTEXT, N_MELS), h0 (1, B, H) -> mouth (B, T, 4), h (1, B, H)."""
        b, t = feats.shape[0], feats.shape[1]
        x = (feats - self.mean) / self.std
        x = x.reshape(b * t, N.CONTEXT, N.N_MELS).transpose(1, 2)
        x = self.conv(x).reshape(b, t, -1)
        x, h = self.gru(self.proj(x), h0)
        return torch.sigmoid(self.head(x)), h


def load(path: Path):
    """Per-utterance (windows, labels, source) from the cache."""
    d = np.load(path)
    mel = d["mel"].astype(np.float32)
    silence = np.repeat(N.silence_mel()[None], N.CONTEXT - N.AHEAD - 1, 0)
    out = []
    mo = lo = 0
    for ml, ll, src in zip(d["mel_len"], d["label_len"], d["source"], strict=True):
        m = np.concatenate([silence, mel[mo : mo + ml]])
        idx = (np.arange(ll) * N.PER_FRAME)[:, None] + np.arange(N.CONTEXT)[None, :]
        out.append((m[idx], d["label"][lo : lo + ll], str(src)))
        mo, lo = mo + ml, lo + ll
    return out, mel


def _num(name: str) -> int:
    return int(name.rsplit("_", 1)[1])


def from_onnx(path: Path) -> Audio2Mouth:
    """The torch model with the weights of an exported ONNX graph (to fine-tune a shipped model).

    The exporter stores the linear layers transposed and the GRU gates in ONNX order (z, r, h)
    where torch uses (r, z, n); both are undone here.
    """
    import onnx
    from onnx import numpy_helper

    w = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(path)).graph.initializer}
    model = Audio2Mouth(w["mean"], w["std"])
    gru = [w[k] for k in sorted((k for k in w if k.startswith("onnx::GRU_")), key=_num)]
    mats = [w[k] for k in sorted((k for k in w if k.startswith("onnx::MatMul_")), key=_num)]
    ih, hh, bias = gru[0][0], gru[1][0], gru[2][0]

    def gates(a: np.ndarray) -> np.ndarray:
        z, r, h = np.split(a, 3)
        return np.concatenate([r, z, h])

    state = {k: torch.tensor(v) for k, v in w.items() if not k.startswith("onnx::")}
    proj, head = sorted(mats, key=lambda m: -m.shape[1])
    state |= {
        "proj.0.weight": torch.tensor(proj.T.copy()),
        "head.weight": torch.tensor(head.T.copy()),
        "gru.weight_ih_l0": torch.tensor(gates(ih)),
        "gru.weight_hh_l0": torch.tensor(gates(hh)),
        "gru.bias_ih_l0": torch.tensor(gates(bias[: 3 * HIDDEN])),
        "gru.bias_hh_l0": torch.tensor(gates(bias[3 * HIDDEN :])),
    }
    model.load_state_dict(state)
    return model


def batches(utts, rng: np.random.Generator, size: int, crop: int):
    """Random crops of ``crop`` frames (shorter utterances padded with their last frame)."""
    order = rng.permutation(len(utts))
    for k in range(0, len(order) - size + 1, size):
        xs, ys = [], []
        for i in order[k : k + size]:
            w, y, _ = utts[i]
            start = rng.integers(0, max(1, len(y) - crop + 1))
            w, y = w[start : start + crop], y[start : start + crop]
            if len(y) < crop:
                w = np.concatenate([w, np.repeat(w[-1:], crop - len(y), 0)])
                y = np.concatenate([y, np.repeat(y[-1:], crop - len(y), 0)])
            xs.append(w)
            ys.append(y)
        yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def loss_fn(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MSE on the values plus on their frame-to-frame change (keeps motion crisp)."""
    mse = ((pred - y) ** 2).mean()
    dpred, dy = pred[:, 1:] - pred[:, :-1], y[:, 1:] - y[:, :-1]
    return mse + 0.5 * ((dpred - dy) ** 2).mean()


def evaluate(model: Audio2Mouth, utts) -> dict[str, float]:
    """Per-parameter Pearson correlation over the concatenated utterances."""
    model.eval()
    preds, ys = [], []
    with torch.no_grad():
        for w, y, _ in utts:
            p, _ = model(torch.from_numpy(w)[None], torch.zeros(1, 1, HIDDEN))
            preds.append(p[0].numpy())
            ys.append(y)
    p, y = np.concatenate(preds), np.concatenate(ys)
    names = ["jaw_open", "lip_width", "lip_round", "lip_closure"]
    return {n: float(np.corrcoef(p[:, i], y[:, i])[0, 1]) for i, n in enumerate(names)}


def export(model: Audio2Mouth, out: Path) -> None:
    """ONNX with a dynamic number of frames; inputs feats, h0; outputs mouth, h."""
    model.eval()
    out.parent.mkdir(parents=True, exist_ok=True)
    feats = torch.zeros(1, 5, N.CONTEXT, N.N_MELS)
    h0 = torch.zeros(1, 1, HIDDEN)
    torch.onnx.export(
        model,
        (feats, h0),
        str(out),
        input_names=["feats", "h0"],
        output_names=["mouth", "h"],
        dynamic_axes={"feats": {1: "frames"}, "mouth": {1: "frames"}},
        opset_version=17,
        dynamo=False,
    )


def main() -> None:
    """Train, report validation correlation, export."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, nargs="+", default=[Path("training/cache/train.npz")])
    ap.add_argument("--init", type=Path, help="fine-tune from this exported ONNX model")
    ap.add_argument("--lr", type=float, default=LR)
    ap.add_argument("--out", type=Path, default=Path("anima/lipsync/models/audio2mouth.onnx"))
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--minutes", type=float, default=15.0, help="stop early after this long")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(SEED)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(SEED)
    loaded = [load(p) for p in args.data]
    utts = [u for part, _ in loaded for u in part]
    mel = np.concatenate([m for _, m in loaded])
    mean, std = mel.mean(0), mel.std(0) + 1e-3
    val_idx = set(rng.choice(len(utts), size=max(8, len(utts) // 20), replace=False).tolist())
    train = [u for i, u in enumerate(utts) if i not in val_idx]
    val = [u for i, u in enumerate(utts) if i in val_idx]
    # Fine-tuning keeps the model's own mel normalisation (its weights were learnt on it).
    model = from_onnx(args.init) if args.init else Audio2Mouth(mean, std)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    started = time.perf_counter()
    history = []
    for epoch in range(args.epochs):
        model.train()
        total, n = 0.0, 0
        batch_list = list(batches(train, rng, size=min(32, len(train)), crop=100))
        for b, (x, y) in enumerate(batch_list):
            # Cosine decay over the budget, whichever runs out first: epochs or minutes, so
            # a slow (shared) machine still ends with a fully annealed model.
            done = max(
                (epoch + b / len(batch_list)) / args.epochs,
                (time.perf_counter() - started) / (args.minutes * 60),
            )
            if done >= 1.0:
                break
            for group in opt.param_groups:
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * done))
            pred, _ = model(x, torch.zeros(1, x.shape[0], HIDDEN))
            loss = loss_fn(pred, y)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        corr = evaluate(model, val)
        for src in sorted({u[2] for u in val}):  # per source, so a language's drop shows
            part = evaluate(model, [u for u in val if u[2] == src])
            print(f"  {src}: " + " ".join(f"{v:.3f}" for v in part.values()), flush=True)
        elapsed = time.perf_counter() - started
        history.append({"epoch": epoch, "loss": total / max(n, 1), "val_corr": corr, "s": elapsed})
        print(
            f"epoch {epoch} loss {total / max(n, 1):.4f} val "
            + " ".join(f"{v:.3f}" for v in corr.values())
            + f" {elapsed:.0f}s",
            flush=True,
        )
        if elapsed >= args.minutes * 60:
            break
    export(model, args.out)
    meta = {
        "seed": SEED,
        "data": [str(p) for p in args.data],
        "init": str(args.init) if args.init else None,
        "lr": args.lr,
        "train_utterances": len(train),
        "val_utterances": len(val),
        "frames": int(sum(len(u[1]) for u in train)),
        "history": history,
    }
    args.out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(f"exported {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
