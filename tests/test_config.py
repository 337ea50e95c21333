"""Settings: defaults < TOML file < environment < explicit overrides, all validated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from anima.config import Settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ANIMA_* from the caller's shell; data under tmp_path, never the real home."""
    for key in list(os.environ):
        if key.upper().startswith("ANIMA_"):
            monkeypatch.delenv(key)
    data = tmp_path / "data"
    monkeypatch.setenv("ANIMA_DATA_DIR", str(data))
    return data


def write(tmp_path: Path, text: str, name: str = "anima.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FILE = """
log_level = "info"

[render]
fps = 50
size = 256

[voice]
length_scale = 1.2
"""


def test_defaults(clean_env: Path) -> None:
    s = Settings.load()
    assert s.data_dir == clean_env
    assert s.avatar_dir == clean_env / "avatars"
    assert s.log_level == "WARNING"
    assert s.render.fps == 25
    assert s.render.size == 512
    assert s.render.seed is None
    assert s.voice.backend == "piper"
    assert s.voice.model is None
    assert s.voice.length_scale == 1.0
    assert s.limits.max_text_chars == 2000


def test_file_overrides_defaults(tmp_path: Path) -> None:
    s = Settings.load(write(tmp_path, FILE))
    assert s.log_level == "INFO"  # normalised to upper case
    assert s.render.fps == 50
    assert s.render.size == 256
    assert s.voice.length_scale == 1.2
    # Keys the file leaves out keep their defaults, also inside a table it does set.
    assert s.render.crf == 20
    assert s.voice.sentence_silence == 0.15
    assert s.limits.max_text_chars == 2000


def test_file_named_by_anima_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANIMA_CONFIG", str(write(tmp_path, FILE)))
    assert Settings.load().render.fps == 50
    # An explicit path wins over $ANIMA_CONFIG.
    other = write(tmp_path, "[render]\nfps = 12\n", name="other.toml")
    assert Settings.load(other).render.fps == 12


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANIMA_RENDER__FPS", "30")
    monkeypatch.setenv("ANIMA_LOG_LEVEL", "debug")
    s = Settings.load(write(tmp_path, FILE))
    assert s.render.fps == 30
    assert s.log_level == "DEBUG"
    # Only what the environment sets is overridden; the rest of the file still applies.
    assert s.render.size == 256
    assert s.voice.length_scale == 1.2


def test_explicit_overrides_win(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANIMA_RENDER__FPS", "30")
    s = Settings.load(write(tmp_path, FILE), render={"fps": 60}, log_level="error")
    assert s.render.fps == 60
    assert s.render.size == 256  # merged, not replaced
    assert s.log_level == "ERROR"


@pytest.mark.parametrize(
    "text",
    [
        "[render]\nfps = 0\n",
        "[render]\nsize = 100000\n",
        'log_level = "LOUD"\n',
        "[voice]\nlength_scale = 0.1\n",
        "[limits]\nmax_text_chars = 0\n",
        "unknown_key = 1\n",
    ],
)
def test_invalid_file_values_raise(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValidationError):
        Settings.load(write(tmp_path, text))


@pytest.mark.parametrize(
    ("name", "value"),
    [("ANIMA_RENDER__FPS", "0"), ("ANIMA_RENDER__FPS", "fast"), ("ANIMA_LOG_LEVEL", "LOUD")],
)
def test_invalid_environment_values_raise(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings.load()


def test_invalid_override_raises() -> None:
    with pytest.raises(ValidationError):
        Settings.load(render={"fps": 0})


def test_misspelt_nested_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        Settings.load(write(tmp_path, "[render]\nfsp = 30\n"))


def test_missing_file_raises_value_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "anima.toml"
    with pytest.raises(ValueError, match="cannot read config") as info:
        Settings.load(path)
    assert str(path) in str(info.value)


def test_corrupt_file_raises_value_error_naming_it(tmp_path: Path) -> None:
    path = write(tmp_path, "[render\nfps = = 3\n")
    with pytest.raises(ValueError, match="cannot read config") as info:
        Settings.load(path)
    assert str(path) in str(info.value)
    assert not isinstance(info.value, ValidationError)


def test_missing_file_from_anima_config_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "absent.toml"
    monkeypatch.setenv("ANIMA_CONFIG", str(path))
    with pytest.raises(ValueError) as info:
        Settings.load()
    assert str(path) in str(info.value)
