"""One settings model for the whole engine, from a TOML file and ``ANIMA_*`` environment.

Precedence: explicit arguments > environment (``ANIMA_RENDER__FPS=30``) > the TOML file named
by ``ANIMA_CONFIG`` or passed to :meth:`Settings.load` > defaults. Everything is validated at
start, so a bad value fails before any model loads.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class RenderSettings(BaseModel):
    """Output video and the avatar animation."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    size: int = Field(512, ge=128, le=2048, description="Output frames are size x size pixels.")
    fps: int = Field(25, ge=10, le=60)
    face_margin: float = Field(
        0.5, ge=0.2, le=3.0, description="Crop margin around the face, as a fraction of its size."
    )
    blink_interval: float = Field(4.0, gt=0.5, description="Mean seconds between blinks.")
    head_motion: float = Field(1.0, ge=0.0, le=3.0, description="Scale of idle head motion.")
    seed: int | None = Field(None, description="Seed for idle motion; None varies per run.")
    crf: int = Field(20, ge=0, le=51, description="H.264 quality for files (lower is better).")


class VoiceSettings(BaseModel):
    """The text-to-speech voice."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    backend: str = "piper"
    model: Path | None = Field(None, description="A Piper .onnx voice; default: the embedded one.")
    length_scale: float = Field(1.0, gt=0.3, le=3.0, description="Above 1 speaks slower.")
    sentence_silence: float = Field(0.15, ge=0.0, le=2.0, description="Pause between sentences.")


class LimitSettings(BaseModel):
    """Limits on outside input, checked before any expensive work."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    max_text_chars: int = Field(2000, ge=1)
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(40_000_000, ge=10_000)
    min_face_pixels: int = Field(
        80, ge=16, description="The face must be at least this wide in the photo."
    )


class Settings(BaseSettings):
    """Everything the engine can be told."""

    model_config = SettingsConfigDict(env_prefix="ANIMA_", env_nested_delimiter="__")

    data_dir: Path = Field(
        default_factory=lambda: Path(platformdirs.user_data_dir("anima", appauthor=False)),
        description="Where avatars and caches are kept.",
    )
    log_level: str = "WARNING"
    render: RenderSettings = Field(default_factory=RenderSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING or ERROR")
        return value

    @property
    def avatar_dir(self) -> Path:
        """Folder holding one sub-folder per prepared avatar."""
        return self.data_dir / "avatars"

    @classmethod
    def load(cls, path: Path | None = None, **overrides: Any) -> Settings:
        """Settings from ``path`` (or ``$ANIMA_CONFIG``), then environment, then ``overrides``."""
        path = path or (
            Path(os.environ["ANIMA_CONFIG"]) if os.environ.get("ANIMA_CONFIG") else None
        )
        file_values: dict[str, Any] = {}
        if path is not None:
            try:
                file_values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ValueError(f"cannot read config {path}: {exc}") from exc
        env = cls()  # environment and defaults
        merged = _deep_merge(file_values, env.model_dump(exclude_unset=True))
        return cls.model_validate(_deep_merge(merged, overrides))


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out
