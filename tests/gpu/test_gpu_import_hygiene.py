"""The CPU default never imports torch, Coqui TTS or a GPU-only module (checked in a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_GPU_ONLY = (
    "torch",
    "TTS",
    "anima.render.neural_mouth_net",
    "anima.render.neural_mouth",
    "anima.tts.xtts",
    "anima.bench.gpu",
)

_SCRIPT = """
import json, sys
import anima
from anima.engine import Engine
engine = Engine.from_config(brain={"backend": "kb"})
_ = engine.voice
from anima.cli import main
try:
    main(["say", "Hi.", "-o", sys.argv[1]])
except SystemExit as exc:
    assert not exc.code, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "TTS") or m.startswith(("anima.render.neural", "anima.tts.xtts", "anima.bench.gpu")))))
"""


@pytest.mark.slow
def test_default_engine_and_say_import_nothing_gpu_only(tmp_path):
    env_out = tmp_path / "hi.mp4"
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(env_out)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**__import__("os").environ, "ANIMA_DATA_DIR": str(tmp_path / "data")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert loaded == [], f"GPU-only modules imported by default: {loaded}"
    assert env_out.is_file() and env_out.stat().st_size > 1000
    assert all(m not in loaded for m in _GPU_ONLY)
