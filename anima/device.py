"""Which device a backend runs on: ``cpu``, ``cuda``, ``cuda:N`` or ``auto``, resolved once.

Each backend asks through the runtime it really uses, so the answer is what that runtime can
do, not what some other library sees: CTranslate2 (Whisper) counts CUDA devices itself,
onnxruntime (Piper) needs its CUDA execution provider (the ``onnxruntime-gpu`` wheel), torch (the
neural mouth renderer, XTTS) needs a CUDA build. ``auto`` takes CUDA when that runtime has it and
the CPU otherwise; ``cuda`` asked for where it is absent is a :class:`DeviceError` whose one
line says what is missing. Nothing here imports torch unless a torch backend asks.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEVICE_PATTERN = re.compile(r"^(cpu|auto|cuda(:\d{1,2})?)$")
BACKENDS = ("ctranslate2", "onnxruntime", "torch")


class DeviceError(RuntimeError):
    """CUDA was asked for, and the runtime that would use it has none."""


@dataclass(frozen=True)
class Device:
    """A resolved device: ``kind`` is ``cpu`` or ``cuda``; ``index`` the CUDA ordinal."""

    kind: str
    index: int = 0

    @property
    def cuda(self) -> bool:
        """True on a GPU."""
        return self.kind == "cuda"

    def __str__(self) -> str:
        return f"cuda:{self.index}" if self.cuda else "cpu"


CPU = Device("cpu")


def parse_device(value: str) -> str:
    """``value`` normalised (lower case, stripped); ValueError names the accepted forms."""
    text = str(value).strip().lower()
    if not DEVICE_PATTERN.match(text):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', not {value!r}")
    return text


def _ctranslate2() -> tuple[int, str]:
    if importlib.util.find_spec("ctranslate2") is None:
        return 0, "ctranslate2 is not installed (pip install faster-whisper)"
    import ctranslate2

    try:
        n = int(ctranslate2.get_cuda_device_count())
    except Exception as exc:  # a broken driver raises here; treat it as "no CUDA" with why
        return 0, f"CTranslate2 cannot query CUDA: {exc}"
    return n, f"CTranslate2 {ctranslate2.__version__} sees no CUDA device (driver or CUDA 12 libs)"


def _onnxruntime() -> tuple[int, str]:
    if importlib.util.find_spec("onnxruntime") is None:
        return 0, "onnxruntime is not installed"
    import onnxruntime

    providers = onnxruntime.get_available_providers()
    if "CUDAExecutionProvider" in providers:
        # onnxruntime does not count devices; the ordinal is checked when the session opens.
        return 99, ""
    return 0, (
        f"onnxruntime {onnxruntime.__version__} has no CUDAExecutionProvider "
        f"(providers: {', '.join(providers)}); pip install onnxruntime-gpu in its place"
    )


def _torch() -> tuple[int, str]:
    if importlib.util.find_spec("torch") is None:
        return 0, "torch is not installed: pip install 'anima[gpu]'"
    import torch

    if torch.version.cuda is None:
        return 0, f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch"
    n = int(torch.cuda.device_count())
    return n, f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"


# Probes per runtime: (CUDA devices, why there are none). Tests replace them.
PROBES: dict[str, Callable[[], tuple[int, str]]] = {
    "ctranslate2": _ctranslate2,
    "onnxruntime": _onnxruntime,
    "torch": _torch,
}


def resolve_device(value: str | None, backend: str, *, what: str = "") -> Device:
    """The device ``value`` means for ``backend`` (one of :data:`BACKENDS`).

    ``None`` is the CPU (the embedded default). ``auto`` falls back to the CPU quietly (one
    log line); ``cuda``/``cuda:N`` without CUDA raise :class:`DeviceError` naming what is
    missing. ``what`` names the part asking ("speech recogniser") in that message.
    """
    if backend not in PROBES:
        raise ValueError(f"unknown device backend {backend!r}; one of {', '.join(BACKENDS)}")
    text = parse_device(value) if value is not None else "cpu"
    if text == "cpu":
        return CPU
    count, why = PROBES[backend]()
    if text == "auto":
        if count > 0:
            return Device("cuda", 0)
        log.info("%s: device 'auto' runs on the CPU (%s)", what or backend, why)
        return CPU
    index = int(text.split(":", 1)[1]) if ":" in text else 0
    part = f" for the {what}" if what else ""
    if count <= 0:
        raise DeviceError(f"device {text!r} was asked{part}, but {why}; or set device = 'cpu'")
    if index >= count:
        raise DeviceError(
            f"device {text!r} was asked{part}, but {backend} sees only {count} CUDA device(s)"
        )
    return Device("cuda", index)
