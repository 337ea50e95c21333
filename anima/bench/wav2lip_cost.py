"""``anima bench wav2lip``: our renderer's per-frame cost vs a Wav2Lip-class mouth generator.

The generator follows the published Wav2Lip architecture (Prajwal et al., 2020): a face encoder
over the 6-channel input (masked target + reference face) of stride-2 conv blocks with residual
convolutions, an audio encoder over a 80 x 16 mel window, and a decoder of transposed
convolutions that concatenates the face encoder's skip features at every scale, then an output
block with a sigmoid. Every conv is conv + (folded) batch norm + ReLU, as at inference. The
weights are random (He-normal, numpy): only the compute cost matters. The graph is built with
``onnx.helper`` and run by onnxruntime on one thread (intra and inter op), batch 1.

Two sizes:

- **96 px**, the published face-crop size (what Wav2Lip actually generates per frame);
- **output size** (``render.size``, 512 px): the same network made fully convolutional (the
  audio embedding is tiled over the face bottleneck), so it generates a picture as large as
  ours. This is the like-for-like comparison; the 96 px figure flatters the generator, which
  in practice also needs a face detector and an upscaler/paste per frame (not counted here).

Our cost is :meth:`FaceAnimator.render` on the sample portrait with real mouth shapes, on one
pinned core with OpenCV single-threaded, the same way ``anima bench render`` measures it, and
interleaved with the generator (five of our frames after each generated one) so that both see
the same load on a shared machine.
JSON in ``<out>/wav2lip.json``: per-frame ms for each, and the ratios generator / ours.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from anima.bench.common import stats, write_result
from anima.config import Settings
from anima.render.wav2lip_blocks import AUDIO_ENCODER, DECODER, FACE_ENCODER


class _Graph:
    """Accumulates ONNX nodes and random initialisers."""

    def __init__(self, seed: int = 0) -> None:
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def name(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.n}"

    def weight(self, shape: tuple[int, ...], fan_in: int) -> str:
        from onnx import numpy_helper

        name = self.name("w")
        w = (self.rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        self.inits.append(numpy_helper.from_array(w, name))
        return name

    def bias(self, n: int) -> str:
        from onnx import numpy_helper

        name = self.name("b")
        self.inits.append(numpy_helper.from_array(np.zeros(n, np.float32), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs: Any) -> str:
        from onnx import helper

        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: Any, pad: int, res: bool) -> str:
        """Conv + folded batch norm (a bias) + optional residual + ReLU (Wav2Lip's Conv2d)."""
        s = stride if isinstance(stride, tuple) else (stride, stride)
        w = self.weight((cout, cin, k, k), cin * k * k)
        y = self.op(
            "Conv", [x, w, self.bias(cout)], kernel_shape=[k, k], strides=list(s), pads=[pad] * 4
        )
        if res:
            y = self.op("Add", [y, x])
        return self.op("Relu", [y])

    def conv_t(self, x: str, cin: int, cout: int, k: int, s: int, pad: int, opad: int) -> str:
        """Transposed conv + folded batch norm + ReLU (Wav2Lip's Conv2dTranspose)."""
        w = self.weight((cin, cout, k, k), cin * k * k)
        y = self.op(
            "ConvTranspose",
            [x, w, self.bias(cout)],
            kernel_shape=[k, k],
            strides=[s, s],
            pads=[pad] * 4,
            output_padding=[opad, opad],
        )
        return self.op("Relu", [y])


def build_generator(size: int = 96, seed: int = 0) -> bytes:
    """A serialised ONNX Wav2Lip-class generator for ``size`` px faces (random weights).

    Inputs: ``face`` (1, 6, size, size) and ``mel`` (1, 1, 80, 16); output ``image``
    (1, 3, size, size) in 0..1. ``size`` must be a multiple of 32 and at least 96.
    """
    from onnx import TensorProto, helper

    if size < 96 or size % 32:
        raise ValueError(f"size must be a multiple of 32 and at least 96, not {size}")
    g = _Graph(seed)
    x = "face"
    feats = []
    for block in FACE_ENCODER:
        for cin, cout, k, s, p, res in block:
            x = g.conv(x, cin, cout, k, s, p, res)
        feats.append(x)
    a = "mel"
    for cin, cout, k, s, p, res in AUDIO_ENCODER:
        a = g.conv(a, cin, cout, k, s, p, res)
    # Fully convolutional beyond 96 px: the 1x1 audio embedding is tiled over the bottleneck.
    bottleneck = size // 32 - 2
    if bottleneck > 1:
        shape = g.name("shape")
        from onnx import numpy_helper

        g.inits.append(
            numpy_helper.from_array(np.array([1, 512, bottleneck, bottleneck], np.int64), shape)
        )
        a = g.op("Expand", [a, shape])
    x = a
    for (tconv, nres), skip in zip(DECODER, reversed(feats), strict=True):
        if tconv is None:
            x = g.conv(x, 512, 512, 1, 1, 0, False)
        else:
            cin, cout, k, s, p, op = tconv
            x = g.conv_t(x, cin, cout, k, s, p, op)
            for _ in range(nres):
                x = g.conv(x, cout, cout, 3, 1, 1, True)
        x = g.op("Concat", [x, skip], axis=1)
    x = g.conv(x, 80, 32, 3, 1, 1, False)
    w = g.weight((3, 32, 1, 1), 32)
    x = g.op("Conv", [x, w, g.bias(3)], kernel_shape=[1, 1])
    g.nodes.append(helper.make_node("Sigmoid", [x], ["image"]))
    graph = helper.make_graph(
        g.nodes,
        "wav2lip_class_generator",
        [
            helper.make_tensor_value_info("face", TensorProto.FLOAT, [1, 6, size, size]),
            helper.make_tensor_value_info("mel", TensorProto.FLOAT, [1, 1, 80, 16]),
        ],
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def parameter_count(model: bytes) -> int:
    """Number of weights in a serialised ONNX model."""
    import onnx

    m = onnx.load_from_string(model)
    return int(sum(np.prod(t.dims) for t in m.graph.initializer))


def time_generator(model: bytes, size: int, reps: int, between: Any = None) -> list[float]:
    """Seconds per generated frame (batch 1, one thread), after one warm-up run.

    ``between`` (untimed here) runs after every generated frame: the bench renders our frames
    there, so both are measured interleaved, under the same load of a shared machine.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    feed = {
        "face": rng.random((1, 6, size, size), np.float32),
        "mel": rng.standard_normal((1, 1, 80, 16)).astype(np.float32),
    }
    out = sess.run(None, feed)[0]
    if out.shape != (1, 3, size, size):
        raise RuntimeError(f"the generator made {out.shape}, not (1, 3, {size}, {size})")
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append(time.perf_counter() - t)
        if between is not None:
            between()
    return times


def renderer(settings: Settings) -> Any:
    """A function that renders our next frame (real mouth shapes) and returns its seconds."""
    from anima.frames import MediaClock
    from anima.lipsync import PhonemeLipSync
    from anima.render.animator import FaceAnimator
    from anima.render.avatar import prepare_avatar, sample_portrait
    from anima.tts import load_voice

    voice = load_voice(settings.voice.backend, model=settings.voice.model)
    r = settings.render
    shapes: list[Any] = []
    start, clock = 0, None
    for chunk in voice.synthesize("Good morning, and welcome. How can I help you today?"):
        clock = clock or MediaClock(chunk.sample_rate, r.fps)
        shapes += PhonemeLipSync().shapes(chunk, start, clock)
        start += len(chunk.pcm)
    anim = FaceAnimator(prepare_avatar(sample_portrait(), "sample"), size=r.size, fps=r.fps, seed=1)
    index = [0]

    def render_next() -> float:
        i = index[0]
        index[0] += 1
        _, shape, speaking = shapes[i % len(shapes)]
        t = time.perf_counter()
        anim.render(i, shape, speaking)
        return time.perf_counter() - t

    return render_next


def _pinned(fn: Any, cv2: Any) -> Any:
    """Run ``fn`` on one core with OpenCV single-threaded (both restored after)."""
    threads = cv2.getNumThreads()
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    try:
        if affinity:
            os.sched_setaffinity(0, {min(affinity)})
        cv2.setNumThreads(1)
        return fn()
    finally:
        cv2.setNumThreads(threads)
        if affinity:
            os.sched_setaffinity(0, affinity)


def bench_wav2lip(
    out: Path, settings: Settings, err: Console, *, reps: int = 20, full: bool = True
) -> int:
    """Measure both, write ``wav2lip.json`` and print the ratios."""
    import cv2

    size = settings.render.size
    render_next = renderer(settings)
    for _ in range(10):  # warm-up: caches, first-call allocations
        render_next()
    result: dict[str, Any] = {
        "benchmark": "wav2lip",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": {"render_size": size, "threads": 1, "batch": 1, "reps": reps},
        "load_average": os.getloadavg(),
        "ours_ms": {},
        "generator": {},
        "ratios": {},
        "notes": [
            "Wav2Lip-class generator of the published architecture, random weights, ONNX via "
            "onnx.helper, onnxruntime CPU, one thread; the face detector, mel extraction and "
            "paste-back that Wav2Lip also needs per frame are not counted.",
            "ratio = generator ms per frame / our renderer ms per frame, both on the same pinned "
            "core, interleaved (5 of our frames after every generated frame).",
        ],
    }
    sizes = [96] + ([size] if full and size != 96 and size % 32 == 0 else [])
    for px in sizes:
        model = build_generator(px)
        n = reps if px == 96 else max(2, reps // 10)
        ours: list[float] = []

        def between(k: int = 5, ours: list[float] = ours) -> None:
            ours.extend(render_next() for _ in range(k))

        times = _pinned(lambda m=model, p=px, k=n, b=between: time_generator(m, p, k, b), cv2)
        st = stats([t * 1000 for t in times])
        mine = stats([t * 1000 for t in ours])
        result["generator"][str(px)] = {"ms": st, "params": parameter_count(model)}
        result["ours_ms"][str(px)] = mine
        result["ratios"][str(px)] = st["p50"] / mine["p50"]
        err.log(
            f"Wav2Lip-class at {px} px: {st['p50']:.1f} ms/frame; ours at {size} px: "
            f"{mine['p50']:.1f} ms -> ratio {result['ratios'][str(px)]:.1f}x"
        )
    path = write_result(out, "wav2lip", result)
    err.print(f"wrote {path}")
    return 0
