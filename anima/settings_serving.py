"""The settings sections of serving: the kiosk/WebRTC server, broadcasts and the cluster.

Part of the one settings model, :class:`anima.config.Settings` (which holds them as
``server``, ``webrtc``, ``live`` and ``cluster``); every name here is importable from
:mod:`anima.config` too.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class LiveSettings(BaseModel):
    """Broadcast mode (``anima live``): outputs, encoding, overlays, pacing and comments."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    width: int | None = Field(None, ge=64, le=3840, description="Canvas width; None: render size.")
    height: int | None = Field(
        None, ge=64, le=2160, description="Canvas height; None: render size."
    )
    video_bitrate: int = Field(1_500_000, ge=100_000, description="H.264 bits/s for live outputs.")
    audio_bitrate: int = Field(128_000, ge=32_000, le=320_000, description="AAC bits/s.")
    keyframe_interval: float = Field(2.0, gt=0, le=10, description="Seconds between keyframes.")
    preset: str = Field("veryfast", description="x264 preset (ultrafast … slow).")
    hls_segment: float = Field(2.0, gt=0, le=30, description="Seconds per HLS segment.")
    hls_list_size: int = Field(6, ge=1, le=100, description="Segments kept in a live playlist.")
    background: Path | None = Field(None, description="Background image behind the avatar.")
    logo: Path | None = Field(None, description="Logo image (PNG with alpha), top-right.")
    ai_label: bool = Field(True, description="Show the 'AI-generated' label (keep it on).")
    label_text: str = Field("AI-generated", min_length=1, max_length=60)
    subtitles: bool = Field(True, description="Lower-third subtitles of what is being said.")
    preroll: float = Field(0.3, ge=0.04, le=5, description="Speech buffered before it airs.")
    retry_initial: float = Field(1.0, gt=0, description="First RTMP reconnect delay (s).")
    retry_max: float = Field(30.0, gt=0, description="Longest RTMP reconnect delay (s).")
    rtmp_timeout: float = Field(5.0, gt=0, description="RTMP connect/write timeout (s).")
    comment_queue: int = Field(100, ge=1, le=100_000, description="Comments kept waiting.")
    answers_per_minute: float = Field(4.0, gt=0, le=60, description="Comment answers, at most.")
    comment_user_cooldown: float = Field(
        30.0, ge=0, description="Seconds between a user's comments."
    )
    comment_max_chars: int = Field(300, ge=10, le=5000)


class IceServer(BaseModel):
    """One STUN/TURN server handed to browsers and to the server's own peer connections."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    urls: list[str] = Field(min_length=1, description="stun:host:3478 or turn:host:3478")
    username: str | None = None
    credential: SecretStr | None = None


class WebRTCSettings(BaseModel):
    """Browser chat over WebRTC (``anima serve``): ICE, access tokens, CORS, media queues.

    ``turn_urls`` with ``turn_secret`` give every client time-limited coturn REST credentials
    (``use-auth-secret`` / ``static-auth-secret`` in coturn): user ``"<expiry>:anima"`` and
    password base64(HMAC-SHA1(secret, user)), valid ``turn_ttl`` seconds.
    """

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    ice_servers: list[IceServer] = Field(
        default_factory=list, description="STUN/TURN servers; empty: host candidates only (LAN)."
    )
    turn_urls: list[str] = Field(default_factory=list, description="coturn REST-auth TURN URLs.")
    turn_secret: SecretStr | None = Field(None, description="coturn static-auth-secret.")
    turn_ttl: int = Field(3600, ge=60, le=86400, description="Seconds TURN credentials last.")
    require_token: bool | None = Field(
        None, description="Signalling needs a token; None: only when not bound to loopback."
    )
    operator_key: SecretStr | None = Field(
        None, description="Bearer key for /api/token and the operator API (non-loopback)."
    )
    token_secret: SecretStr | None = Field(
        None, description="HMAC key for session tokens; None: random per process."
    )
    token_ttl: int = Field(120, ge=10, le=3600, description="Seconds a session token lasts.")
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed cross-site; empty: same origin only."
    )
    connect_timeout: float = Field(
        20.0, gt=0, description="Seconds for a new peer connection to connect, else torn down."
    )
    queue_seconds: float = Field(
        0.5, ge=0.1, le=5.0, description="Media buffered per outgoing track (oldest dropped)."
    )
    heartbeat_timeout: float = Field(
        10.0, gt=0, description="A page that pinged, then fell silent this long, is gone."
    )


class ServerSettings(BaseModel):
    """Serving sessions to clients: the kiosk WebSocket protocol (and the WebRTC server)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error, not a no-op

    host: str = Field(
        "127.0.0.1", description="Listen address; loopback unless exposed on purpose."
    )
    port: int = Field(8765, ge=0, le=65535, description="Listen port; 0 picks a free one.")
    max_sessions: int = Field(4, ge=1, le=10_000, description="Open sessions; more get 'busy'.")
    idle_timeout: float = Field(
        300.0, gt=0, description="Close a connection after this many seconds without a message."
    )
    ws_max_message_bytes: int = Field(
        1_048_576, ge=1024, description="Largest client message; bigger ones get an error frame."
    )
    token_secret: SecretStr | None = Field(
        None, description="When set, clients must present it (WebSocket hello 'token')."
    )
    jpeg_quality: int = Field(80, ge=10, le=100, description="JPEG quality of video frames.")
    max_sessions_per_client: int = Field(
        2, ge=1, le=10_000, description="Open sessions per client address (or token); more: busy."
    )
    messages_per_second: float = Field(
        100.0, gt=0, description="Average client messages a second (mic frames included)."
    )
    message_burst: int = Field(200, ge=1, description="Messages a client may send at once.")
    max_speech_seconds: float = Field(
        3600.0, gt=0, description="Mic audio one session may send; more is refused."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Proxy addresses/CIDRs whose X-Forwarded-For is believed; empty: ignored.",
    )
    drain_seconds: float = Field(
        10.0, ge=0, description="On shutdown, seconds open sessions get to finish their turn."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        import ipaddress

        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or CIDR") from None
        return value


class ClusterSettings(BaseModel):
    """Workers and gateways on a NATS cluster (``anima worker``, ``anima gateway``)."""

    nats_url: str = Field(
        "nats://127.0.0.1:4222", description="NATS server(s), comma-separated for a cluster."
    )
    bucket: str = Field(
        "anima_sessions",
        pattern=r"^[A-Za-z0-9_-]+$",
        description="JetStream key-value bucket of session -> worker records.",
    )
    session_ttl: float = Field(
        3600.0, gt=0, description="Seconds a session record is kept in the bucket."
    )
    heartbeat_seconds: float = Field(0.5, gt=0, le=30, description="Worker heartbeat period.")
    lost_after: float = Field(
        2.5, gt=0, le=300, description="A worker silent this long is lost, with its sessions."
    )
    request_timeout: float = Field(
        10.0, gt=0, le=120, description="Seconds the gateway waits for a worker's answer."
    )
    attempts: int = Field(3, ge=1, le=10, description="Workers an offer is tried on before 'busy'.")
    retry_after: int = Field(2, ge=1, le=600, description="Retry-After (s) of a 503 busy.")
    queue_seconds: float = Field(
        0.0, ge=0, le=60, description="How long an offer waits for a free slot before 'busy'."
    )
    worker_name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_-]+$", description="This worker's id (default: host-pid)."
    )
    node: str | None = Field(None, description="The machine a worker reports (default: host).")
