"""The kiosk WebSocket protocol's messages: parsing what clients send, packing what they get.

The protocol itself is documented in ``docs/protocol.md``; this module is its single source of
truth in code (version, message types, fields, error codes, the binary media header).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

VERSION = 1
MEDIA = ("video", "params", "events")
AUDIO_FORMATS = {"s16le": np.dtype("<i2"), "f32le": np.dtype("<f4")}

# Binary server -> client frames: a 16-byte little-endian header, then the payload.
HEADER = struct.Struct("<BBHIQ")  # kind, flags, reserved, turn, pts
KIND_AUDIO = 1  # payload: s16le mono PCM at the welcome's output rate; pts = first sample
KIND_VIDEO = 2  # payload: a JPEG image; pts = video frame index
FLAG_SPEAKING = 1

COMMANDS = (
    "hello",
    "say",
    "ask",
    "interrupt",
    "set_avatar",
    "set_persona",
    "presence",
    "ptt_start",
    "ptt_stop",
    "ping",
    "bye",
)


class ProtocolError(Exception):
    """A client message the server refuses; ``code`` is the ``error`` frame's code."""

    def __init__(self, code: str, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fatal = fatal

    def to_json(self) -> dict[str, Any]:
        """The ``error`` frame sent to the client."""
        return {"type": "error", "code": self.code, "message": self.message, "fatal": self.fatal}


@dataclass(frozen=True)
class AudioFormat:
    """The mic PCM a client declared in its hello."""

    format: str = "s16le"
    rate: int = 16_000
    channels: int = 1

    def decode(self, data: bytes) -> np.ndarray:
        """Samples of one binary message (interleaved when stereo)."""
        dtype = AUDIO_FORMATS[self.format]
        frame = dtype.itemsize * self.channels
        if len(data) % frame:
            raise ProtocolError(
                "bad_audio",
                f"a binary message must hold whole {self.format} frames of {self.channels} "
                f"channel(s) ({frame} bytes each); got {len(data)} bytes",
            )
        pcm = np.frombuffer(data, dtype)
        if pcm.dtype.kind == "f" and not np.all(np.isfinite(pcm)):
            raise ProtocolError("bad_audio", "the audio contains NaN or infinite samples")
        return pcm.astype(np.int16 if self.format == "s16le" else np.float32, copy=False)


@dataclass(frozen=True)
class Hello:
    """The first message of a connection."""

    media: str
    audio: AudioFormat
    avatar: str | None
    listening: str
    greet: bool
    user_id: str | None
    token: str | None
    drive: bool = False  # the mic audio is the avatar's voice ("speak through the avatar")


def parse_text(data: str) -> dict[str, Any]:
    """A client JSON message as a dict with a known ``type`` (ProtocolError otherwise)."""
    try:
        msg = json.loads(data)
    except (ValueError, RecursionError) as exc:  # ValueError: also ints over 4300 digits
        raise ProtocolError("bad_json", f"the message is not valid JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("bad_message", "a message must be a JSON object with a 'type'")
    kind = msg.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_message", "the message has no 'type' string")
    if kind not in COMMANDS:
        raise ProtocolError(
            "unknown_type", f"unknown message type {kind!r}; known: {', '.join(COMMANDS)}"
        )
    return msg


def parse_hello(msg: dict[str, Any]) -> Hello:
    """Validate a ``hello`` message."""
    version = msg.get("version")
    if version != VERSION:
        raise ProtocolError(
            "version",
            f"protocol version {version!r} is not supported; this server speaks {VERSION}",
            fatal=True,
        )
    media = msg.get("media", "video")
    if media not in MEDIA:
        raise ProtocolError(
            "bad_message", f"media must be one of {', '.join(MEDIA)}, not {media!r}"
        )
    audio = msg.get("audio") or {}
    if not isinstance(audio, dict):
        raise ProtocolError("bad_message", "audio must be an object {format, rate, channels}")
    fmt = audio.get("format", "s16le")
    rate = audio.get("rate", 16_000)
    channels = audio.get("channels", 1)
    if fmt not in AUDIO_FORMATS:
        raise ProtocolError("bad_message", f"audio.format must be s16le or f32le, not {fmt!r}")
    if not isinstance(rate, int) or isinstance(rate, bool) or not 8_000 <= rate <= 48_000:
        raise ProtocolError("bad_message", "audio.rate must be an integer from 8000 to 48000")
    if channels not in (1, 2) or isinstance(channels, bool):
        raise ProtocolError("bad_message", "audio.channels must be 1 or 2")
    listening = msg.get("listening", "always")
    if listening not in ("always", "ptt"):
        raise ProtocolError("bad_message", "listening must be 'always' or 'ptt'")
    drive = _bool(msg, "drive", False)
    if drive and listening == "ptt":
        raise ProtocolError("bad_message", "a drive session has no push-to-talk (listening 'ptt')")
    return Hello(
        media=media,
        audio=AudioFormat(fmt, rate, channels),
        avatar=_opt_str(msg, "avatar"),
        listening=listening,
        greet=_bool(msg, "greet", True),
        user_id=_opt_str(msg, "user_id"),
        token=_opt_str(msg, "token"),
        drive=drive,
    )


def text_field(msg: dict[str, Any], name: str = "text") -> str:
    """A required non-empty string field."""
    value = msg.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ProtocolError("bad_message", f"'{msg['type']}' needs a non-empty string '{name}'")
    return value


def _opt_str(msg: dict[str, Any], name: str) -> str | None:
    value = msg.get(name)
    if value is not None and not isinstance(value, str):
        raise ProtocolError("bad_message", f"'{name}' must be a string")
    return value


def _bool(msg: dict[str, Any], name: str, default: bool) -> bool:
    value = msg.get(name, default)
    if not isinstance(value, bool):
        raise ProtocolError("bad_message", f"'{name}' must be true or false")
    return value


def bool_field(msg: dict[str, Any], name: str) -> bool:
    """A required boolean field."""
    if name not in msg:
        raise ProtocolError("bad_message", f"'{msg['type']}' needs a boolean '{name}'")
    return _bool(msg, name, False)


def pack_media(kind: int, turn: int, pts: int, payload: bytes, speaking: bool = False) -> bytes:
    """A binary media message: header + payload."""
    flags = FLAG_SPEAKING if speaking else 0
    return HEADER.pack(kind, flags, 0, turn & 0xFFFFFFFF, pts) + payload


def unpack_media(data: bytes) -> tuple[int, int, int, int, bytes]:
    """(kind, flags, turn, pts, payload) of a binary media message."""
    if len(data) < HEADER.size:
        raise ValueError(f"a media message has at least {HEADER.size} bytes, got {len(data)}")
    kind, flags, _, turn, pts = HEADER.unpack_from(data)
    return kind, flags, turn, pts, data[HEADER.size :]
