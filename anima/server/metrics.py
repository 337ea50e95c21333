"""Prometheus metrics of the WebRTC server (served with every other anima metric at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SESSIONS = Gauge("anima_rtc_sessions", "WebRTC sessions open now")
OPENED = Counter("anima_rtc_sessions_opened_total", "WebRTC sessions opened")
CLOSED = Counter("anima_rtc_sessions_closed_total", "WebRTC sessions closed", ["reason"])
REFUSED = Counter("anima_rtc_refused_total", "Signalling requests refused", ["why"])
CONNECTED = Counter("anima_rtc_connected_total", "Peer connections that reached 'connected'")
DROPPED = Counter(
    "anima_rtc_dropped_frames_total", "Outgoing frames dropped (queue full)", ["kind"]
)
TURN_LATENCY = Histogram(
    "anima_rtc_turn_latency_seconds",
    "Server-side latency of a reply, by part (end of user speech to first avatar audio = total)",
    ["part"],
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)


def observe_latency(parts: dict[str, float]) -> None:
    """Record one reply's latency breakdown."""
    for part, seconds in parts.items():
        TURN_LATENCY.labels(part).observe(seconds)


def close_reason(reason: str) -> str:
    """A low-cardinality label for why a session closed."""
    for key in ("connection", "data channel", "idle", "deleted", "page", "shutdown", "ended"):
        if key in reason:
            return key.replace(" ", "_")
    return "other"
